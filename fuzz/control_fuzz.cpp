// libFuzzer entry for the control protocol: arbitrary bytes taken as a request body, as the
// daemon does with what a control connection sent before EOF, and as an answer, as usherctl
// does with what the daemon sent back. Claims:
//   - a request is refused (with a non-empty error) or names a known command, and a stop
//     names a non-empty instance id;
//   - an oversized body is refused as too large without being parsed;
//   - the answer the daemon would send for a refusal is one line of JSON that usherctl reads
//     back as the same error, and an ok answer reads back as its result;
//   - reading arbitrary bytes as an answer yields a value or an error, never a crash.
// Any crash, sanitizer report, uncaught exception or broken claim is a bug.
// fuzz-link: usherd_supervisor
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "supervisor/control_protocol.h"

using namespace usherd::supervisor;

namespace {

void claim(bool condition) {
  if (!condition) std::abort();
}

bool one_line(const std::string& answer) {
  return !answer.empty() && answer.back() == '\n' && answer.find('\n') == answer.size() - 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);

  ControlRequest request = parse_control_request(body);
  if (size > kMaxRequest) claim(request.error == "request too large");
  if (request.error.empty()) {
    std::string_view word = to_string(request.command);
    claim(word != "unknown");
    claim((request.command == ControlCommand::stop) == !request.id.empty());
    std::string answer = control_ok(boost::json::value(word));
    claim(one_line(answer));
    auto back = parse_control_answer(answer);
    claim(back.has_value() && back->is_string() && back->get_string() == word);
  } else {
    std::string answer = control_error(request.error);
    claim(one_line(answer));
    auto back = parse_control_answer(answer);
    claim(!back.has_value() && back.error().message == request.error);
  }

  auto answer = parse_control_answer(body);
  if (answer) (void)answer->kind();
  return 0;
}
