// libFuzzer entry for usherctl import: arbitrary bytes read as an xinetd configuration (with
// an include and an includedir answered from memory) and imported with and without
// --allow-open; bytes that start like XML are also imported as a launchd property list.
// Everything the import asks of the machine comes from a System with fixed answers, so no
// file, NSS database or resolver is touched. Whatever the input, the report must hold:
//   - an imported job has exactly a socket and a service unit, and no error;
//   - a failed job has an error and no unit;
//   - every finding names a file, and printed findings hold no control character.
// (Generated units are parsed back with the real unit parser inside the import itself.) Any
// crash, sanitizer report or broken claim is a bug.
// fuzz-link: usherd_importer
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "importer/importer.h"

using namespace usherd;
using namespace usherd::importer;

namespace {

void claim(bool condition) {
  if (!condition) std::abort();
}

class FuzzSystem : public System {
 public:
  explicit FuzzSystem(std::string_view text) : text_(text) {}

  Result<std::string> read_file(const std::string& path) const override {
    if (path == "/fuzz/xinetd.conf") return std::string(text_);
    if (path == "/fuzz/included" || path == "/fuzz/dir/a")
      return std::string(
          "service a\n{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n"
          "\tserver = /bin/cat\n}\n");
    if (path == "/etc/hosts.allow") return std::string("# no rules\n");
    return fail("no such file while fuzzing", 2);
  }
  Result<std::vector<std::string>> list_directory(const std::string& path) const override {
    if (path == "/fuzz/dir") return std::vector<std::string>{"b~", "a", "c.d", "sub"};
    return fail("no such directory while fuzzing", 2);
  }
  bool is_directory(const std::string& path) const override { return path == "/fuzz/dir"; }
  bool is_regular_file(const std::string& path) const override { return path == "/fuzz/dir/a"; }
  std::optional<std::uint16_t> service_port(const std::string& name,
                                            const std::string& protocol) const override {
    if (name == "a" || name == "echo") return 7;
    if (name == "ssh" && protocol == "tcp") return 22;
    return std::nullopt;
  }
  std::optional<policy::Cidr> network(const std::string& name) const override {
    if (name == "net") return *policy::Cidr::parse("10.0.0.0/8");
    return std::nullopt;
  }
  std::vector<policy::IpAddress> resolve_host(const std::string& name, bool, bool) const override {
    if (name == "localhost") return {*policy::IpAddress::parse("127.0.0.1")};
    return {};
  }
  std::optional<bool> has_supplementary_groups(const std::string& user) const override {
    return user == "daemon";
  }

 private:
  std::string_view text_;
};

void check(const Report& report) {
  for (const Finding& f : report.all_findings()) {
    claim(!f.file.empty());
    for (char c : f.to_string()) claim(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  }
  for (const Job& job : report.jobs) {
    bool error = false;
    for (const Finding& f : job.findings) error = error || f.severity == Severity::error;
    if (job.outcome == Outcome::imported) {
      claim(job.units.size() == 2 && !error);
      claim(job.units[0].name.ends_with(".socket") && job.units[1].name.ends_with(".service"));
    } else if (job.outcome == Outcome::failed) {
      claim(job.units.empty() && error);
    }
  }
  (void)print_units(report);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  FuzzSystem system(text);
  Options strict;
  Options open;
  open.allow_open = true;
  open.include_disabled = true;
  check(import_xinetd({"/fuzz/xinetd.conf"}, strict, system));
  check(import_xinetd({"/fuzz/xinetd.conf", "/fuzz/dir"}, open, system));
  if (text.starts_with("<") || text.starts_with("bplist")) {
    Report report;
    report.jobs.push_back(import_launchd_text(text, "/fuzz/job.plist", strict, system));
    check(report);
  }
  return 0;
}
