#include "topology/xml_document.h"

#include <cctype>
#include <set>

#include "topology/error.h"

namespace nccl_moe::topo {

namespace {

class XmlParser {
 public:
  XmlParser(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  XmlElement parseDocument() {
    skipMisc();
    if (atEnd()) failHere("no root element");
    XmlElement root = parseElement(1);
    skipMisc();
    if (!atEnd()) failHere("unexpected content after the root element </", excerpt(root.name), ">");
    return root;
  }

 private:
  bool atEnd() const { return pos_ >= text_.size(); }
  bool startsWith(const char* prefix) const { return text_.compare(pos_, std::char_traits<char>::length(prefix), prefix) == 0; }

  void advance(size_t count) {
    for (size_t i = 0; i < count && pos_ < text_.size(); ++i) {
      if (text_[pos_++] == '\n') ++line_;
    }
  }

  void skipSpace() {
    while (!atEnd() && std::isspace(static_cast<unsigned char>(text_[pos_]))) advance(1);
  }

  void skipUntil(const char* terminator, const char* what) {
    size_t end = text_.find(terminator, pos_);
    if (end == std::string::npos) failHere("unterminated ", what);
    advance(end - pos_ + std::char_traits<char>::length(terminator));
  }

  // Whitespace, comments, the declaration and a DOCTYPE may surround elements.
  void skipMisc() {
    while (true) {
      skipSpace();
      if (startsWith("<!--")) {
        skipUntil("-->", "comment");
      } else if (startsWith("<?")) {
        skipUntil("?>", "declaration");
      } else if (startsWith("<!")) {
        skipUntil(">", "DOCTYPE");
      } else {
        return;
      }
    }
  }

  std::string parseName() {
    size_t start = pos_;
    while (!atEnd()) {
      char c = text_[pos_];
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
          c == ':') {
        advance(1);
      } else {
        break;
      }
    }
    if (start == pos_) failHere("expected a name");
    return text_.substr(start, pos_ - start);
  }

  std::string decode(const std::string& raw) {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      size_t semi = raw.find(';', i);
      std::string entity = semi == std::string::npos ? "" : raw.substr(i, semi - i + 1);
      if (entity == "&amp;") out += '&';
      else if (entity == "&lt;") out += '<';
      else if (entity == "&gt;") out += '>';
      else if (entity == "&quot;") out += '"';
      else if (entity == "&apos;") out += '\'';
      else failHere("unknown entity in '", excerpt(raw), "'");
      i = semi;
    }
    return out;
  }

  // `depth` counts the root as 1.
  XmlElement parseElement(int depth) {
    if (atEnd() || text_[pos_] != '<') failHere("expected '<'");
    XmlElement element;
    element.line = line_;
    advance(1);
    element.name = parseName();
    const std::string shownName = excerpt(element.name);
    if (depth > kMaxXmlDepth) {
      failHere("<", shownName, "> is nested deeper than ", kMaxXmlDepth, " levels of elements");
    }
    std::set<std::string> keys;  // XmlElement::attribute() is a linear scan: quadratic here
    while (true) {
      skipSpace();
      if (atEnd()) failHere("unterminated <", shownName, ">");
      if (startsWith("/>")) {
        advance(2);
        return element;
      }
      if (text_[pos_] == '>') {
        advance(1);
        break;
      }
      std::string key = parseName();
      skipSpace();
      if (atEnd() || text_[pos_] != '=') failHere("attribute ", excerpt(key), ": expected '='");
      advance(1);
      skipSpace();
      if (atEnd() || (text_[pos_] != '"' && text_[pos_] != '\'')) {
        failHere("attribute ", excerpt(key), ": expected a quoted value");
      }
      char quote = text_[pos_];
      advance(1);
      size_t end = text_.find(quote, pos_);
      if (end == std::string::npos) failHere("attribute ", excerpt(key), ": unterminated value");
      std::string value = decode(text_.substr(pos_, end - pos_));
      advance(end - pos_ + 1);
      if (!keys.insert(key).second) failHere("attribute ", excerpt(key), " appears twice");
      element.attributes.emplace_back(key, value);
    }
    while (true) {
      // Text between elements carries nothing in these formats.
      while (!atEnd() && text_[pos_] != '<') advance(1);
      if (atEnd()) failHere("unterminated <", shownName, "> opened on line ", element.line);
      if (startsWith("<!--")) {
        skipUntil("-->", "comment");
      } else if (startsWith("</")) {
        advance(2);
        std::string closing = parseName();
        skipSpace();
        if (atEnd() || text_[pos_] != '>') failHere("expected '>' after </", excerpt(closing));
        if (closing != element.name) {
          failHere("</", excerpt(closing), "> closes <", shownName, "> opened on line ",
                   element.line);
        }
        advance(1);
        return element;
      } else {
        element.children.push_back(parseElement(depth + 1));
      }
    }
  }

  template <typename... Parts>
  [[noreturn]] void failHere(Parts&&... parts) const {
    fail(source_, ":", line_, ": invalid XML: ", std::forward<Parts>(parts)...);
  }

  const std::string& text_;
  const std::string& source_;
  size_t pos_ = 0;
  int line_ = 1;
};

std::string escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

void writeElement(const XmlElement& element, int indent, std::string& out) {
  out.append(indent, ' ');
  out += "<" + element.name;
  for (const auto& [key, value] : element.attributes) out += " " + key + "=\"" + escape(value) + "\"";
  if (element.children.empty()) {
    out += "/>\n";
    return;
  }
  out += ">\n";
  for (const auto& child : element.children) writeElement(child, indent + 2, out);
  out.append(indent, ' ');
  out += "</" + element.name + ">\n";
}

}  // namespace

const std::string* XmlElement::attribute(const std::string& key) const {
  for (const auto& [existingKey, value] : attributes) {
    if (existingKey == key) return &value;
  }
  return nullptr;
}

void XmlElement::set(const std::string& key, const std::string& value) {
  for (auto& [existingKey, existing] : attributes) {
    if (existingKey == key) {
      existing = value;
      return;
    }
  }
  attributes.emplace_back(key, value);
}

XmlElement& XmlElement::add(const std::string& childName) {
  children.push_back(XmlElement{});
  children.back().name = childName;
  return children.back();
}

XmlElement parseXml(const std::string& text, const std::string& source) {
  return XmlParser(text, source).parseDocument();
}

std::string writeXml(const XmlElement& root) {
  std::string out;
  writeElement(root, 0, out);
  return out;
}

}  // namespace nccl_moe::topo
