// Value parsers for unit files; see values.h for the syntaxes and their systemd sources.
#include "units/values.h"

#include <csignal>
#include <cstring>
#include <limits>

namespace usherd::units {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// A decimal number with an optional fraction, as systemd's parse_time() reads each term:
// the integer part and the fraction digits are kept apart so no floating point is needed.
struct Decimal {
  std::uint64_t whole = 0;
  std::uint64_t fraction = 0;        // the digits after the point, as an integer
  std::uint64_t fraction_scale = 1;  // 10^(number of fraction digits kept)
};

bool read_decimal(std::string_view& p, Decimal& out) {
  std::size_t i = 0;
  bool any = false;
  while (i < p.size() && is_digit(p[i])) {
    if (out.whole > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return false;
    out.whole = out.whole * 10 + static_cast<unsigned>(p[i] - '0');
    ++i;
    any = true;
  }
  if (i < p.size() && p[i] == '.') {
    ++i;
    while (i < p.size() && is_digit(p[i])) {
      // Beyond 18 digits the extra precision is below any unit we multiply by.
      if (out.fraction_scale < 1000000000000000000ULL) {
        out.fraction = out.fraction * 10 + static_cast<unsigned>(p[i] - '0');
        out.fraction_scale *= 10;
      }
      ++i;
      any = true;
    }
  }
  p.remove_prefix(i);
  return any;
}

// 128-bit intermediate for fraction*multiplier (both may be near 2^60).
__extension__ typedef unsigned __int128 U128;

// whole*multiplier + fraction*multiplier/scale, false on overflow.
bool scale(const Decimal& d, std::uint64_t multiplier, std::uint64_t& out) {
  if (d.whole != 0 && multiplier > std::numeric_limits<std::uint64_t>::max() / d.whole)
    return false;
  std::uint64_t value = d.whole * multiplier;
  // fraction < scale, so fraction * (multiplier / scale) cannot overflow when split this way.
  U128 extra = static_cast<U128>(d.fraction) * multiplier / d.fraction_scale;
  if (extra > std::numeric_limits<std::uint64_t>::max() - value) return false;
  out = value + static_cast<std::uint64_t>(extra);
  return true;
}

bool add(std::uint64_t& total, std::uint64_t value) {
  if (value > std::numeric_limits<std::uint64_t>::max() - total) return false;
  total += value;
  return true;
}

struct Suffix {
  std::string_view text;
  std::uint64_t usec;
};

constexpr std::uint64_t kSec = 1000000;
// systemd.time(7): a month is 30.44 days, a year 365.25 days.
constexpr Suffix kTimeSuffixes[] = {
    {"seconds", kSec},
    {"second", kSec},
    {"sec", kSec},
    {"s", kSec},
    {"minutes", 60 * kSec},
    {"minute", 60 * kSec},
    {"min", 60 * kSec},
    {"months", 2629800 * kSec},
    {"month", 2629800 * kSec},
    {"M", 2629800 * kSec},
    {"msec", 1000},
    {"ms", 1000},
    {"m", 60 * kSec},
    {"hours", 3600 * kSec},
    {"hour", 3600 * kSec},
    {"hr", 3600 * kSec},
    {"h", 3600 * kSec},
    {"days", 86400 * kSec},
    {"day", 86400 * kSec},
    {"d", 86400 * kSec},
    {"weeks", 604800 * kSec},
    {"week", 604800 * kSec},
    {"w", 604800 * kSec},
    {"years", 31557600 * kSec},
    {"year", 31557600 * kSec},
    {"y", 31557600 * kSec},
    {"usec", 1},
    {"us", 1},
    {"\xce\xbcs", 1},
    {"\xc2\xb5s", 1},
};

constexpr Suffix kSizeSuffixes[] = {
    {"E", 1ULL << 60}, {"P", 1ULL << 50}, {"T", 1ULL << 40}, {"G", 1ULL << 30},
    {"M", 1ULL << 20}, {"K", 1ULL << 10}, {"B", 1},
};

template <std::size_t N>
const Suffix* match_suffix(std::string_view p, const Suffix (&table)[N]) {
  for (const Suffix& s : table) {
    if (p.substr(0, s.text.size()) == s.text) return &s;
  }
  return nullptr;
}

void skip_whitespace(std::string_view& p) {
  while (!p.empty() && is_whitespace(p.front())) p.remove_prefix(1);
}

// Sums "number[suffix]" terms; a term without suffix uses default_multiplier.
template <std::size_t N>
Result<std::uint64_t> parse_terms(std::string_view text, const Suffix (&table)[N],
                                  std::uint64_t default_multiplier, const char* what) {
  std::string_view p = strip_whitespace(text);
  if (p.empty()) return fail(std::string("empty ") + what);
  std::uint64_t total = 0;
  while (!p.empty()) {
    if (p.front() == '-' || p.front() == '+') return fail(std::string("invalid ") + what);
    Decimal d;
    if (!read_decimal(p, d)) return fail(std::string("invalid ") + what);
    std::size_t before_space = p.size();
    skip_whitespace(p);
    bool spaced = p.size() != before_space;
    std::uint64_t multiplier = default_multiplier;
    if (const Suffix* s = match_suffix(p, table)) {
      multiplier = s->usec;
      p.remove_prefix(s->text.size());
      // A unit must end the term: "5mx" is not 5 minutes followed by garbage.
      if (!p.empty() && !is_whitespace(p.front()) && !is_digit(p.front()) && p.front() != '.')
        return fail(std::string("invalid ") + what);
    } else if (!p.empty() && (!spaced || (!is_digit(p.front()) && p.front() != '.'))) {
      // Without a unit, a term ends only at whitespace: "1.2.3" and "5x" are not sums.
      return fail(std::string("unknown unit in ") + what);
    }
    std::uint64_t value = 0;
    if (!scale(d, multiplier, value) || !add(total, value))
      return fail(std::string(what) + " out of range");
    skip_whitespace(p);
  }
  return total;
}

}  // namespace

bool is_whitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view strip_whitespace(std::string_view text) {
  while (!text.empty() && is_whitespace(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_whitespace(text.back())) text.remove_suffix(1);
  return text;
}

std::optional<bool> parse_boolean(std::string_view text) {
  for (std::string_view t : {"1", "yes", "y", "true", "t", "on"}) {
    if (iequals(text, t)) return true;
  }
  for (std::string_view f : {"0", "no", "n", "false", "f", "off"}) {
    if (iequals(text, f)) return false;
  }
  return std::nullopt;
}

Result<Duration> parse_timespan(std::string_view text, Duration default_unit) {
  std::string_view t = strip_whitespace(text);
  if (t == "infinity") return kInfiniteDuration;
  auto usec =
      parse_terms(t, kTimeSuffixes, static_cast<std::uint64_t>(default_unit.count()), "time span");
  if (!usec) return tl::unexpected(usec.error());
  if (*usec >= static_cast<std::uint64_t>(kInfiniteDuration.count()))
    return fail("time span out of range");
  return Duration(static_cast<Duration::rep>(*usec));
}

Result<std::uint64_t> parse_size(std::string_view text) {
  return parse_terms(text, kSizeSuffixes, 1, "size");
}

Result<mode_t> parse_mode(std::string_view text) {
  if (text.empty() || text.size() > 5) return fail("invalid mode");
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return fail("invalid mode (octal digits expected)");
    value = value * 8 + static_cast<unsigned>(c - '0');
  }
  if (value > 07777) return fail("mode out of range");
  return static_cast<mode_t>(value);
}

Result<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max) {
  if (text.empty()) return fail("empty number");
  std::uint64_t value = 0;
  for (char c : text) {
    if (!is_digit(c)) return fail("invalid number");
    if (value > (std::numeric_limits<std::uint64_t>::max() - 9) / 10)
      return fail("number out of range");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > max) return fail("number out of range (at most " + std::to_string(max) + ")");
  return value;
}

Result<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max) {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  auto magnitude =
      parse_unsigned(text, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
  if (!magnitude) return tl::unexpected(magnitude.error());
  std::int64_t value = static_cast<std::int64_t>(*magnitude);
  if (negative) value = -value;
  if (value < min || value > max)
    return fail("number out of range (" + std::to_string(min) + ".." + std::to_string(max) + ")");
  return value;
}

Result<int> parse_signal(std::string_view text) {
  if (!text.empty() && is_digit(text.front())) {
    auto n = parse_unsigned(text, static_cast<std::uint64_t>(SIGRTMAX));
    if (!n || *n == 0) return fail("invalid signal number");
    return static_cast<int>(*n);
  }
  std::string_view name = text;
  if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
  if (name.empty()) return fail("invalid signal name");
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && name == abbrev) return sig;
  }
  // RTMIN, RTMIN+n, RTMAX, RTMAX-n as systemd's signal_from_string() accepts them.
  auto offset = [&](std::string_view rest, int sign, int base) -> Result<int> {
    if (rest.empty()) return base;
    if (rest.front() != (sign > 0 ? '+' : '-')) return fail("invalid signal name");
    auto n = parse_unsigned(rest.substr(1), static_cast<std::uint64_t>(SIGRTMAX - SIGRTMIN));
    if (!n) return fail("invalid signal name");
    return base + sign * static_cast<int>(*n);
  };
  if (name.substr(0, 5) == "RTMIN") return offset(name.substr(5), +1, SIGRTMIN);
  if (name.substr(0, 5) == "RTMAX") return offset(name.substr(5), -1, SIGRTMAX);
  return fail("unknown signal name");
}

std::string signal_name(int signal) {
  if (signal > 0 && signal < SIGRTMIN) {
    if (const char* abbrev = sigabbrev_np(signal)) return abbrev;
  }
  if (signal >= SIGRTMIN && signal <= SIGRTMAX) {
    return signal == SIGRTMIN ? "RTMIN" : "RTMIN+" + std::to_string(signal - SIGRTMIN);
  }
  return std::to_string(signal);
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// One escape after a backslash (systemd's cunescape_one()); p starts after the backslash.
// Returns the number of characters consumed, or 0 when the escape is invalid.
std::size_t unescape_one(std::string_view p, std::string& out) {
  if (p.empty()) return 0;
  switch (p[0]) {
    case 'a':
      out += '\a';
      return 1;
    case 'b':
      out += '\b';
      return 1;
    case 'f':
      out += '\f';
      return 1;
    case 'n':
      out += '\n';
      return 1;
    case 'r':
      out += '\r';
      return 1;
    case 't':
      out += '\t';
      return 1;
    case 'v':
      out += '\v';
      return 1;
    case '\\':
      out += '\\';
      return 1;
    case '"':
      out += '"';
      return 1;
    case '\'':
      out += '\'';
      return 1;
    case 's':
      out += ' ';
      return 1;
    case 'x': {
      if (p.size() < 3) return 0;
      int hi = hex_value(p[1]), lo = hex_value(p[2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return 0;
      out += static_cast<char>(hi * 16 + lo);
      return 3;
    }
    case 'u':
    case 'U': {
      std::size_t digits = p[0] == 'u' ? 4 : 8;
      if (p.size() < digits + 1) return 0;
      std::uint32_t cp = 0;
      for (std::size_t i = 1; i <= digits; ++i) {
        int v = hex_value(p[i]);
        if (v < 0) return 0;
        cp = cp * 16 + static_cast<std::uint32_t>(v);
      }
      if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
      append_utf8(out, cp);
      return digits + 1;
    }
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7': {
      if (p.size() < 3) return 0;
      unsigned v = 0;
      for (std::size_t i = 0; i < 3; ++i) {
        if (p[i] < '0' || p[i] > '7') return 0;
        v = v * 8 + static_cast<unsigned>(p[i] - '0');
      }
      if (v == 0 || v > 255) return 0;
      out += static_cast<char>(v);
      return 3;
    }
    default:
      return 0;
  }
}

}  // namespace

Result<std::string> c_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    std::size_t used = unescape_one(text.substr(i + 1), out);
    if (used == 0) return fail("invalid escape sequence");
    i += used;
  }
  return out;
}

Result<std::optional<std::string>> extract_first_word(std::string_view& text, unsigned flags) {
  std::size_t i = 0;
  while (i < text.size() && is_whitespace(text[i])) ++i;
  if (i == text.size()) {
    text = text.substr(i);
    return std::optional<std::string>();
  }
  std::string word;
  char quote = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (i + 1 == text.size()) {
        if (flags & extract_relax) {
          word += '\\';
          continue;
        }
        return fail("trailing backslash");
      }
      if (flags & extract_cunescape) {
        std::size_t used = unescape_one(text.substr(i + 1), word);
        if (used == 0) return fail("invalid escape sequence");
        i += used;
      } else {
        word += text[++i];
      }
    } else if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if ((flags & extract_unquote) && (c == '\'' || c == '"')) {
      quote = c;
    } else if (is_whitespace(c)) {
      break;
    } else {
      word += c;
    }
  }
  if (quote != 0 && !(flags & extract_relax)) return fail("unbalanced quotes");
  text = text.substr(i);
  return std::optional<std::string>(std::move(word));
}

Result<std::vector<std::string>> split_words(std::string_view text, unsigned flags) {
  std::vector<std::string> words;
  for (;;) {
    auto word = extract_first_word(text, flags);
    if (!word) return tl::unexpected(word.error());
    if (!*word) return words;
    words.push_back(std::move(**word));
  }
}

}  // namespace usherd::units
