// HTTPHeaders: a case-insensitive multimap of header fields that keeps
// insertion order (Tornado's httputil.HTTPHeaders). Names and values live in
// one arena string, so a parsed header block costs two allocations, and
// lookups scan a short vector (faster than hashing for the dozen fields a
// request carries). Not thread-safe; a value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/errors.hpp"

namespace squall::http {

/// Malformed HTTP input from the peer (Tornado's HTTPInputError); `status`
/// is the response code a server answers with (400, 413, 431, 501, 505).
class HTTPInputError : public Error {
 public:
  explicit HTTPInputError(const std::string& what, int status = 400) : Error(what), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

class HTTPHeaders {
 public:
  struct Field {
    std::string_view name;
    std::string_view value;
  };

  HTTPHeaders() = default;

  /// Appends a field (repeats are kept). Throws std::invalid_argument if the
  /// name is not a token or the value holds CR, LF or NUL (no injection).
  void add(std::string_view name, std::string_view value);
  /// Replaces every field of this name with one.
  void set(std::string_view name, std::string_view value);
  /// Removes every field of this name; returns how many there were.
  std::size_t remove(std::string_view name);
  void clear() noexcept;

  /// The first value of `name`, if present.
  std::optional<std::string_view> get(std::string_view name) const;
  /// The first value of `name`, or `fallback`.
  std::string_view get(std::string_view name, std::string_view fallback) const;
  /// Every value of `name`, in order (Tornado's get_list).
  std::vector<std::string_view> get_list(std::string_view name) const;
  /// All values of `name` joined with "," (Tornado's `headers[name]`).
  std::string get_joined(std::string_view name) const;
  bool contains(std::string_view name) const;
  std::size_t count(std::string_view name) const;

  std::size_t size() const noexcept { return fields_.size(); }
  bool empty() const noexcept { return fields_.empty(); }

  /// Fields in order. Views stay valid until the headers are modified.
  class const_iterator;
  const_iterator begin() const noexcept;
  const_iterator end() const noexcept;

  /// Appends "Name: value\r\n" for every field.
  void write_to(std::string& out) const;
  std::string to_string() const;

  /// Parses field lines ("Name: value\r\n"..., without the final empty
  /// line) strictly: RFC 9112 section 5. Throws HTTPInputError.
  static HTTPHeaders parse(std::string_view block);

  /// Adds a field whose name and value were already validated (the parser's
  /// fast path).
  void add_unchecked(std::string_view name, std::string_view value);

  friend bool operator==(const HTTPHeaders& a, const HTTPHeaders& b);

 private:
  struct Slot {
    std::uint32_t name_at, name_len, value_at, value_len;
  };
  Field field(const Slot& s) const noexcept {
    return {std::string_view(arena_).substr(s.name_at, s.name_len),
            std::string_view(arena_).substr(s.value_at, s.value_len)};
  }
  std::string arena_;
  std::vector<Slot> fields_;
};

class HTTPHeaders::const_iterator {
 public:
  using value_type = Field;
  using difference_type = std::ptrdiff_t;
  const_iterator() = default;
  const_iterator(const HTTPHeaders* h, std::size_t i) : h_(h), i_(i) {}
  Field operator*() const noexcept { return h_->field(h_->fields_[i_]); }
  const_iterator& operator++() noexcept {
    ++i_;
    return *this;
  }
  const_iterator operator++(int) noexcept {
    auto copy = *this;
    ++i_;
    return copy;
  }
  bool operator==(const const_iterator& o) const noexcept { return i_ == o.i_; }

 private:
  const HTTPHeaders* h_ = nullptr;
  std::size_t i_ = 0;
};

inline HTTPHeaders::const_iterator HTTPHeaders::begin() const noexcept { return {this, 0}; }
inline HTTPHeaders::const_iterator HTTPHeaders::end() const noexcept { return {this, fields_.size()}; }

/// RFC 9110 token characters (method names, field names).
bool is_token(std::string_view s) noexcept;
/// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace squall::http
