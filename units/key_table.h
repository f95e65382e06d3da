// Key tables: every key of a unit section is one row — its name, what usherd does with it, and
// the parser that carries its value to its destination — as systemd's load-fragment-gperf.gperf
// declares its keys (name, config_parse_* function, offset of the field).
//
// A parser is built from two parts: the destination, a pointer to a member of the unit (or of
// the parse's own state, for values resolved after the last entry), and a kind (KeyKind below)
// that knows one syntax — a boolean, an enum word, a time span, a list — and turns a bad value
// into the one diagnostic that syntax has. The kinds are in key_kinds.h; each kind of key is
// therefore parsed one way, whatever section it is in.
//
// Keys usherd recognises without honouring them are rows too, grouped by what usherd says about
// them (nothing, "is not supported", "is not enforced"), so known_service_keys() and
// known_socket_keys() list every key the parsers accept, for documentation and its tests.
//
// Invariant: within one section, a name has one row; a lookup takes the first row that names
// the key, honoured rows before groups (IPAddressAllow= is honoured in [Socket] though it is a
// sandboxing key elsewhere).
#pragma once

#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "units/parse_context.h"
#include "units/unit_file.h"

namespace usherd::units {

/// What usherd does with a key it recognises.
enum class KeySupport {
  honoured,      ///< Parsed and applied.
  extension,     ///< usherd's own X- key, parsed and applied.
  ignored,       ///< Accepted silently: its effect does not apply to usherd (ordering, logging).
  unsupported,   ///< Warned about: "Key= is not supported by usherd, ignoring."
  not_enforced,  ///< Warned about: "Key= is not enforced by usherd, ignoring." (sandboxing).
};

/// "honoured", "extension", "ignored", "unsupported", "not-enforced".
std::string_view to_string(KeySupport support);

/// One key the unit parsers recognise.
struct KnownKey {
  std::string_view section;  ///< "Unit", "Service", "Socket" or "Install".
  std::string_view name;     ///< "ExecStart"; conditions as "ConditionPathExists".
  KeySupport support;        ///< What usherd does with it.

  /// Equal when every field is.
  friend bool operator==(const KnownKey&, const KnownKey&) = default;
};

/// Every key of a .service unit ([Unit], [Service], [Install]), in table order. Condition*=
/// and Assert*= appear once per condition usherd evaluates; other Condition*= kinds are
/// accepted too and reported when checked.
std::vector<KnownKey> known_service_keys();

/// Every key of a .socket unit ([Unit], [Socket], [Install]), in table order.
std::vector<KnownKey> known_socket_keys();

/// Parses one entry into State; reports what it rejects through the context.
template <class State>
using KeyParser = void (*)(State& state, const Entry& entry, ParseContext& context);

/// One honoured key: its name and the parser that applies it.
template <class State>
struct KeyRow {
  std::string_view name;                      ///< The key as written in unit files.
  KeySupport support = KeySupport::honoured;  ///< honoured or extension.
  KeyParser<State> parse = nullptr;           ///< Applies a value.
};

/// Keys recognised and not honoured, all treated alike.
struct KeyGroup {
  std::span<const std::string_view> names;  ///< The keys.
  KeySupport support;                       ///< ignored, unsupported or not_enforced.
};

/// A section's table: its honoured rows, then the groups of keys it only recognises.
template <class State>
struct SectionTable {
  std::string_view section;             ///< The section name, for listing.
  std::span<const KeyRow<State>> rows;  ///< Honoured keys.
  std::span<const KeyGroup> groups;     ///< Recognised, not honoured.
};

/// Reports an entry of a group: nothing, "not supported" or "not enforced", per support.
void report_unhonoured(KeySupport support, const Entry& entry, ParseContext& context);

/// Applies entry through table; false when the table has no row for the key.
template <class State>
bool apply_key(const SectionTable<State>& table, State& state, const Entry& entry,
               ParseContext& context) {
  for (const KeyRow<State>& row : table.rows) {
    if (row.name == entry.key) {
      row.parse(state, entry, context);
      return true;
    }
  }
  for (const KeyGroup& group : table.groups) {
    for (std::string_view name : group.names) {
      if (name == entry.key) {
        report_unhonoured(group.support, entry, context);
        return true;
      }
    }
  }
  return false;
}

/// Appends the keys of table to out, skipping a name already listed for the section.
template <class State>
void list_keys(const SectionTable<State>& table, std::vector<KnownKey>& out) {
  auto add = [&](std::string_view name, KeySupport support) {
    for (const KnownKey& k : out) {
      if (k.section == table.section && k.name == name) return;
    }
    out.push_back({table.section, name, support});
  };
  for (const KeyRow<State>& row : table.rows) add(row.name, row.support);
  for (const KeyGroup& group : table.groups) {
    for (std::string_view name : group.names) add(name, group.support);
  }
}

/// The [Unit] and [Install] keys shared by every unit type.
void list_unit_keys(std::vector<KnownKey>& out);

/// The sandboxing keys of systemd.exec(5): recognised in [Service] and [Socket], not enforced.
KeyGroup sandboxing_group();

/// The member a destination names: in the parse's State itself, or in its unit (State::unit).
template <class State, class Owner, class T>
T& destination(State& state, T Owner::*member) {
  if constexpr (std::is_same_v<Owner, State>) {
    return state.*member;
  } else {
    return state.unit.*member;
  }
}

/// The parser of a row: Kind applied to the destination Member. Kind is a type with
/// `static void apply(Field&, const Entry&, ParseContext&)` (key_kinds.h).
template <auto Member, class Kind, class State>
void set(State& state, const Entry& entry, ParseContext& context) {
  Kind::apply(destination(state, Member), entry, context);
}

}  // namespace usherd::units
