#include "supervisor/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <boost/json/serialize.hpp>

#include "base/unique_fd.h"
#include "supervisor/control_protocol.h"

namespace usherd::supervisor {

Result<boost::json::value> control_call(const std::string& runtime_dir,
                                        const boost::json::object& request) {
  std::string path = runtime_dir + "/control";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return fail("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int error = errno;
    if (error == ENOENT || error == ECONNREFUSED)
      return fail("usherd is not running (no control socket at " + path + ")", error);
    return fail("cannot reach usherd at " + path, error);
  }
  std::string body = boost::json::serialize(request);
  const char* p = body.data();
  std::size_t left = body.size();
  while (left > 0) {
    ssize_t n = ::send(fd.get(), p, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("send to usherd");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  std::string answer;
  char buf[65536];
  for (;;) {
    pollfd pfd{fd.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, 30000);
    if (ready == 0) return fail("usherd did not answer within 30 s");
    if (ready < 0) {
      if (errno == EINTR) continue;
      return fail_errno("poll");
    }
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read from usherd");
    }
    if (n == 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  return parse_control_answer(answer);
}

}  // namespace usherd::supervisor
