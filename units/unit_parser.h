// Parsing one unit from its entries or its text, without touching the file system.
//
// These are the pure halves of loading: the loader reads files, collects drop-ins and checks
// conditions, then calls these; the fuzzer calls them on arbitrary bytes. A parser returns
// nullopt when the unit lacks what it needs (systemd's "Refusing."), with an error diagnostic
// naming the file; bad values are warnings and keep their defaults.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "units/config.h"
#include "units/diagnostic.h"
#include "units/unit_file.h"
#include "units/unit_name.h"

namespace usherd::units {

/// Reads a whole file (EnvironmentFile=); the loader's reads the disk, the fuzzer's does not.
using FileReader = std::function<Result<std::string>(const std::string& path)>;

/// Sections a .socket unit may have.
extern const std::vector<std::string_view> kSocketSections;
/// Sections a .service unit may have.
extern const std::vector<std::string_view> kServiceSections;

/// Builds a socket unit from its merged entries (main file then drop-ins). The service name is
/// resolved but not checked against the loaded services (the loader does that).
std::optional<SocketUnit> parse_socket_unit(const UnitName& name, const std::string& path,
                                            const std::vector<Entry>& entries,
                                            std::vector<Diagnostic>& diagnostics);

/// Builds a service unit from its merged entries; EnvironmentFile= contents come from read.
std::optional<ServiceUnit> parse_service_unit(const UnitName& name, const std::string& path,
                                              const std::vector<Entry>& entries,
                                              const FileReader& read,
                                              std::vector<Diagnostic>& diagnostics);

/// parse_unit_text() then parse_socket_unit(), for one file given as text.
std::optional<SocketUnit> parse_socket_text(const UnitName& name, const std::string& path,
                                            std::string_view text,
                                            std::vector<Diagnostic>& diagnostics);

/// parse_unit_text() then parse_service_unit(), for one file given as text.
std::optional<ServiceUnit> parse_service_text(const UnitName& name, const std::string& path,
                                              std::string_view text, const FileReader& read,
                                              std::vector<Diagnostic>& diagnostics);

/// A FileReader that reads the disk.
Result<std::string> read_whole_file(const std::string& path);

}  // namespace usherd::units
