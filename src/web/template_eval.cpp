// Generation: walks a linked Program with one Context per generate() call.
// Expressions follow Python's semantics over JSON values (bool is an int,
// `and`/`or` return an operand, chained comparisons, floor division and
// modulo with the divisor's sign, str() as Python prints values) so output
// matches Tornado's for the same data.
//
// Values borrow where they can: a name bound to the caller's data, or a
// literal, is a pointer (lifetime Stable). Values computed during generation
// are owned, and a borrowed pointer into storage that can die before the
// generation ends carries its lifetime: Local (a {% set %} variable's own
// value, freed when the variable is reassigned) or the depth of the
// {% for %} whose copy of its iterable it points into. {% set %} copies
// anything not Stable; a loop copies a Local iterable; a loop that owned its
// iterable re-homes the variables pointing into it when it ends.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "squall/web/escape.hpp"
#include "web/template_ast.hpp"
#include "web/template_format.hpp"
#include "web/template_unicode.hpp"

namespace squall::web {

// --- FunctionArgs --------------------------------------------------------------------------------

const nlohmann::json* FunctionArgs::keyword(std::string_view name) const noexcept {
  for (const auto& [k, v] : keywords_) {
    if (k == name) return v;
  }
  return nullptr;
}

const nlohmann::json* FunctionArgs::get(std::size_t i, std::string_view name) const noexcept {
  if (i < positional_.size()) return positional_[i];
  return keyword(name);
}

void FunctionArgs::expect(std::size_t min, std::size_t max, std::initializer_list<std::string_view> allowed) const {
  std::string fn(name_);
  if (positional_.size() < min || positional_.size() > max) {
    std::string range = min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max);
    throw TemplateError(fn + "() takes " + range + " positional arguments but " +
                            std::to_string(positional_.size()) + " were given",
                        "", 0);
  }
  for (const auto& [k, v] : keywords_) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      throw TemplateError(fn + "() got an unexpected keyword argument '" + std::string(k) + "'", "", 0);
    }
  }
}

namespace detail {
namespace {

// --- errors ---

/// A runtime error inside an expression; exec_node adds the location.
struct EvalError {
  std::string message;
  bool limit = false;  // an exceeded limit: {% try %} does not catch it
};

[[noreturn]] void fail(std::string message) { throw EvalError{std::move(message)}; }
[[noreturn]] void fail_limit(std::string message) { throw EvalError{std::move(message), true}; }

/// A TemplateError raised for an exceeded limit, which {% except %} lets pass.
class LimitError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

// --- values ---

enum class Builtin : std::uint8_t {
  None, User,
  Escape, UrlEscape, JsonEncode, Squeeze, Linkify,
  Len, Str, Int, Float, Bool, Abs, Min, Max, Sum, Range, Sorted, Reversed, Enumerate, List, Any, All,
};

struct FnRef {
  Builtin id = Builtin::None;
  const TemplateFunction* user = nullptr;
  std::string_view name;
};

struct BuiltinEntry {
  std::string_view name;
  Builtin id;
};
// Tornado's default namespace plus the Python built-ins templates use most.
constexpr BuiltinEntry kBuiltins[] = {
    {"abs", Builtin::Abs},         {"all", Builtin::All},         {"any", Builtin::Any},
    {"bool", Builtin::Bool},       {"enumerate", Builtin::Enumerate}, {"escape", Builtin::Escape},
    {"float", Builtin::Float},     {"int", Builtin::Int},         {"json_encode", Builtin::JsonEncode},
    {"len", Builtin::Len},         {"linkify", Builtin::Linkify}, {"list", Builtin::List},
    {"max", Builtin::Max},         {"min", Builtin::Min},         {"range", Builtin::Range},
    {"reversed", Builtin::Reversed}, {"sorted", Builtin::Sorted}, {"squeeze", Builtin::Squeeze},
    {"str", Builtin::Str},         {"sum", Builtin::Sum},         {"url_escape", Builtin::UrlEscape},
    {"xhtml_escape", Builtin::Escape},
};

const BuiltinEntry* find_builtin(std::string_view name) {
  for (const auto& b : kBuiltins) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

constexpr std::uint16_t kStable = 0;
constexpr std::uint16_t kLocal = 0xFFFF;

struct Value {
  const json* ref = nullptr;
  json own;
  FnRef fn;
  std::uint16_t life = kStable;  // of *ref; see the top of this file

  bool is_fn() const { return fn.id != Builtin::None; }
  const json& get() const { return ref ? *ref : own; }

  static Value borrow(const json& j, std::uint16_t life) {
    Value v;
    v.ref = &j;
    v.life = life;
    return v;
  }
  static Value owned(json j) {
    Value v;
    v.own = std::move(j);
    return v;
  }
  static Value function(FnRef f) {
    Value v;
    v.fn = f;
    return v;
  }
  /// Makes the value independent of any storage that may die.
  void detach() {
    if (ref && life != kStable) {
      own = *ref;
      ref = nullptr;
      life = kStable;
    }
  }
  json take() && { return ref ? *ref : std::move(own); }
};

const char* type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "NoneType";
    case json::value_t::boolean: return "bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "int";
    case json::value_t::number_float: return "float";
    case json::value_t::string: return "str";
    case json::value_t::array:
    case json::value_t::binary: return "list";
    case json::value_t::object: return "dict";
    default: return "object";
  }
}
const char* type_name(const Value& v) { return v.is_fn() ? "function" : type_name(v.get()); }

// --- numbers ---

struct Num {
  bool is_float = false;
  std::int64_t i = 0;
  double d = 0;
  double as_double() const { return is_float ? d : static_cast<double>(i); }
};

bool to_num(const json& j, Num& n) {
  switch (j.type()) {
    case json::value_t::boolean: n = {false, j.get<bool>() ? 1 : 0, 0}; return true;
    case json::value_t::number_integer: n = {false, j.get<std::int64_t>(), 0}; return true;
    case json::value_t::number_unsigned: {
      auto u = j.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        n = {false, static_cast<std::int64_t>(u), 0};
      } else {
        n = {true, 0, static_cast<double>(u)};
      }
      return true;
    }
    case json::value_t::number_float: n = {true, 0, j.get<double>()}; return true;
    default: return false;
  }
}

json from_num(const Num& n) { return n.is_float ? json(n.d) : json(n.i); }

bool is_int_like(const json& j) {
  return j.is_boolean() || j.is_number_integer();
}

bool truthy(const Value& v) {
  if (v.is_fn()) return true;
  const json& j = v.get();
  switch (j.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return j.get<bool>();
    case json::value_t::number_integer: return j.get<std::int64_t>() != 0;
    case json::value_t::number_unsigned: return j.get<std::uint64_t>() != 0;
    case json::value_t::number_float: return j.get<double>() != 0.0;
    case json::value_t::string: return !j.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object: return !j.empty();
    default: return true;
  }
}

// --- strings as code points ---

std::size_t code_point_count(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

/// Byte offsets of each code point start, plus s.size() at the end.
std::vector<std::size_t> code_point_offsets(std::string_view s) {
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  offsets.push_back(s.size());
  return offsets;
}

// --- Python str() / repr() ---

bool printable_non_ascii(char32_t cp) {
  if (cp < 0xA0) return false;                                      // C1 controls
  if (cp == 0xA0 || cp == 0xAD || cp == 0x1680 || cp == 0x3000 || cp == 0xFEFF) return false;
  if (cp >= 0x2000 && cp <= 0x200F) return false;                   // spaces, zero-width and direction marks
  if (cp >= 0x2028 && cp <= 0x202F) return false;
  if (cp >= 0x205F && cp <= 0x206F) return false;
  if (cp >= 0xE000 && cp <= 0xF8FF) return false;                   // private use
  if (cp >= 0xFFF9 && cp <= 0xFFFB) return false;
  return true;
}

void append_repr_string(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  static constexpr char kHex[] = "0123456789abcdef";
  out += quote;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == static_cast<unsigned char>(quote) || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c < 0x20 || c == 0x7F) {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    Decoded d = decode_utf8(s, i);
    if (d.cp == kInvalidCodePoint) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else if (printable_non_ascii(d.cp)) {
      out.append(s, i, d.length);
    } else {
      int digits = d.cp < 0x100 ? 2 : d.cp < 0x10000 ? 4 : 8;
      out += digits == 2 ? "\\x" : digits == 4 ? "\\u" : "\\U";
      for (int k = digits - 1; k >= 0; --k) out += kHex[(d.cp >> (4 * k)) & 0xF];
    }
    i += d.length;
  }
  out += quote;
}

void append_str(std::string& out, const json& j, bool repr, std::size_t depth, std::size_t max_depth) {
  if (depth > max_depth) fail("value nested too deeply");
  switch (j.type()) {
    case json::value_t::null: out += "None"; break;
    case json::value_t::boolean: out += j.get<bool>() ? "True" : "False"; break;
    case json::value_t::number_integer: out += std::to_string(j.get<std::int64_t>()); break;
    case json::value_t::number_unsigned: out += std::to_string(j.get<std::uint64_t>()); break;
    case json::value_t::number_float: append_python_float(out, j.get<double>()); break;
    case json::value_t::string:
      if (repr) append_repr_string(out, j.get_ref<const std::string&>());
      else out += j.get_ref<const std::string&>();
      break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : j) {
        if (!first) out += ", ";
        first = false;
        append_str(out, item, true, depth + 1, max_depth);
      }
      out += ']';
      break;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, item] : j.items()) {
        if (!first) out += ", ";
        first = false;
        append_repr_string(out, k);
        out += ": ";
        append_str(out, item, true, depth + 1, max_depth);
      }
      out += '}';
      break;
    }
    default: out += "<binary>"; break;
  }
}

/// Fails when `j` nests deeper than `max_depth` (bounds the recursion of
/// copies, comparisons and printing of values templates build).
void check_depth(const json& j, std::size_t max_depth, std::size_t depth = 0) {
  if (!j.is_structured()) return;
  if (depth >= max_depth) fail("value nested too deeply");
  for (const auto& item : j) check_depth(item, max_depth, depth + 1);
}

// --- comparisons ---

bool py_equal(const json& a, const json& b, std::size_t depth = 0) {
  if (depth > 10000) fail("value nested too deeply");
  Num x, y;
  if (to_num(a, x) && to_num(b, y)) {
    if (!x.is_float && !y.is_float) return x.i == y.i;
    return x.as_double() == y.as_double();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case json::value_t::null: return true;
    case json::value_t::string: return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!py_equal(a[i], b[i], depth + 1)) return false;
      }
      return true;
    }
    case json::value_t::object: {
      if (a.size() != b.size()) return false;
      for (auto it = a.begin(), jt = b.begin(); it != a.end(); ++it, ++jt) {
        if (it.key() != jt.key() || !py_equal(it.value(), jt.value(), depth + 1)) return false;
      }
      return true;
    }
    default: return a == b;
  }
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_fn() || b.is_fn()) return a.is_fn() && b.is_fn() && a.fn.id == b.fn.id && a.fn.user == b.fn.user;
  return py_equal(a.get(), b.get());
}

const char* op_text(Op op) {
  switch (op) {
    case Op::Lt: return "<";
    case Op::Le: return "<=";
    case Op::Gt: return ">";
    case Op::Ge: return ">=";
    case Op::Add: return "+";
    case Op::Sub: return "-";
    case Op::Mul: return "*";
    case Op::Div: return "/";
    case Op::FloorDiv: return "//";
    case Op::Mod: return "%";
    case Op::Pow: return "**";
    default: return "?";
  }
}

template <typename T>
bool apply_order(Op op, const T& a, const T& b) {
  switch (op) {
    case Op::Lt: return a < b;
    case Op::Le: return a <= b;
    case Op::Gt: return a > b;
    default: return a >= b;
  }
}

/// <, <=, >, >= with Python's rules: numbers, strings (code point order,
/// which is UTF-8 byte order) and lists (lexicographic) are ordered;
/// anything else is a TypeError.
bool py_order(Op op, const json& a, const json& b, std::size_t depth = 0) {
  if (depth > 10000) fail("value nested too deeply");
  Num x, y;
  if (to_num(a, x) && to_num(b, y)) {
    if (!x.is_float && !y.is_float) return apply_order(op, x.i, y.i);
    return apply_order(op, x.as_double(), y.as_double());
  }
  if (a.is_string() && b.is_string()) {
    return apply_order(op, a.get_ref<const std::string&>(), b.get_ref<const std::string&>());
  }
  if (a.is_array() && b.is_array()) {
    std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (!py_equal(a[i], b[i], depth + 1)) return py_order(op, a[i], b[i], depth + 1);
    }
    return apply_order(op, a.size(), b.size());
  }
  fail(std::string("'") + op_text(op) + "' not supported between instances of '" + type_name(a) + "' and '" +
       type_name(b) + "'");
}

bool py_less(const json& a, const json& b) { return py_order(Op::Lt, a, b); }

bool py_contains(const Value& container, const Value& item) {
  if (container.is_fn()) fail("argument of type 'function' is not iterable");
  const json& c = container.get();
  if (c.is_string()) {
    if (item.is_fn() || !item.get().is_string()) {
      fail(std::string("'in <string>' requires string as left operand, not ") + type_name(item));
    }
    return c.get_ref<const std::string&>().find(item.get().get_ref<const std::string&>()) != std::string::npos;
  }
  if (c.is_array()) {
    for (const auto& e : c) {
      if (!item.is_fn() && py_equal(e, item.get())) return true;
    }
    return false;
  }
  if (c.is_object()) {
    if (item.is_fn() || !item.get().is_string()) return false;
    return c.contains(item.get().get_ref<const std::string&>());
  }
  fail(std::string("argument of type '") + type_name(c) + "' is not iterable");
}

bool py_is(const Value& a, const Value& b) {
  if (a.is_fn() || b.is_fn()) return values_equal(a, b);
  const json& x = a.get();
  const json& y = b.get();
  if (x.is_null() && y.is_null()) return true;
  if (x.is_boolean() && y.is_boolean()) return x.get<bool>() == y.get<bool>();
  return a.ref != nullptr && a.ref == b.ref;
}

// --- arithmetic ---

double py_fmod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double py_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div != 0.0) {
    double floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
    return floordiv;
  }
  return std::copysign(0.0, a / b);
}

[[noreturn]] void unsupported(Op op, const Value& a, const Value& b) {
  fail(std::string("unsupported operand type(s) for ") + op_text(op) + ": '" + type_name(a) + "' and '" +
       type_name(b) + "'");
}

[[noreturn]] void overflow() { fail("integer overflow (squall templates use 64-bit integers)"); }

std::int64_t add_checked(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow();
  return r;
}
std::int64_t sub_checked(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) overflow();
  return r;
}
std::int64_t mul_checked(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow();
  return r;
}

}  // namespace

// --- the evaluator ------------------------------------------------------------------------------

namespace {

struct Slot {
  enum State : std::uint8_t { Unresolved, Bound, Unbound };
  State state = Unresolved;
  Value value;
};

enum class Flow { Normal, Break, Continue };

class Generator {
 public:
  Generator(const Program& program, std::string& out, const json& data, const TemplateNamespace* functions)
      : program_(program),
        opts_(*program.options),
        out_(&out),
        data_(data),
        functions_(functions),
        slots_(program.slot_names.size()) {
    if (!data.is_object() && !data.is_null()) {
      throw TemplateError("generate() needs an object (or null) of names, got " + std::string(type_name(data)),
                          program.name, 0);
    }
  }

  void run() { exec_body(program_.body); }

 private:
  // --- output ---

  void append(std::string_view s) {
    out_->append(s);
    count_output(s.size());
  }
  void count_output(std::size_t n) {
    total_output_ += n;
    if (opts_.max_output_bytes && total_output_ > opts_.max_output_bytes) {
      fail_limit("output exceeds max_output_bytes (" + std::to_string(opts_.max_output_bytes) + ")");
    }
  }
  void check_size(std::size_t n) const {
    if (opts_.max_output_bytes && n > opts_.max_output_bytes) {
      fail_limit("value larger than max_output_bytes (" + std::to_string(opts_.max_output_bytes) + ")");
    }
  }
  void count_iteration() { charge(1); }
  /// Charges `n` units of work (a loop iteration, an item a built-in
  /// builds or copies) to the max_iterations budget, so neither loops nor
  /// quadratic uses of range() and sorted() run away.
  void charge(std::size_t n) {
    iterations_ += n;
    if (opts_.max_iterations && iterations_ > opts_.max_iterations) {
      fail_limit("iterations exceed max_iterations (" + std::to_string(opts_.max_iterations) + ")");
    }
  }
  void append_value(std::string& out, const Value& v) const {
    if (v.is_fn()) {
      out += "<function ";
      out += v.fn.name;
      out += '>';
      return;
    }
    append_str(out, v.get(), false, 0, opts_.max_nesting);
  }
  std::string str_of(const Value& v) const {
    if (!v.is_fn() && v.get().is_string()) return v.get().get_ref<const std::string&>();
    std::string s;
    append_value(s, v);
    return s;
  }

  // --- names ---

  Slot& resolve(std::uint32_t slot) {
    Slot& s = slots_[slot];
    if (s.state != Slot::Unresolved) return s;
    const std::string& name = program_.slot_names[slot];
    s.state = Slot::Bound;
    if (data_.is_object()) {
      auto it = data_.find(name);
      if (it != data_.end()) {
        s.value = Value::borrow(*it, kStable);
        return s;
      }
    }
    if (functions_) {
      auto it = functions_->find(name);
      if (it != functions_->end()) {
        s.value = Value::function(FnRef{Builtin::User, &it->second, it->first});
        return s;
      }
    }
    auto it = opts_.functions.find(name);
    if (it != opts_.functions.end()) {
      s.value = Value::function(FnRef{Builtin::User, &it->second, it->first});
      return s;
    }
    if (const BuiltinEntry* b = find_builtin(name)) {
      s.value = Value::function(FnRef{b->id, nullptr, b->name});
      return s;
    }
    s.state = Slot::Unbound;
    return s;
  }

  Value read_slot(std::uint32_t slot) {
    Slot& s = resolve(slot);
    if (s.state == Slot::Unbound) fail("name '" + program_.slot_names[slot] + "' is not defined");
    const Value& v = s.value;
    if (v.is_fn()) return Value::function(v.fn);
    if (v.ref) return Value::borrow(*v.ref, v.life);
    return Value::borrow(v.own, kLocal);
  }

  void assign(std::uint32_t slot, Value v) {
    Slot& s = slots_[slot];
    s.state = Slot::Bound;
    s.value = std::move(v);
  }

  // --- expressions ---

  Value eval(const Expr& e, const FileCtx& fc) {
    switch (e.kind) {
      case ExprKind::Const: return Value::borrow(e.constant, kStable);
      case ExprKind::Name: return read_slot(fc.slot_of[e.name_index]);
      case ExprKind::Attr: return attribute(eval(*e.children[0], fc), e.name);
      case ExprKind::Index: {
        Value base = eval(*e.children[0], fc);
        Value key = eval(*e.children[1], fc);
        return index(std::move(base), key);
      }
      case ExprKind::Slice: return slice(e, fc);
      case ExprKind::Call: return call(e, fc);
      case ExprKind::Unary: {
        Value v = eval(*e.children[0], fc);
        if (e.op == Op::Not) return Value::owned(!truthy(v));
        Num n;
        if (v.is_fn() || !to_num(v.get(), n)) {
          fail(std::string("bad operand type for unary ") + (e.op == Op::Neg ? "-" : "+") + ": '" + type_name(v) +
               "'");
        }
        if (e.op == Op::Neg) {
          if (n.is_float) n.d = -n.d;
          else n.i = sub_checked(0, n.i);
        }
        return Value::owned(from_num(n));
      }
      case ExprKind::Binary: {
        Value a = eval(*e.children[0], fc);
        Value b = eval(*e.children[1], fc);
        return Value::owned(arithmetic(e.op, a, b));
      }
      case ExprKind::Compare: {
        Value left = eval(*e.children[0], fc);
        for (std::size_t i = 0; i < e.cmp_ops.size(); ++i) {
          Value right = eval(*e.children[i + 1], fc);
          if (!compare(e.cmp_ops[i], left, right)) return Value::owned(false);
          left = std::move(right);
        }
        return Value::owned(true);
      }
      case ExprKind::And: {
        Value a = eval(*e.children[0], fc);
        if (!truthy(a)) return a;
        return eval(*e.children[1], fc);
      }
      case ExprKind::Or: {
        Value a = eval(*e.children[0], fc);
        if (truthy(a)) return a;
        return eval(*e.children[1], fc);
      }
      case ExprKind::IfElse:
        return truthy(eval(*e.children[0], fc)) ? eval(*e.children[1], fc) : eval(*e.children[2], fc);
      case ExprKind::List: {
        json list = json::array();
        for (const auto& c : e.children) list.push_back(to_json(eval(*c, fc)));
        check_depth(list, opts_.max_nesting);
        return Value::owned(std::move(list));
      }
      case ExprKind::Dict: {
        json dict = json::object();
        for (std::size_t i = 0; i + 1 < e.children.size(); i += 2) {
          Value k = eval(*e.children[i], fc);
          if (k.is_fn() || !k.get().is_string()) fail("squall template dict keys must be strings");
          dict[k.get().get<std::string>()] = to_json(eval(*e.children[i + 1], fc));
        }
        check_depth(dict, opts_.max_nesting);
        return Value::owned(std::move(dict));
      }
    }
    fail("bad expression");
  }

  static json to_json(Value v) {
    if (v.is_fn()) fail("functions cannot be stored in lists or dicts");
    return std::move(v).take();
  }

  Value attribute(Value base, const std::string& name) {
    if (!base.is_fn() && base.get().is_object()) {
      const json& obj = base.get();
      auto it = obj.find(name);
      if (it != obj.end()) {
        if (base.ref) return Value::borrow(*it, base.life);
        return Value::owned(*it);
      }
    }
    fail(std::string("'") + type_name(base) + "' object has no attribute '" + name + "'");
  }

  static bool to_index(const Value& key, std::int64_t& i) {
    if (key.is_fn() || !is_int_like(key.get())) {
      if (!key.is_fn() && key.get().is_number_unsigned()) {
        i = std::numeric_limits<std::int64_t>::max();
        return true;
      }
      return false;
    }
    i = key.get().is_boolean() ? (key.get().get<bool>() ? 1 : 0) : key.get().get<std::int64_t>();
    return true;
  }

  Value index(Value base, const Value& key) {
    if (base.is_fn()) fail("'function' object is not subscriptable");
    const json& b = base.get();
    if (b.is_object()) {
      if (!key.is_fn() && key.get().is_string()) {
        auto it = b.find(key.get().get_ref<const std::string&>());
        if (it != b.end()) return base.ref ? Value::borrow(*it, base.life) : Value::owned(*it);
      }
      std::string k;
      if (key.is_fn()) k = "<function>";
      else append_str(k, key.get(), true, 0, opts_.max_nesting);
      fail("KeyError: " + k);
    }
    if (b.is_array() || b.is_string()) {
      std::int64_t i;
      if (!to_index(key, i)) {
        fail(std::string(b.is_array() ? "list" : "string") + " indices must be integers, not " + type_name(key));
      }
      if (b.is_array()) {
        auto n = static_cast<std::int64_t>(b.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) fail("list index out of range");
        const json& item = b[static_cast<std::size_t>(i)];
        return base.ref ? Value::borrow(item, base.life) : Value::owned(item);
      }
      const std::string& s = b.get_ref<const std::string&>();
      std::vector<std::size_t> offsets = code_point_offsets(s);
      auto n = static_cast<std::int64_t>(offsets.size() - 1);
      if (i < 0) i += n;
      if (i < 0 || i >= n) fail("string index out of range");
      auto at = static_cast<std::size_t>(i);
      return Value::owned(s.substr(offsets[at], offsets[at + 1] - offsets[at]));
    }
    fail(std::string("'") + type_name(b) + "' object is not subscriptable");
  }

  Value slice(const Expr& e, const FileCtx& fc) {
    Value base = eval(*e.children[0], fc);
    std::int64_t parts[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.children[static_cast<std::size_t>(k) + 1]) continue;
      Value v = eval(*e.children[static_cast<std::size_t>(k) + 1], fc);
      if (!v.is_fn() && v.get().is_null()) continue;
      if (!to_index(v, parts[k])) fail("slice indices must be integers or None");
      given[k] = true;
    }
    std::int64_t step = given[2] ? parts[2] : 1;
    if (step == 0) fail("slice step cannot be zero");
    if (base.is_fn() || !(base.get().is_array() || base.get().is_string())) {
      fail(std::string("'") + type_name(base) + "' object is not subscriptable");
    }
    const json& b = base.get();
    std::vector<std::size_t> offsets;
    std::int64_t n;
    if (b.is_array()) {
      n = static_cast<std::int64_t>(b.size());
    } else {
      offsets = code_point_offsets(b.get_ref<const std::string&>());
      n = static_cast<std::int64_t>(offsets.size() - 1);
    }
    // Python's PySlice_AdjustIndices.
    auto adjust = [&](std::int64_t v, bool is_given, std::int64_t dflt) {
      if (!is_given) return dflt;
      if (v < 0) {
        v += n;
        if (v < 0) v = step < 0 ? -1 : 0;
      } else if (v >= n) {
        v = step < 0 ? n - 1 : n;
      }
      return v;
    };
    std::int64_t start = adjust(parts[0], given[0], step < 0 ? n - 1 : 0);
    std::int64_t stop = adjust(parts[1], given[1], step < 0 ? -1 : n);
    json result = b.is_array() ? json::array() : json(std::string());
    charge(static_cast<std::size_t>(n));
    for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      auto at = static_cast<std::size_t>(i);
      if (b.is_array()) {
        result.push_back(b[at]);
      } else {
        const std::string& s = b.get_ref<const std::string&>();
        result.get_ref<std::string&>().append(s, offsets[at], offsets[at + 1] - offsets[at]);
      }
      if ((step > 0 && i > std::numeric_limits<std::int64_t>::max() - step) ||
          (step < 0 && i < std::numeric_limits<std::int64_t>::min() - step)) {
        break;
      }
    }
    return Value::owned(std::move(result));
  }

  json repeat(const json& seq, std::int64_t times) {
    json result = seq.is_string() ? json(std::string()) : json::array();
    if (times <= 0 || seq.empty()) return result;
    std::size_t unit = seq.is_string() ? seq.get_ref<const std::string&>().size() : seq.size();
    if (static_cast<std::uint64_t>(times) > std::numeric_limits<std::size_t>::max() / 2 / unit) {
      fail("repeated sequence too large");
    }
    check_size(unit * static_cast<std::size_t>(times));
    if (seq.is_array()) charge(unit * static_cast<std::size_t>(times));
    if (seq.is_string()) {
      std::string& s = result.get_ref<std::string&>();
      const std::string& part = seq.get_ref<const std::string&>();
      s.reserve(unit * static_cast<std::size_t>(times));
      for (std::int64_t k = 0; k < times; ++k) s += part;
    } else {
      for (std::int64_t k = 0; k < times; ++k) {
        for (const auto& item : seq) result.push_back(item);
      }
    }
    return result;
  }

  json arithmetic(Op op, const Value& av, const Value& bv) {
    if (av.is_fn() || bv.is_fn()) unsupported(op, av, bv);
    const json& a = av.get();
    const json& b = bv.get();
    Num x, y;
    bool numeric = to_num(a, x) && to_num(b, y);
    if (!numeric) {
      if (op == Op::Add && a.is_string() && b.is_string()) {
        check_size(a.get_ref<const std::string&>().size() + b.get_ref<const std::string&>().size());
        return a.get_ref<const std::string&>() + b.get_ref<const std::string&>();
      }
      if (op == Op::Add && a.is_array() && b.is_array()) {
        check_size(a.size() + b.size());
        charge(a.size() + b.size());
        json r = a;
        for (const auto& item : b) r.push_back(item);
        return r;
      }
      if (op == Op::Mul && (a.is_string() || a.is_array()) && is_int_like(b)) {
        Num n;
        to_num(b, n);
        return repeat(a, n.i);
      }
      if (op == Op::Mul && (b.is_string() || b.is_array()) && is_int_like(a)) {
        Num n;
        to_num(a, n);
        return repeat(b, n.i);
      }
      if (op == Op::Mod && a.is_string()) fail("%-formatting of strings is not supported in squall templates");
      unsupported(op, av, bv);
    }
    if (!x.is_float && !y.is_float) {
      switch (op) {
        case Op::Add: return add_checked(x.i, y.i);
        case Op::Sub: return sub_checked(x.i, y.i);
        case Op::Mul: return mul_checked(x.i, y.i);
        case Op::Div:
          if (y.i == 0) fail("division by zero");
          return static_cast<double>(x.i) / static_cast<double>(y.i);
        case Op::FloorDiv:
        case Op::Mod: {
          if (y.i == 0) fail("integer division or modulo by zero");
          if (x.i == std::numeric_limits<std::int64_t>::min() && y.i == -1) {
            if (op == Op::Mod) return 0;
            fail("integer overflow (squall templates use 64-bit integers)");
          }
          std::int64_t q = x.i / y.i, m = x.i % y.i;
          if (m != 0 && ((m < 0) != (y.i < 0))) {
            --q;
            m += y.i;
          }
          return op == Op::Mod ? m : q;
        }
        case Op::Pow: {
          if (y.i < 0) {
            if (x.i == 0) fail("0.0 cannot be raised to a negative power");
            return std::pow(static_cast<double>(x.i), static_cast<double>(y.i));
          }
          std::int64_t result = 1, base = x.i, e = y.i;
          while (e > 0) {
            if (e & 1) result = mul_checked(result, base);
            e >>= 1;
            if (e > 0) base = mul_checked(base, base);
          }
          return result;
        }
        default: break;
      }
    }
    double p = x.as_double(), q = y.as_double();
    switch (op) {
      case Op::Add: return p + q;
      case Op::Sub: return p - q;
      case Op::Mul: return p * q;
      case Op::Div:
        if (q == 0.0) fail("float division by zero");
        return p / q;
      case Op::FloorDiv:
        if (q == 0.0) fail("float floor division by zero");
        return py_floordiv(p, q);
      case Op::Mod:
        if (q == 0.0) fail("float modulo");
        return py_fmod(p, q);
      case Op::Pow: {
        if (p == 0.0 && q < 0) fail("0.0 cannot be raised to a negative power");
        if (p < 0 && q != std::floor(q) && std::isfinite(q)) fail("complex results are not supported");
        double r = std::pow(p, q);
        if (std::isinf(r) && std::isfinite(p) && std::isfinite(q)) fail("(34, 'Numerical result out of range')");
        return r;
      }
      default: break;
    }
    fail("bad operator");
  }

  bool compare(Op op, const Value& a, const Value& b) {
    switch (op) {
      case Op::Eq: return values_equal(a, b);
      case Op::Ne: return !values_equal(a, b);
      case Op::In: return py_contains(b, a);
      case Op::NotIn: return !py_contains(b, a);
      case Op::Is: return py_is(a, b);
      case Op::IsNot: return !py_is(a, b);
      default:
        if (a.is_fn() || b.is_fn()) {
          fail(std::string("'") + op_text(op) + "' not supported between instances of '" + type_name(a) +
               "' and '" + type_name(b) + "'");
        }
        return py_order(op, a.get(), b.get());
    }
  }

  // --- calls ---

  struct Args {
    std::vector<Value> positional;
    std::vector<std::pair<std::string_view, Value>> keywords;

    const Value* get(std::size_t i, std::string_view name) const {
      if (i < positional.size()) return &positional[i];
      for (const auto& [k, v] : keywords) {
        if (k == name) return &v;
      }
      return nullptr;
    }
    void expect(std::string_view fn, std::size_t min, std::size_t max,
                std::initializer_list<std::string_view> allowed = {}) const {
      if (positional.size() < min || positional.size() > max) {
        std::string range = min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max);
        fail(std::string(fn) + "() takes " + range + " positional arguments but " +
             std::to_string(positional.size()) + " were given");
      }
      for (const auto& [k, v] : keywords) {
        if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
          fail(std::string(fn) + "() got an unexpected keyword argument '" + std::string(k) + "'");
        }
      }
    }
  };

  Args eval_args(const Expr& e, const FileCtx& fc) {
    Args args;
    std::size_t nkw = e.keywords.size();
    std::size_t npos = e.children.size() - 1 - nkw;
    args.positional.reserve(npos);
    for (std::size_t i = 0; i < npos; ++i) args.positional.push_back(eval(*e.children[i + 1], fc));
    for (std::size_t i = 0; i < nkw; ++i) {
      args.keywords.emplace_back(e.keywords[i], eval(*e.children[1 + npos + i], fc));
    }
    return args;
  }

  Value call(const Expr& e, const FileCtx& fc) {
    const Expr& callee = *e.children[0];
    if (callee.kind == ExprKind::Attr) {
      Value base = eval(*callee.children[0], fc);
      // As in Python, a method of a dict wins over a key of the same name.
      if (!base.is_fn()) {
        const json& b = base.get();
        if (b.is_object() || b.is_string() || b.is_array()) {
          Args args = eval_args(e, fc);
          return method(base, callee.name, args);
        }
      }
      Value f = attribute(std::move(base), callee.name);
      return invoke(f, eval_args(e, fc));
    }
    Value f = eval(callee, fc);
    return invoke(f, eval_args(e, fc));
  }

  /// Calls every item of an iterable value.
  template <typename F>
  void for_each(const Value& v, F&& f) {
    if (v.is_fn()) fail("'function' object is not iterable");
    const json& j = v.get();
    if (j.is_array()) {
      for (const auto& item : j) f(item);
    } else if (j.is_object()) {
      for (const auto& [k, item] : j.items()) f(json(k));
    } else if (j.is_string()) {
      const std::string& s = j.get_ref<const std::string&>();
      for (std::size_t i = 0; i < s.size();) {
        Decoded d = decode_utf8(s, i);
        f(json(s.substr(i, d.length)));
        i += d.length;
      }
    } else {
      fail(std::string("'") + type_name(j) + "' object is not iterable");
    }
  }

  json to_list(const Value& v) {
    json list = json::array();
    for_each(v, [&](const json& item) {
      charge(1);
      list.push_back(item);
    });
    return list;
  }

  static const std::string& need_str(const Value* v, std::string_view fn, std::string_view what = "argument") {
    if (!v || v->is_fn() || !v->get().is_string()) {
      fail(std::string(fn) + "() " + std::string(what) + " must be str, not " + (v ? type_name(*v) : "nothing"));
    }
    return v->get().get_ref<const std::string&>();
  }

  static std::int64_t need_int(const Value* v, std::string_view fn) {
    std::int64_t i;
    if (!v || !to_index(*v, i) || (!v->is_fn() && v->get().is_number_unsigned())) {
      fail(std::string("'") + (v ? type_name(*v) : "nothing") + "' object cannot be interpreted as an integer in " +
           std::string(fn) + "()");
    }
    return i;
  }

  Value invoke(const Value& f, const Args& args) {
    if (!f.is_fn()) fail(std::string("'") + type_name(f) + "' object is not callable");
    std::string_view name = f.fn.name;
    switch (f.fn.id) {
      case Builtin::None: break;
      case Builtin::User: return call_user(f.fn, args);
      case Builtin::Escape: {
        args.expect(name, 1, 1);
        return Value::owned(xhtml_escape(str_of(args.positional[0])));
      }
      case Builtin::UrlEscape: {
        args.expect(name, 1, 2, {"plus"});
        const Value* plus = args.get(1, "plus");
        std::string s = url_escape(str_of(args.positional[0]), plus ? truthy(*plus) : true);
        check_size(s.size());
        return Value::owned(std::move(s));
      }
      case Builtin::JsonEncode: {
        args.expect(name, 1, 1);
        if (args.positional[0].is_fn()) fail("Object of type function is not JSON serializable");
        check_depth(args.positional[0].get(), opts_.max_nesting + 64);
        return Value::owned(json_encode(args.positional[0].get()));
      }
      case Builtin::Squeeze: {
        args.expect(name, 1, 1);
        return Value::owned(squeeze(str_of(args.positional[0])));
      }
      case Builtin::Linkify: {
        args.expect(name, 1, 5, {"shorten", "extra_params", "require_protocol", "permitted_protocols"});
        LinkifyOptions o;
        if (const Value* v = args.get(1, "shorten")) o.shorten = truthy(*v);
        if (const Value* v = args.get(2, "extra_params")) o.extra_params = need_str(v, name, "extra_params");
        if (const Value* v = args.get(3, "require_protocol")) o.require_protocol = truthy(*v);
        if (const Value* v = args.get(4, "permitted_protocols")) {
          o.permitted_protocols.clear();
          for_each(*v, [&](const json& p) {
            if (!p.is_string()) fail("linkify() permitted_protocols must be strings");
            o.permitted_protocols.push_back(p.get<std::string>());
          });
        }
        return Value::owned(linkify(str_of(args.positional[0]), o));
      }
      case Builtin::Len: {
        args.expect(name, 1, 1);
        const Value& v = args.positional[0];
        if (!v.is_fn()) {
          const json& j = v.get();
          if (j.is_string()) return Value::owned(code_point_count(j.get_ref<const std::string&>()));
          if (j.is_array() || j.is_object()) return Value::owned(j.size());
        }
        fail(std::string("object of type '") + type_name(v) + "' has no len()");
      }
      case Builtin::Str: {
        args.expect(name, 0, 1);
        if (args.positional.empty()) return Value::owned(std::string());
        return Value::owned(str_of(args.positional[0]));
      }
      case Builtin::Int: return Value::owned(to_int(args));
      case Builtin::Float: return Value::owned(to_float(args));
      case Builtin::Bool: {
        args.expect(name, 0, 1);
        return Value::owned(!args.positional.empty() && truthy(args.positional[0]));
      }
      case Builtin::Abs: {
        args.expect(name, 1, 1);
        Num n;
        if (args.positional[0].is_fn() || !to_num(args.positional[0].get(), n)) {
          fail(std::string("bad operand type for abs(): '") + type_name(args.positional[0]) + "'");
        }
        if (n.is_float) return Value::owned(std::fabs(n.d));
        return Value::owned(n.i < 0 ? sub_checked(0, n.i) : n.i);
      }
      case Builtin::Min:
      case Builtin::Max: {
        args.expect(name, 1, std::numeric_limits<std::size_t>::max());
        bool is_min = f.fn.id == Builtin::Min;
        const json* best = nullptr;
        json items;
        auto consider = [&](const json& item) {
          if (!best || py_order(is_min ? Op::Lt : Op::Gt, item, *best)) best = &item;
        };
        if (args.positional.size() == 1) {
          items = to_list(args.positional[0]);
          for (const auto& item : items) consider(item);
          if (!best) fail(std::string(name) + "() arg is an empty sequence");
        } else {
          for (const auto& v : args.positional) {
            if (v.is_fn()) fail(std::string(name) + "() of functions");
            consider(v.get());
          }
        }
        return Value::owned(*best);
      }
      case Builtin::Sum: {
        args.expect(name, 1, 2, {"start"});
        Value total = Value::owned(0);
        if (const Value* start = args.get(1, "start")) total = Value::owned(start->get());
        json items = to_list(args.positional[0]);
        for (const auto& item : items) total = Value::owned(arithmetic(Op::Add, total, Value::borrow(item, kStable)));
        return total;
      }
      case Builtin::Range: {
        args.expect(name, 1, 3);
        std::int64_t start = 0, stop, step = 1;
        if (args.positional.size() == 1) {
          stop = need_int(&args.positional[0], name);
        } else {
          start = need_int(&args.positional[0], name);
          stop = need_int(&args.positional[1], name);
          if (args.positional.size() == 3) step = need_int(&args.positional[2], name);
        }
        if (step == 0) fail("range() arg 3 must not be zero");
        long double span = step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
        long double count_ld = span <= 0 ? 0 : std::ceil(span / (step > 0 ? step : -static_cast<long double>(step)));
        std::size_t limit = opts_.max_iterations ? opts_.max_iterations : std::size_t{1} << 26;
        if (count_ld > static_cast<long double>(limit)) {
          fail_limit("range() of " + std::to_string(static_cast<unsigned long long>(count_ld)) + " items exceeds " +
                     (opts_.max_iterations ? "max_iterations (" + std::to_string(limit) + ")"
                                           : "the limit of " + std::to_string(limit) + " items"));
        }
        auto count = static_cast<std::size_t>(count_ld);
        charge(count);
        json list = json::array();
        list.get_ref<json::array_t&>().reserve(count);
        std::int64_t value = start;
        for (std::size_t k = 0; k < count; ++k) {
          list.push_back(value);
          if (__builtin_add_overflow(value, step, &value)) break;  // past stop: that was the last
        }
        return Value::owned(std::move(list));
      }
      case Builtin::Sorted: {
        args.expect(name, 1, 1, {"reverse"});
        json list = to_list(args.positional[0]);
        auto& arr = list.get_ref<json::array_t&>();
        std::stable_sort(arr.begin(), arr.end(), py_less);
        if (const Value* r = args.get(1, "reverse"); r && truthy(*r)) {
          // Python keeps equal items in order with reverse=True.
          std::stable_sort(arr.begin(), arr.end(), [](const json& a, const json& b) { return py_less(b, a); });
        }
        return Value::owned(std::move(list));
      }
      case Builtin::Reversed: {
        args.expect(name, 1, 1);
        json list = to_list(args.positional[0]);
        auto& arr = list.get_ref<json::array_t&>();
        std::reverse(arr.begin(), arr.end());
        return Value::owned(std::move(list));
      }
      case Builtin::Enumerate: {
        args.expect(name, 1, 2, {"start"});
        std::int64_t i = 0;
        if (const Value* s = args.get(1, "start")) i = need_int(s, name);
        json list = json::array();
        for_each(args.positional[0], [&](const json& item) {
          charge(1);
          list.push_back(json::array({i++, item}));
        });
        check_depth(list, opts_.max_nesting);
        return Value::owned(std::move(list));
      }
      case Builtin::List: {
        args.expect(name, 0, 1);
        if (args.positional.empty()) return Value::owned(json::array());
        return Value::owned(to_list(args.positional[0]));
      }
      case Builtin::Any:
      case Builtin::All: {
        args.expect(name, 1, 1);
        bool want = f.fn.id == Builtin::Any;
        bool found = false;
        for_each(args.positional[0], [&](const json& item) {
          if (!found && truthy(Value::borrow(item, kStable)) == want) found = true;
        });
        return Value::owned(want ? found : !found);
      }
    }
    fail("not callable");
  }

  json to_int(const Args& args) {
    args.expect("int", 0, 1);
    if (args.positional.empty()) return 0;
    const Value& v = args.positional[0];
    Num n;
    if (!v.is_fn() && to_num(v.get(), n)) {
      if (!n.is_float) return n.i;
      if (!std::isfinite(n.d)) fail("cannot convert float " + str_of(v) + " to integer");
      double t = std::trunc(n.d);
      if (t < -9.2233720368547758e18 || t >= 9.2233720368547758e18) {
        fail("integer overflow (squall templates use 64-bit integers)");
      }
      return static_cast<std::int64_t>(t);
    }
    if (!v.is_fn() && v.get().is_string()) {
      const std::string& raw = v.get().get_ref<const std::string&>();
      std::string_view s = strip_space(raw);
      bool negative = false;
      if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
      }
      std::string digits;
      bool ok = !s.empty() && s.front() != '_' && s.back() != '_';
      for (std::size_t i = 0; ok && i < s.size(); ++i) {
        if (s[i] == '_') ok = s[i - 1] != '_';
        else if (s[i] >= '0' && s[i] <= '9') digits += s[i];
        else ok = false;
      }
      if (!ok) {
        std::string r;
        append_repr_string(r, raw);
        fail("invalid literal for int() with base 10: " + r);
      }
      std::uint64_t u = 0;
      for (char c : digits) {
        if (u > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) fail("integer overflow (squall templates use 64-bit integers)");
        u = u * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (negative ? 1 : 0)) {
        fail("integer overflow (squall templates use 64-bit integers)");
      }
      return negative ? static_cast<std::int64_t>(0 - u) : static_cast<std::int64_t>(u);
    }
    fail(std::string("int() argument must be a string or a number, not '") + type_name(v) + "'");
  }

  json to_float(const Args& args) {
    args.expect("float", 0, 1);
    if (args.positional.empty()) return 0.0;
    const Value& v = args.positional[0];
    Num n;
    if (!v.is_fn() && to_num(v.get(), n)) return n.as_double();
    if (!v.is_fn() && v.get().is_string()) {
      const std::string& raw = v.get().get_ref<const std::string&>();
      std::string s(strip_space(raw));
      std::string lower = s;
      for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      std::string_view body = lower;
      bool negative = !body.empty() && body[0] == '-';
      if (!body.empty() && (body[0] == '-' || body[0] == '+')) body.remove_prefix(1);
      if (body == "inf" || body == "infinity") return negative ? -HUGE_VAL : HUGE_VAL;
      if (body == "nan") return std::nan("");
      bool ok = !body.empty();
      for (char c : body) ok = ok && ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == '+' || c == '-');
      std::size_t used = 0;
      double d = 0;
      if (ok) {
        try {
          d = std::stod(s, &used);
        } catch (const std::out_of_range&) {
          d = s.find("e-") != std::string::npos ? 0.0 : (negative ? -HUGE_VAL : HUGE_VAL);
          used = s.size();
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (!ok || used != s.size()) {
        std::string r;
        append_repr_string(r, raw);
        fail("could not convert string to float: " + r);
      }
      return d;
    }
    fail(std::string("float() argument must be a string or a number, not '") + type_name(v) + "'");
  }

  Value call_user(const FnRef& fn, const Args& args) {
    std::vector<const json*> positional;
    positional.reserve(args.positional.size());
    for (const auto& v : args.positional) {
      if (v.is_fn()) fail("functions cannot be passed to " + std::string(fn.name) + "()");
      positional.push_back(&v.get());
    }
    std::vector<FunctionArgs::Keyword> keywords;
    keywords.reserve(args.keywords.size());
    for (const auto& [k, v] : args.keywords) {
      if (v.is_fn()) fail("functions cannot be passed to " + std::string(fn.name) + "()");
      keywords.emplace_back(k, &v.get());
    }
    FunctionArgs fargs(fn.name, positional, keywords);
    try {
      return Value::owned((*fn.user)(fargs));
    } catch (const TemplateError& e) {
      fail(e.filename().empty() ? e.message() : std::string(e.what()));
    } catch (const std::exception& e) {
      fail(std::string(fn.name) + "() raised: " + e.what());
    }
  }

  // --- methods of dicts, strings and lists ---

  Value method(const Value& base, const std::string& name, const Args& args) {
    const json& b = base.get();
    if (b.is_object()) {
      if (name == "items" || name == "keys" || name == "values") {
        args.expect(name, 0, 0);
        charge(b.size());
        json list = json::array();
        for (const auto& [k, v] : b.items()) {
          if (name == "items") list.push_back(json::array({k, v}));
          else if (name == "keys") list.push_back(k);
          else list.push_back(v);
        }
        check_depth(list, opts_.max_nesting + 64);
        return Value::owned(std::move(list));
      }
      if (name == "get") {
        args.expect(name, 1, 2);
        const Value& key = args.positional[0];
        if (!key.is_fn() && key.get().is_string()) {
          auto it = b.find(key.get().get_ref<const std::string&>());
          if (it != b.end()) return base.ref ? Value::borrow(*it, base.life) : Value::owned(*it);
        }
        if (args.positional.size() == 2) return args.positional[1].is_fn() ? Value::function(args.positional[1].fn)
                                                                           : Value::owned(args.positional[1].get());
        return Value::owned(nullptr);
      }
    } else if (b.is_string()) {
      return Value::owned(string_method(b.get_ref<const std::string&>(), name, args));
    } else if (b.is_array()) {
      if (name == "index" || name == "count") {
        args.expect(name, 1, 1);
        const Value& x = args.positional[0];
        std::int64_t count = 0;
        for (std::size_t i = 0; i < b.size(); ++i) {
          if (x.is_fn() || !py_equal(b[i], x.get())) continue;
          if (name == "index") return Value::owned(i);
          ++count;
        }
        if (name == "index") fail("list.index(x): x not in list");
        return Value::owned(count);
      }
    }
    fail(std::string("'") + type_name(b) + "' object has no attribute '" + name + "'");
  }

  static std::string_view strip_chars(std::string_view s, const std::string* chars, bool left, bool right) {
    if (!chars) {
      std::string_view stripped = strip_space(s);
      std::size_t lead = static_cast<std::size_t>(stripped.data() - s.data());
      if (!left) return s.substr(0, lead + stripped.size());
      if (!right) return s.substr(lead);
      return stripped;
    }
    std::vector<std::size_t> set_offsets = code_point_offsets(*chars);
    auto in_set = [&](std::string_view cp) {
      for (std::size_t k = 0; k + 1 < set_offsets.size(); ++k) {
        if (std::string_view(*chars).substr(set_offsets[k], set_offsets[k + 1] - set_offsets[k]) == cp) return true;
      }
      return false;
    };
    std::vector<std::size_t> offsets = code_point_offsets(s);
    std::size_t begin = 0, end = offsets.size() - 1;
    if (left) {
      while (begin < end && in_set(s.substr(offsets[begin], offsets[begin + 1] - offsets[begin]))) ++begin;
    }
    if (right) {
      while (end > begin && in_set(s.substr(offsets[end - 1], offsets[end] - offsets[end - 1]))) --end;
    }
    return s.substr(offsets[begin], offsets[end] - offsets[begin]);
  }

  json string_method(const std::string& s, const std::string& name, const Args& args) {
    if (name == "upper" || name == "lower") {
      args.expect(name, 0, 0);
      std::string r = s;
      for (char& c : r) {
        if (name == "upper" && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
        if (name == "lower" && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      }
      return r;
    }
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      args.expect(name, 0, 1);
      const std::string* chars = nullptr;
      if (!args.positional.empty() && !(args.positional[0].get().is_null() && !args.positional[0].is_fn())) {
        chars = &need_str(&args.positional[0], name);
      }
      return std::string(strip_chars(s, chars, name != "rstrip", name != "lstrip"));
    }
    if (name == "startswith" || name == "endswith") {
      args.expect(name, 1, 1);
      const std::string& affix = need_str(&args.positional[0], name);
      bool r = name == "startswith" ? s.starts_with(affix) : s.ends_with(affix);
      return r;
    }
    if (name == "replace") {
      args.expect(name, 2, 3);
      const std::string& from = need_str(&args.positional[0], name);
      const std::string& to = need_str(&args.positional[1], name);
      std::int64_t max = args.positional.size() == 3 ? need_int(&args.positional[2], name) : -1;
      std::string r;
      if (from.empty()) {
        // Python inserts `to` around every code point.
        std::vector<std::size_t> offsets = code_point_offsets(s);
        std::int64_t done = 0;
        for (std::size_t k = 0; k + 1 < offsets.size(); ++k) {
          if (max < 0 || done < max) {
            r += to;
            ++done;
          }
          r.append(s, offsets[k], offsets[k + 1] - offsets[k]);
          check_size(r.size());
        }
        if (max < 0 || done < max) r += to;
        return r;
      }
      std::size_t pos = 0;
      std::int64_t done = 0;
      while (max < 0 || done < max) {
        std::size_t at = s.find(from, pos);
        if (at == std::string::npos) break;
        r.append(s, pos, at - pos);
        r += to;
        check_size(r.size());
        pos = at + from.size();
        ++done;
      }
      r.append(s, pos);
      return r;
    }
    if (name == "split") {
      args.expect(name, 0, 2, {"sep", "maxsplit"});
      const Value* sep = args.get(0, "sep");
      const Value* maxv = args.get(1, "maxsplit");
      std::int64_t max = maxv ? need_int(maxv, name) : -1;
      json parts = json::array();
      if (!sep || (!sep->is_fn() && sep->get().is_null())) {
        // Runs of whitespace separate; no empty strings.
        std::size_t i = 0;
        std::int64_t done = 0;
        while (true) {
          while (i < s.size()) {
            Decoded d = decode_utf8(s, i);
            if (!is_space(d.cp)) break;
            i += d.length;
          }
          if (i >= s.size()) break;
          if (max >= 0 && done >= max) {
            std::string rest(strip_chars(std::string_view(s).substr(i), nullptr, false, true));
            parts.push_back(rest);
            break;
          }
          std::size_t start = i;
          while (i < s.size()) {
            Decoded d = decode_utf8(s, i);
            if (is_space(d.cp)) break;
            i += d.length;
          }
          parts.push_back(s.substr(start, i - start));
          ++done;
        }
        return parts;
      }
      const std::string& sp = need_str(sep, name, "separator");
      if (sp.empty()) fail("empty separator");
      std::size_t pos = 0;
      std::int64_t done = 0;
      while (max < 0 || done < max) {
        std::size_t at = s.find(sp, pos);
        if (at == std::string::npos) break;
        parts.push_back(s.substr(pos, at - pos));
        pos = at + sp.size();
        ++done;
      }
      parts.push_back(s.substr(pos));
      return parts;
    }
    if (name == "join") {
      args.expect(name, 1, 1);
      std::string r;
      std::size_t i = 0;
      for_each(args.positional[0], [&](const json& item) {
        if (!item.is_string()) {
          fail("sequence item " + std::to_string(i) + ": expected str instance, " + type_name(item) + " found");
        }
        if (i++ > 0) r += s;
        r += item.get_ref<const std::string&>();
        check_size(r.size());
      });
      return r;
    }
    fail("'str' object has no attribute '" + name + "'");
  }

  // --- statements ---

  Flow exec_body(const PBody& body) {
    for (const PNode& n : body) {
      Flow f = exec_node(n);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec_node(const PNode& pn) {
    const Node& n = *pn.node;
    if (n.kind == NodeKind::Text) {
      append(n.text);
      return Flow::Normal;
    }
    try {
      return exec_statement(pn);
    } catch (const EvalError& e) {
      if (e.limit) throw LimitError(e.message, pn.ctx->file->name, n.line);
      throw TemplateError(e.message, pn.ctx->file->name, n.line);
    }
  }

  void output(const PNode& pn) {
    const Node& n = *pn.node;
    const FileCtx& fc = *pn.ctx;
    Value v = eval(*n.expr, fc);
    if (n.raw || fc.autoescape_slot == kNoSlot) {
      std::size_t before = out_->size();
      if (!v.is_fn() && v.get().is_string()) out_->append(v.get().get_ref<const std::string&>());
      else append_value(*out_, v);
      count_output(out_->size() - before);
      return;
    }
    Value esc = read_slot(fc.autoescape_slot);
    if (!esc.is_fn()) fail("autoescape function '" + program_.slot_names[fc.autoescape_slot] + "' is not callable");
    std::size_t before = out_->size();
    if (esc.fn.id == Builtin::Escape) {
      if (!v.is_fn() && v.get().is_string()) {
        xhtml_escape_into(*out_, v.get().get_ref<const std::string&>());
      } else {
        std::string s;
        append_value(s, v);
        xhtml_escape_into(*out_, s);
      }
    } else {
      // Tornado passes the str() of the value to the autoescape function.
      Args args;
      args.positional.push_back(Value::owned(str_of(v)));
      Value r = invoke(esc, args);
      if (!r.is_fn() && r.get().is_string()) out_->append(r.get().get_ref<const std::string&>());
      else append_value(*out_, r);
    }
    count_output(out_->size() - before);
  }

  /// Re-homes the variables that point into the storage of the loop at
  /// `depth` when it ends: copies on a normal exit, unbinds on an error
  /// (copying could throw from a destructor).
  struct LoopExit {
    Generator& g;
    std::uint16_t depth;
    bool owns;
    bool normal = false;
    ~LoopExit() {
      --g.loop_depth_;
      if (!owns) return;
      for (Slot& s : g.slots_) {
        if (s.state != Slot::Bound || !s.value.ref || s.value.life == kStable || s.value.life == kLocal ||
            s.value.life < depth) {
          continue;
        }
        if (normal) {
          s.value.own = *s.value.ref;
          s.value.ref = nullptr;
          s.value.life = kStable;
        } else {
          s.state = Slot::Unbound;
          s.value = Value();
        }
      }
    }
  };

  void assign_targets(const PNode& pn, const json& item, std::uint16_t life, bool owned_item) {
    const Node& n = *pn.node;
    const FileCtx& fc = *pn.ctx;
    if (n.targets.size() == 1) {
      assign(fc.slot_of[n.targets[0]], owned_item ? Value::owned(item) : Value::borrow(item, life));
      return;
    }
    if (!item.is_array()) {
      if (item.is_string() && code_point_count(item.get_ref<const std::string&>()) == n.targets.size()) {
        std::size_t k = 0;
        const std::string& s = item.get_ref<const std::string&>();
        for (std::size_t i = 0; i < s.size(); ++k) {
          Decoded d = decode_utf8(s, i);
          assign(fc.slot_of[n.targets[k]], Value::owned(s.substr(i, d.length)));
          i += d.length;
        }
        return;
      }
      fail(std::string("cannot unpack non-sequence ") + type_name(item));
    }
    if (item.size() < n.targets.size()) {
      fail("not enough values to unpack (expected " + std::to_string(n.targets.size()) + ", got " +
           std::to_string(item.size()) + ")");
    }
    if (item.size() > n.targets.size()) {
      fail("too many values to unpack (expected " + std::to_string(n.targets.size()) + ")");
    }
    for (std::size_t k = 0; k < n.targets.size(); ++k) {
      assign(fc.slot_of[n.targets[k]], owned_item ? Value::owned(item[k]) : Value::borrow(item[k], life));
    }
  }

  Flow exec_for(const PNode& pn) {
    const Node& n = *pn.node;
    const FileCtx& fc = *pn.ctx;
    Value it;
    IterMethod method = IterMethod::None;
    if (n.iter_method != IterMethod::None) {
      // for k, v in d.items(): walk d itself when it is a dict.
      const Expr& base_expr = *n.expr->children[0]->children[0];
      Value base = eval(base_expr, fc);
      const std::string& name = n.expr->children[0]->name;
      if (!base.is_fn() && base.get().is_object()) {
        it = std::move(base);
        method = n.iter_method;
      } else if (!base.is_fn() && (base.get().is_string() || base.get().is_array())) {
        it = this->method(base, name, eval_args(*n.expr, fc));
      } else {
        Value f = attribute(std::move(base), name);
        it = invoke(f, eval_args(*n.expr, fc));
      }
    } else {
      it = eval(*n.expr, fc);
    }
    if (it.ref && it.life == kLocal) it.detach();
    if (loop_depth_ + 1 >= kLocal) fail("loops nested too deeply");
    auto depth = static_cast<std::uint16_t>(++loop_depth_);
    bool owns = it.ref == nullptr;
    LoopExit exit{*this, depth, owns};
    std::uint16_t life = owns ? depth : it.life;
    if (it.is_fn()) fail("'function' object is not iterable");
    const json& j = it.get();
    bool broke = false;
    auto run_body = [&]() -> bool {  // false: stop the loop
      Flow f = exec_body(pn.bodies[0]);
      if (f == Flow::Break) {
        broke = true;
        return false;
      }
      return true;
    };
    if (j.is_array() && method == IterMethod::None) {
      for (const auto& item : j) {
        count_iteration();
        assign_targets(pn, item, life, false);
        if (!run_body()) break;
      }
    } else if (j.is_object()) {
      for (auto entry = j.begin(); entry != j.end(); ++entry) {
        count_iteration();
        if (method == IterMethod::Values) {
          assign_targets(pn, entry.value(), life, false);
        } else if (method == IterMethod::Items) {
          if (n.targets.size() == 2) {
            assign(fc.slot_of[n.targets[0]], Value::owned(entry.key()));
            assign(fc.slot_of[n.targets[1]], Value::borrow(entry.value(), life));
          } else {
            assign_targets(pn, json::array({entry.key(), entry.value()}), life, true);
          }
        } else {
          assign_targets(pn, json(entry.key()), life, true);
        }
        if (!run_body()) break;
      }
    } else if (j.is_string()) {
      const std::string& s = j.get_ref<const std::string&>();
      for (std::size_t i = 0; i < s.size();) {
        count_iteration();
        Decoded d = decode_utf8(s, i);
        assign_targets(pn, json(s.substr(i, d.length)), life, true);
        i += d.length;
        if (!run_body()) break;
      }
    } else {
      fail(std::string("'") + type_name(j) + "' object is not iterable");
    }
    exit.normal = true;
    if (!broke && n.has_else) return exec_body(pn.bodies[1]);
    return Flow::Normal;
  }

  Flow exec_statement(const PNode& pn) {
    const Node& n = *pn.node;
    const FileCtx& fc = *pn.ctx;
    switch (n.kind) {
      case NodeKind::Text:
        append(n.text);
        return Flow::Normal;
      case NodeKind::Output:
        output(pn);
        return Flow::Normal;
      case NodeKind::If:
        for (std::size_t i = 0; i < n.branches.size(); ++i) {
          const ExprPtr& cond = n.branches[i].first;
          if (!cond || truthy(eval(*cond, fc))) return exec_body(pn.bodies[i]);
        }
        return Flow::Normal;
      case NodeKind::For:
        return exec_for(pn);
      case NodeKind::While: {
        ++loop_depth_;
        struct Dec {
          std::size_t& d;
          ~Dec() { --d; }
        } dec{loop_depth_};
        while (truthy(eval(*n.expr, fc))) {
          count_iteration();
          Flow f = exec_body(pn.bodies[0]);
          if (f == Flow::Break) return Flow::Normal;
        }
        if (n.has_else) return exec_body(pn.bodies[1]);
        return Flow::Normal;
      }
      case NodeKind::Set: {
        std::uint32_t slot = fc.slot_of[n.targets[0]];
        Value v = eval(*n.expr, fc);
        if (n.augmented) v = Value::owned(arithmetic(n.set_op, read_slot(slot), v));
        v.detach();
        assign(slot, std::move(v));
        return Flow::Normal;
      }
      case NodeKind::Break: return Flow::Break;
      case NodeKind::Continue: return Flow::Continue;
      case NodeKind::Try: return exec_try(pn);
      case NodeKind::Apply: {
        Value fn = eval(*n.expr, fc);
        std::string captured;
        std::string* saved = out_;
        out_ = &captured;
        struct Restore {
          std::string*& out;
          std::string* saved;
          ~Restore() { out = saved; }
        } restore{out_, saved};
        exec_body(pn.bodies[0]);
        out_ = saved;
        Args args;
        args.positional.push_back(Value::owned(std::move(captured)));
        Value r = invoke(fn, args);
        std::size_t before = out_->size();
        if (!r.is_fn() && r.get().is_string()) out_->append(r.get().get_ref<const std::string&>());
        else append_value(*out_, r);
        count_output(out_->size() - before);
        return Flow::Normal;
      }
      case NodeKind::Block:
      case NodeKind::Include:
      case NodeKind::Extends:
        break;  // resolved by the linker
    }
    fail("internal error: unlinked node");
  }

  Flow exec_try(const PNode& pn) {
    const Node& n = *pn.node;
    Flow flow = Flow::Normal;
    bool failed = false;
    std::exception_ptr pending;
    try {
      flow = exec_body(pn.bodies[0]);
    } catch (const LimitError&) {
      throw;
    } catch (const TemplateError&) {
      if (!n.has_except) pending = std::current_exception();
      failed = true;
    }
    if (failed && n.has_except) {
      try {
        flow = exec_body(pn.bodies[1]);
      } catch (const LimitError&) {
        throw;
      } catch (const TemplateError&) {
        if (!n.has_finally) throw;
        pending = std::current_exception();
      }
    } else if (!failed && n.has_else && flow == Flow::Normal) {
      if (!n.has_finally) return exec_body(pn.bodies[2]);
      try {
        flow = exec_body(pn.bodies[2]);
      } catch (const LimitError&) {
        throw;
      } catch (const TemplateError&) {
        pending = std::current_exception();
      }
    }
    if (n.has_finally) {
      Flow f = exec_body(pn.bodies[3]);
      if (f != Flow::Normal) return f;  // Python: break/continue in finally discards the exception
    }
    if (pending) std::rethrow_exception(pending);
    return flow;
  }

  const Program& program_;
  const TemplateOptions& opts_;
  std::string* out_;
  const json& data_;
  const TemplateNamespace* functions_;
  std::vector<Slot> slots_;
  std::size_t iterations_ = 0;
  std::size_t total_output_ = 0;
  std::size_t loop_depth_ = 0;
};

}  // namespace

void generate_program(const Program& program, std::string& out, const json& data, const TemplateNamespace* functions) {
  Generator g(program, out, data, functions);
  g.run();
}

}  // namespace detail
}  // namespace squall::web
