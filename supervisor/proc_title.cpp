#include "supervisor/proc_title.h"

#include <unistd.h>

#include <cstring>

extern char** environ;

namespace usherd::supervisor {
namespace {

char* g_area = nullptr;
std::size_t g_size = 0;

}  // namespace

void ProcTitle::init(int argc, char** argv) {
  if (argc <= 0 || argv == nullptr || argv[0] == nullptr) return;
  // The kernel lays argv strings and then environ strings out back to back; the area is
  // contiguous only as far as each string starts right after the previous one ends.
  char* end = argv[0] + std::strlen(argv[0]) + 1;
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != end) break;
    end = argv[i] + std::strlen(argv[i]) + 1;
  }
  std::size_t env_count = 0;
  while (environ != nullptr && environ[env_count] != nullptr) ++env_count;
  for (std::size_t i = 0; i < env_count; ++i) {
    if (environ[i] != end) break;
    end = environ[i] + std::strlen(environ[i]) + 1;
  }
  // Move the environment out of the way; the copies live as long as the process.
  char** moved = new char*[env_count + 1];
  for (std::size_t i = 0; i < env_count; ++i) moved[i] = strdup(environ[i]);
  moved[env_count] = nullptr;
  environ = moved;
  // Keep argv usable for anyone who still reads it (CLI parsing ran before this).
  g_area = argv[0];
  g_size = static_cast<std::size_t>(end - argv[0]);
}

void ProcTitle::set(std::string_view title) {
  if (g_area == nullptr || g_size < 2) return;
  std::size_t n = std::min(title.size(), g_size - 1);
  std::memcpy(g_area, title.data(), n);
  std::memset(g_area + n, 0, g_size - n);
}

}  // namespace usherd::supervisor
