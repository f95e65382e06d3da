// Property lists with libxml2; see plist.h.
#include "importer/plist.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstring>
#include <memory>
#include <optional>

namespace usherd::importer {
namespace {

// A launchd job is a few KiB; anything near this is not one.
constexpr std::size_t kMaxPlistBytes = 4 << 20;
constexpr int kMaxDepth = 64;

struct DocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
struct CtxtFree {
  void operator()(xmlParserCtxt* ctxt) const { xmlFreeParserCtxt(ctxt); }
};

// libxml2 reports every error it meets, and its last one is often a consequence ("Premature
// end of data"); the first is the one that names the fault.
struct FirstError {
  bool set = false;
  unsigned line = 0;
  std::string message;
};

void keep_first_error(void* user, xmlError* error) {
  auto* ctxt = static_cast<xmlParserCtxt*>(user);
  auto* first = static_cast<FirstError*>(ctxt->_private);
  if (first == nullptr || first->set || error == nullptr) return;
  first->set = true;
  first->line = error->line > 0 ? static_cast<unsigned>(error->line) : 0;
  first->message = error->message ? error->message : "not well-formed XML";
  while (!first->message.empty() && (first->message.back() == '\n' || first->message.back() == ' '))
    first->message.pop_back();
}

std::string_view name_of(const xmlNode* node) {
  return reinterpret_cast<const char*>(node->name);
}

unsigned line_of(const xmlNode* node) {
  long line = xmlGetLineNo(node);
  return line > 0 ? static_cast<unsigned>(line) : 0;
}

class Reader {
 public:
  explicit Reader(unsigned& error_line) : error_line_(error_line) {}

  Result<PlistValue> value(const xmlNode* node, int depth) {
    if (depth > kMaxDepth) return error(node, "nested too deep");
    PlistValue v;
    v.line = line_of(node);
    std::string_view name = name_of(node);
    if (name == "dict") {
      v.type = PlistValue::Type::dict;
      std::optional<std::string> key;
      for (const xmlNode* child : elements_of(node)) {
        if (child == nullptr) return error(node, "text or entity inside <dict>");
        if (name_of(child) == "key") {
          if (key) return error(child, "<key> " + *key + " has no value");
          auto text = text_of(child);
          if (!text) return tl::unexpected(text.error());
          key = std::move(*text);
          continue;
        }
        if (!key) return error(child, "<" + std::string(name_of(child)) + "> without a <key>");
        auto item = value(child, depth + 1);
        if (!item) return item;
        v.dict.push_back({std::move(*key), std::move(*item)});
        key.reset();
      }
      if (key) return error(node, "<key> " + *key + " has no value");
      return v;
    }
    if (name == "array") {
      v.type = PlistValue::Type::array;
      for (const xmlNode* child : elements_of(node)) {
        if (child == nullptr) return error(node, "text or entity inside <array>");
        auto item = value(child, depth + 1);
        if (!item) return item;
        v.array.push_back(std::move(*item));
      }
      return v;
    }
    if (name == "true" || name == "false") {
      if (node->children != nullptr) return error(node, "<" + std::string(name) + "/> is empty");
      v.type = PlistValue::Type::boolean;
      v.boolean = name == "true";
      return v;
    }
    auto text = text_of(node);
    if (!text) return tl::unexpected(text.error());
    v.text = std::move(*text);
    if (name == "string") {
      v.type = PlistValue::Type::string;
    } else if (name == "integer") {
      v.type = PlistValue::Type::integer;
      auto n = parse_integer(v.text);
      if (!n) return error(node, "not an integer: " + v.text);
      v.integer = *n;
    } else if (name == "real") {
      v.type = PlistValue::Type::real;
    } else if (name == "data") {
      v.type = PlistValue::Type::data;
    } else if (name == "date") {
      v.type = PlistValue::Type::date;
    } else {
      return error(node, "unknown element <" + std::string(name) + ">");
    }
    return v;
  }

  tl::unexpected<Error> error(const xmlNode* node, const std::string& message) const {
    error_line_ = line_of(node);
    return fail(message);
  }

 private:
  // The element children; a nullptr marks non-blank text or an unexpanded entity.
  static std::vector<const xmlNode*> elements_of(const xmlNode* node) {
    std::vector<const xmlNode*> out;
    for (const xmlNode* c = node->children; c != nullptr; c = c->next) {
      if (c->type == XML_ELEMENT_NODE) {
        out.push_back(c);
      } else if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
        const char* t = reinterpret_cast<const char*>(c->content);
        if (t != nullptr && std::strspn(t, " \t\r\n") != std::strlen(t)) out.push_back(nullptr);
      } else if (c->type == XML_ENTITY_REF_NODE) {
        out.push_back(nullptr);
      }
    }
    return out;
  }

  Result<std::string> text_of(const xmlNode* node) const {
    std::string out;
    for (const xmlNode* c = node->children; c != nullptr; c = c->next) {
      if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
        if (c->content != nullptr) out += reinterpret_cast<const char*>(c->content);
      } else if (c->type == XML_ENTITY_REF_NODE) {
        return error(node, "entity references are not supported in property lists");
      } else if (c->type == XML_ELEMENT_NODE) {
        return error(
            c, "<" + std::string(name_of(c)) + "> inside <" + std::string(name_of(node)) + ">");
      }
    }
    return out;
  }

  static std::optional<std::int64_t> parse_integer(std::string_view text) {
    while (!text.empty() && std::strchr(" \t\r\n", text.front())) text.remove_prefix(1);
    while (!text.empty() && std::strchr(" \t\r\n", text.back())) text.remove_suffix(1);
    bool negative = !text.empty() && text.front() == '-';
    if (negative || (!text.empty() && text.front() == '+')) text.remove_prefix(1);
    if (text.empty() || text.size() > 18) return std::nullopt;
    std::int64_t v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return negative ? -v : v;
  }

  unsigned& error_line_;
};

}  // namespace

const PlistValue* PlistValue::find(std::string_view key) const {
  if (type != Type::dict) return nullptr;
  for (const auto& [k, v] : dict)
    if (k == key) return &v;
  return nullptr;
}

std::string_view PlistValue::type_name() const {
  switch (type) {
    case Type::dict:
      return "dictionary";
    case Type::array:
      return "array";
    case Type::string:
      return "string";
    case Type::integer:
      return "integer";
    case Type::real:
      return "real";
    case Type::boolean:
      return "boolean";
    case Type::data:
      return "data";
    case Type::date:
      return "date";
  }
  return "value";
}

Result<PlistValue> parse_plist(std::string_view text, unsigned& error_line) {
  error_line = 0;
  if (text.substr(0, 6) == "bplist")
    return fail(
        "a binary property list; convert it first with `plutil -convert xml1 FILE` "
        "(macOS) or `plistutil -i FILE -f xml`");
  if (text.size() > kMaxPlistBytes) return fail("too large for a launchd job");
  xmlInitParser();
  std::unique_ptr<xmlParserCtxt, CtxtFree> ctxt(xmlNewParserCtxt());
  if (!ctxt) return fail("out of memory");
  // No network, no entity substitution, no messages on stderr; line numbers past 65535.
  int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |
                XML_PARSE_BIG_LINES;
  FirstError first;
  ctxt->_private = &first;
  ctxt->sax->serror = keep_first_error;
  std::unique_ptr<xmlDoc, DocFree> doc(xmlCtxtReadMemory(
      ctxt.get(), text.data(), static_cast<int>(text.size()), nullptr, nullptr, options));
  if (!doc) {
    error_line = first.line;
    return fail("not well-formed XML: " + (first.set ? first.message : "no document"));
  }
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  Reader reader(error_line);
  if (root == nullptr || name_of(root) != "plist")
    return fail("not a property list: the root element is not <plist>");
  const xmlNode* top = nullptr;
  for (const xmlNode* c = root->children; c != nullptr; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (top != nullptr) return reader.error(c, "more than one value inside <plist>");
    top = c;
  }
  if (top == nullptr) return reader.error(root, "an empty <plist>");
  return reader.value(top, 0);
}

}  // namespace usherd::importer
