// stall_fs MOUNTPOINT: a FUSE file system whose one directory, "stall", never answers a
// lookup. A process that chdir()s into MOUNTPOINT/stall (WorkingDirectory=) or execs a file
// below it waits in the kernel until it is killed, as one does on a hung NFS or FUSE mount:
// what the tests use to leave a launched child before its execve for as long as they like.
// Every other name does not exist. Runs in the foreground until SIGTERM/SIGINT (libfuse then
// unmounts), printing "mounted" once it serves.
#define FUSE_USE_VERSION 31
#include <fuse3/fuse.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

int stall_getattr(const char* path, struct stat* st, fuse_file_info*) {
  std::memset(st, 0, sizeof *st);
  if (std::strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (std::strcmp(path, "/stall") == 0) {
    // Never answered: the caller waits (killably) until it is killed or the file system
    // goes. libfuse serves each request on a thread of its own, so others are still served.
    for (;;) pause();
  }
  return -ENOENT;
}

void* stall_init(fuse_conn_info*, fuse_config*) {
  std::printf("mounted\n");
  std::fflush(stdout);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: stall_fs MOUNTPOINT\n");
    return 2;
  }
  fuse_operations ops{};
  ops.getattr = stall_getattr;
  ops.init = stall_init;
  // -f: foreground; allow_other: processes of any user (a service's User=) reach it.
  char* args[] = {argv[0],
                  const_cast<char*>("-f"),
                  const_cast<char*>("-o"),
                  const_cast<char*>("allow_other,attr_timeout=0,entry_timeout=0"),
                  argv[1],
                  nullptr};
  return fuse_main(5, args, &ops, nullptr);
}
