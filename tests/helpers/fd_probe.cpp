// fd_probe: reports what a spawned process inherited, for the spawn audit tests.
//
// Usage: fd_probe REPORT_FD. Writes one report to REPORT_FD and exits 0:
//   pid N / sid N / pgid N / tty N (tty_nr of /proc/self/stat, 0: no controlling terminal) /
//   pdeathsig N (the signal it gets when its parent thread ends, 0: none) /
//   fd N FLAGS (one per open fd, FLAGS "nonblock" or "block") /
//   nofile SOFT HARD / sigblk HEX / sigign HEX / cwd PATH / umask OCTAL / env K=V ...
//   end
#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

extern char** environ;

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int report_fd = std::atoi(argv[1]);
  std::string out;
  out += "pid " + std::to_string(getpid()) + "\n";
  out += "sid " + std::to_string(getsid(0)) + "\n";
  out += "pgid " + std::to_string(getpgid(0)) + "\n";
  int pdeathsig = -1;
  prctl(PR_GET_PDEATHSIG, &pdeathsig);
  out += "pdeathsig " + std::to_string(pdeathsig) + "\n";
  {
    // Field 7 (tty_nr), counted after the last ')' so the comm cannot shift it.
    std::ifstream stat_file("/proc/self/stat");
    std::string stat_line;
    std::getline(stat_file, stat_line);
    std::string rest = stat_line.substr(stat_line.rfind(')') + 2);
    std::istringstream fields(rest);
    std::string field;
    for (int i = 3; i <= 7 && fields >> field; ++i) {
    }
    out += "tty " + field + "\n";
  }
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return 3;
  int own = dirfd(dir);
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    int fd = std::atoi(entry->d_name);
    if (fd == own) continue;
    int flags = fcntl(fd, F_GETFL);
    out += "fd " + std::to_string(fd) + ((flags & O_NONBLOCK) ? " nonblock" : " block") + "\n";
  }
  closedir(dir);
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  out += "nofile " + std::to_string(lim.rlim_cur) + " " + std::to_string(lim.rlim_max) + "\n";
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("SigBlk:", 0) == 0)
      out += "sigblk " + line.substr(line.find_first_not_of(" \t", 7)) + "\n";
    if (line.rfind("SigIgn:", 0) == 0)
      out += "sigign " + line.substr(line.find_first_not_of(" \t", 7)) + "\n";
  }
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd)) out += std::string("cwd ") + cwd + "\n";
  mode_t mask = umask(0);
  char octal[16];
  std::snprintf(octal, sizeof octal, "%03o", mask);
  out += std::string("umask ") + octal + "\n";
  for (char** env = environ; *env; ++env) out += std::string("env ") + *env + "\n";
  out += "end\n";
  const char* p = out.data();
  std::size_t left = out.size();
  while (left > 0) {
    ssize_t n = write(report_fd, p, left);
    if (n <= 0) return 4;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return 0;
}
