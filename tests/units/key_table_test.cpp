// The key tables as a list: every key the parsers accept, once, with what usherd does with it,
// and the list agreeing with what the parsers actually do with each key.
#include <set>
#include <string>

#include "tests/catch.h"

#include "units/conditions.h"
#include "units/key_table.h"
#include "units/unit_parser.h"

using namespace usherd::units;

namespace {

const KnownKey* find(const std::vector<KnownKey>& keys, std::string_view section,
                     std::string_view name) {
  for (const KnownKey& k : keys) {
    if (k.section == section && k.name == name) return &k;
  }
  return nullptr;
}

// The diagnostics one "Key=value" line in section earns, the unit otherwise valid.
std::vector<Diagnostic> diagnostics_for(bool socket, std::string_view section, std::string_view key,
                                        std::string_view value) {
  std::string text = socket ? "[Socket]\nListenStream=1234\n" : "[Service]\nExecStart=/bin/true\n";
  text += "[" + std::string(section) + "]\n" + std::string(key) + "=" + std::string(value) + "\n";
  std::vector<Diagnostic> out;
  FileReader none = [](const std::string&) -> usherd::Result<std::string> {
    return usherd::fail("no files", 2);
  };
  if (socket) {
    (void)parse_socket_text(*parse_unit_name("t.socket"), "t.socket", text, out);
  } else {
    (void)parse_service_text(*parse_unit_name("t@.service"), "t@.service", text, none, out);
  }
  return out;
}

}  // namespace

TEST_CASE("the key list names each key of a section once", "[units][keys]") {
  for (const auto& keys : {known_service_keys(), known_socket_keys()}) {
    std::set<std::pair<std::string_view, std::string_view>> seen;
    for (const KnownKey& k : keys) {
      INFO(std::string(k.section) + " " + std::string(k.name));
      CHECK(seen.insert({k.section, k.name}).second);
    }
  }
}

TEST_CASE("the key list says what usherd does with well-known keys", "[units][keys]") {
  auto service = known_service_keys();
  auto socket = known_socket_keys();
  struct Row {
    const std::vector<KnownKey>* keys;
    std::string_view section;
    std::string_view name;
    KeySupport support;
  };
  const Row rows[] = {
      {&service, "Service", "ExecStart", KeySupport::honoured},
      {&service, "Service", "LimitNOFILE", KeySupport::honoured},
      {&service, "Service", "X-ReadyLog", KeySupport::extension},
      {&service, "Service", "SyslogIdentifier", KeySupport::ignored},
      {&service, "Service", "PIDFile", KeySupport::unsupported},
      {&service, "Service", "ProtectSystem", KeySupport::not_enforced},
      {&service, "Service", "MemoryMax", KeySupport::not_enforced},
      {&service, "Service", "IPAddressAllow", KeySupport::not_enforced},
      {&service, "Unit", "Description", KeySupport::honoured},
      {&service, "Unit", "After", KeySupport::ignored},
      {&service, "Unit", "ConditionPathExists", KeySupport::honoured},
      {&service, "Install", "WantedBy", KeySupport::ignored},
      {&socket, "Socket", "ListenStream", KeySupport::honoured},
      {&socket, "Socket", "IPAddressAllow", KeySupport::honoured},
      {&socket, "Socket", "X-MaxStartups", KeySupport::extension},
      {&socket, "Socket", "X-DropMessage", KeySupport::extension},
      {&socket, "Socket", "PollLimitBurst", KeySupport::ignored},
      {&socket, "Socket", "ListenFIFO", KeySupport::unsupported},
      {&socket, "Socket", "PrivateTmp", KeySupport::not_enforced},
      {&socket, "Unit", "Documentation", KeySupport::honoured},
  };
  for (const Row& row : rows) {
    INFO(std::string(row.section) + " " + std::string(row.name));
    const KnownKey* key = find(*row.keys, row.section, row.name);
    REQUIRE(key != nullptr);
    CHECK(key->support == row.support);
  }
  CHECK(find(service, "Service", "ListenStream") == nullptr);
  CHECK(find(socket, "Socket", "ExecStart") == nullptr);
  CHECK(to_string(KeySupport::not_enforced) == "not-enforced");
}

TEST_CASE("every listed key is parsed as the list says", "[units][keys]") {
  // A listed key is never "unknown"; an unsupported one says so, a not-enforced one says so,
  // an ignored one says nothing, whatever its value.
  for (bool socket : {false, true}) {
    for (const KnownKey& k : socket ? known_socket_keys() : known_service_keys()) {
      INFO(std::string(k.section) + " " + std::string(k.name));
      auto found = diagnostics_for(socket, k.section, k.name, "?");
      for (const Diagnostic& d : found) CHECK(d.message.find("Unknown key") == std::string::npos);
      std::string key = std::string(k.name);
      bool warned_unsupported = false, warned_not_enforced = false;
      for (const Diagnostic& d : found) {
        warned_unsupported |= d.message == key + "= is not supported by usherd, ignoring.";
        warned_not_enforced |= d.message == key + "= is not enforced by usherd, ignoring.";
      }
      CHECK(warned_unsupported == (k.support == KeySupport::unsupported));
      CHECK(warned_not_enforced == (k.support == KeySupport::not_enforced));
      if (k.support == KeySupport::ignored) CHECK(found.empty());
    }
  }
}

TEST_CASE("a key outside the list is unknown, unless it is an X- key", "[units][keys]") {
  auto found = diagnostics_for(false, "Service", "ListenStream", "1");
  REQUIRE(found.size() == 1);
  CHECK(found[0].message == "Unknown key name 'ListenStream' in section 'Service', ignoring.");
  CHECK(diagnostics_for(true, "Socket", "X-NotOurs", "1").empty());
}

TEST_CASE("the listed conditions are the ones usherd evaluates", "[units][keys]") {
  unsigned conditions = 0;
  for (const KnownKey& k : known_service_keys()) {
    std::string name(k.name);
    std::string type;
    if (name.rfind("Condition", 0) == 0) type = name.substr(9);
    if (name.rfind("Assert", 0) == 0) type = name.substr(6);
    if (type.empty()) continue;
    INFO(name);
    CHECK(is_supported_condition(type));
    ++conditions;
  }
  CHECK(conditions == 14);
}
