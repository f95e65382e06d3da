// libballast.so: memory ballast for the supervisor-size benchmark, loaded with LD_PRELOAD.
//
// Its constructor maps USHERD_BENCH_BALLAST_MIB MiB of anonymous memory and writes to every
// page, so the process it is preloaded into (usherd, unchanged) is that much bigger in
// resident memory when it starts serving. bench/run.sh measures spawn latency at 10 MiB ..
// 1 GiB this way: a fork()-based server copies page tables in proportion to that size, while
// usherd's clone(CLONE_VM | CLONE_VFORK) should not care. The memory is never freed.
#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace {

void* g_ballast = nullptr;

__attribute__((constructor)) void touch_ballast() {
  const char* value = std::getenv("USHERD_BENCH_BALLAST_MIB");
  if (value == nullptr) return;
  std::size_t mib = std::strtoul(value, nullptr, 10);
  if (mib == 0) return;
  std::size_t size = mib << 20;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  // Non-zero bytes on every page: resident, and not mergeable as zero pages.
  std::memset(p, 0x5a, size);
  g_ballast = p;
}

}  // namespace
