#include "squall/http/headers.hpp"

#include <stdexcept>

#include "http/char_tables.hpp"

namespace squall::http {

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTokenChar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (kLower[static_cast<unsigned char>(a[i])] != kLower[static_cast<unsigned char>(b[i])]) return false;
  }
  return true;
}

namespace {

bool is_safe_value(std::string_view v) noexcept {
  for (char c : v) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

}  // namespace

void HTTPHeaders::add_unchecked(std::string_view name, std::string_view value) {
  Slot s;
  s.name_at = static_cast<std::uint32_t>(arena_.size());
  s.name_len = static_cast<std::uint32_t>(name.size());
  arena_.append(name);
  s.value_at = static_cast<std::uint32_t>(arena_.size());
  s.value_len = static_cast<std::uint32_t>(value.size());
  arena_.append(value);
  fields_.push_back(s);
}

void HTTPHeaders::add(std::string_view name, std::string_view value) {
  if (!is_token(name)) throw std::invalid_argument("invalid header name: " + std::string(name));
  if (!is_safe_value(value)) throw std::invalid_argument("header value contains CR, LF or NUL: " + std::string(name));
  add_unchecked(name, value);
}

void HTTPHeaders::set(std::string_view name, std::string_view value) {
  // Copy first: `name` or `value` may point into this arena.
  std::string n(name), v(value);
  remove(n);
  add(n, v);
}

std::size_t HTTPHeaders::remove(std::string_view name) {
  std::size_t before = fields_.size();
  std::erase_if(fields_, [&](const Slot& s) { return iequals(field(s).name, name); });
  // The arena keeps the removed bytes until the headers are cleared.
  if (fields_.empty()) arena_.clear();
  return before - fields_.size();
}

void HTTPHeaders::clear() noexcept {
  arena_.clear();
  fields_.clear();
}

std::optional<std::string_view> HTTPHeaders::get(std::string_view name) const {
  for (const Slot& s : fields_) {
    Field f = field(s);
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

std::string_view HTTPHeaders::get(std::string_view name, std::string_view fallback) const {
  auto v = get(name);
  return v ? *v : fallback;
}

std::vector<std::string_view> HTTPHeaders::get_list(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const Slot& s : fields_) {
    Field f = field(s);
    if (iequals(f.name, name)) out.push_back(f.value);
  }
  return out;
}

std::string HTTPHeaders::get_joined(std::string_view name) const {
  std::string out;
  bool first = true;
  for (const Slot& s : fields_) {
    Field f = field(s);
    if (!iequals(f.name, name)) continue;
    if (!first) out += ',';
    out.append(f.value);
    first = false;
  }
  return out;
}

bool HTTPHeaders::contains(std::string_view name) const { return get(name).has_value(); }

std::size_t HTTPHeaders::count(std::string_view name) const {
  std::size_t n = 0;
  for (const Slot& s : fields_) n += iequals(field(s).name, name) ? 1 : 0;
  return n;
}

void HTTPHeaders::write_to(std::string& out) const {
  for (const Slot& s : fields_) {
    Field f = field(s);
    out.append(f.name);
    out.append(": ");
    out.append(f.value);
    out.append("\r\n");
  }
}

std::string HTTPHeaders::to_string() const {
  std::string out;
  write_to(out);
  return out;
}

HTTPHeaders HTTPHeaders::parse(std::string_view block) {
  HTTPHeaders headers;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t eol = block.find('\n', pos);
    std::size_t end = eol == std::string_view::npos ? block.size() : eol;
    std::string_view line = block.substr(pos, end - pos);
    pos = eol == std::string_view::npos ? block.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.front() == ' ' || line.front() == '\t') throw HTTPInputError("obsolete line folding is not allowed");
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) throw HTTPInputError("header line without a colon");
    std::string_view name = line.substr(0, colon);
    if (!is_token(name)) throw HTTPInputError("invalid header name");
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    for (char c : value) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) throw HTTPInputError("control character in a header value");
    }
    headers.add_unchecked(name, value);
  }
  return headers;
}

bool operator==(const HTTPHeaders& a, const HTTPHeaders& b) {
  if (a.size() != b.size()) return false;
  auto i = a.begin();
  auto j = b.begin();
  for (; i != a.end(); ++i, ++j) {
    if (!iequals((*i).name, (*j).name) || (*i).value != (*j).value) return false;
  }
  return true;
}

}  // namespace squall::http
