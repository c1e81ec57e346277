// Program options as Tornado's tornado.options: options are defined where
// they are used (`define`), parsed from the command line and a config file,
// and read anywhere by name or through the handle `define` returns. Built
// on CLI11, which stays out of this header.
//
// Threads: define and parse on one thread at program start; once parsing
// is done, any thread may read values (nothing mutates them any more).
// OptionParser is not otherwise synchronized.
//
//   auto& port = squall::options::define<int>("port", 8888, "listen port");
//   squall::options::parse_command_line(argc, argv);   // --port=8000 or --port 8000
//   server.listen(*port);
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/errors.hpp"

namespace squall::options {

/// A definition, command line or config file that cannot be accepted: an
/// unknown or repeated option, a missing or malformed value, an unreadable
/// file. what() is a message for the user. A program's main() prints it
/// and exits with exit_code() (2, the usual status for usage errors).
class Error : public squall::Error {
 public:
  using squall::Error::Error;
  virtual int exit_code() const noexcept { return 2; }
};

/// Thrown by parse_command_line for `--help`: what() is the help text
/// (OptionParser::help), to print to stdout; exit_code() is 0.
class HelpRequested : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 0; }
};

/// The value types an option may have. Lists are comma-separated on the
/// command line (`--hosts=a,b`) and arrays in config files; durations are
/// written "30s", "1.5h", "1h 30m", "250ms" (units us, ms, s, m/min, h, d,
/// w, or their long names; no unit means seconds).
template <class T>
concept OptionValue = std::same_as<T, bool> || std::same_as<T, int> || std::same_as<T, std::int64_t> ||
                      std::same_as<T, double> || std::same_as<T, std::string> ||
                      std::same_as<T, std::vector<std::string>> || std::same_as<T, std::chrono::milliseconds> ||
                      std::same_as<T, std::chrono::seconds>;

class OptionParser;

namespace detail {

/// The type-erased part of an option that OptionParser works with.
class OptionSlot {
 public:
  OptionSlot(std::string name, std::string help, std::string group)
      : name_(std::move(name)), help_(std::move(help)), group_(std::move(group)) {}
  OptionSlot(const OptionSlot&) = delete;
  OptionSlot& operator=(const OptionSlot&) = delete;
  virtual ~OptionSlot() = default;

  /// The name with '-' for '_' (Tornado normalizes both spellings so).
  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  /// The help section: the group given to define, or the defining file.
  const std::string& group() const noexcept { return group_; }

 private:
  friend class squall::options::OptionParser;
  virtual bool is_flag() const noexcept = 0;
  virtual bool is_list() const noexcept = 0;
  virtual std::string default_text() const = 0;
  /// Parses `texts` (one per value; several only for lists) into a pending
  /// value without changing the current one; throws Error naming `where`.
  virtual void stage(const std::vector<std::string>& texts, std::string_view where) = 0;
  /// Makes the pending value current.
  virtual void commit() noexcept = 0;
  virtual void discard() noexcept = 0;

  std::string name_;
  std::string help_;
  std::string group_;
};

}  // namespace detail

/// One defined option: its current value (the default until a parse sets
/// it). Owned by its OptionParser, at a stable address for the parser's
/// lifetime, so the handle define returns may be kept.
template <OptionValue T>
class Option final : public detail::OptionSlot {
 public:
  Option(std::string name, T default_value, std::string help, std::string group)
      : OptionSlot(std::move(name), std::move(help), std::move(group)),
        default_(default_value),
        value_(std::move(default_value)) {}

  const T& value() const noexcept { return value_; }
  const T& operator*() const noexcept { return value_; }
  const T* operator->() const noexcept { return &value_; }
  const T& default_value() const noexcept { return default_; }
  /// Sets the value from code (tests, or a value computed at startup).
  void set(T value) { value_ = std::move(value); }

 private:
  bool is_flag() const noexcept override;
  bool is_list() const noexcept override;
  std::string default_text() const override;
  void stage(const std::vector<std::string>& texts, std::string_view where) override;
  void commit() noexcept override;
  void discard() noexcept override;

  T default_;
  T value_;
  std::optional<T> pending_{};
};

extern template class Option<bool>;
extern template class Option<int>;
extern template class Option<std::int64_t>;
extern template class Option<double>;
extern template class Option<std::string>;
extern template class Option<std::vector<std::string>>;
extern template class Option<std::chrono::milliseconds>;
extern template class Option<std::chrono::seconds>;

/// A set of options (Tornado's OptionParser). The free functions below use
/// one global instance, options(); tests make their own.
class OptionParser {
 public:
  OptionParser();
  ~OptionParser();
  OptionParser(const OptionParser&) = delete;
  OptionParser& operator=(const OptionParser&) = delete;

  /// Defines an option and returns its handle. `name` is letters, digits,
  /// '-', '_' and '.', not starting with '-'; '_' and '-' are the same
  /// ("log_file" is "--log-file"). `group` heads the option's section in
  /// --help; empty means the file that calls define, as in Tornado. Throws
  /// Error if the name is invalid, "help", or already defined.
  template <OptionValue T>
  Option<T>& define(std::string name, T default_value, std::string help = {}, std::string group = {},
                    std::source_location where = std::source_location::current()) {
    auto option = std::make_unique<Option<T>>(check_new_name(name, where), std::move(default_value), std::move(help),
                                              group.empty() ? file_group(where) : std::move(group));
    Option<T>& handle = *option;
    add(std::move(option));
    return handle;
  }
  /// A string option from a string literal.
  Option<std::string>& define(std::string name, const char* default_value, std::string help = {},
                              std::string group = {}, std::source_location where = std::source_location::current()) {
    return define<std::string>(std::move(name), std::string(default_value), std::move(help), std::move(group), where);
  }

  /// The option called `name` ('_' or '-' alike). Throws Error if there is
  /// none or it is not of type T.
  template <OptionValue T>
  Option<T>& option(std::string_view name) const {
    auto* typed = dynamic_cast<Option<T>*>(&find_or_throw(name));
    if (typed == nullptr) throw Error("option --" + std::string(name) + " has another type");
    return *typed;
  }
  /// The value of the option called `name`; throws as option<T>().
  template <OptionValue T>
  const T& get(std::string_view name) const {
    return option<T>(name).value();
  }
  bool contains(std::string_view name) const noexcept;

  /// Parses `argv[1..argc)`: `--name=value` or `--name value`; a bool
  /// option alone (`--debug`) is true, `--debug=false` false; a list
  /// option takes comma-separated values and may repeat (the values add
  /// up); a scalar given twice takes the last; `--name=` is the empty
  /// string (the empty list for a list). Parsing stops at the first
  /// argument that is not an option, or after `--`: those arguments are
  /// returned (Tornado's "remaining"). With `final`, parse callbacks run
  /// afterwards. Throws HelpRequested for `--help` and Error for an unknown
  /// option, a missing value or a value of the wrong type; then no option
  /// has changed.
  std::vector<std::string> parse_command_line(int argc, const char* const* argv, bool final = true);
  /// The same with argv as strings, args[0] being the program name.
  std::vector<std::string> parse_command_line(const std::vector<std::string>& args, bool final = true);

  /// Reads options from a file of `name = value` lines (the TOML subset
  /// CLI11 reads; Tornado's config files are Python, which cannot be
  /// executed here):
  ///
  ///   # a comment; a '#' outside quotes starts one anywhere on a line
  ///   port = 8000
  ///   debug = true
  ///   log_file = "/var/log/app.log"
  ///   hosts = ["a.example", "b.example"]
  ///   timeout = "30s"
  ///
  /// Strings may be quoted with " or ' (no escape sequences); a bare name
  /// is `name = true`; '_' and '-' are the same in names; as in TOML, names
  /// under a `[server]` line are `server.<name>`. Throws Error for an
  /// unreadable file, an unknown option name (a typo should not go
  /// unnoticed: Tornado, executing Python, ignores unknown names), a name
  /// set twice, or a bad value; then no option has changed. With `final`,
  /// parse callbacks run afterwards.
  void parse_config_file(const std::string& path, bool final = true);

  /// Adds a callback to run after a final parse (e.g. to configure
  /// logging from the parsed options).
  void add_parse_callback(std::function<void()> callback);
  /// Runs the parse callbacks, in the order they were added.
  void run_parse_callbacks();

  /// Tornado's print_help text: "Usage: <program> [OPTIONS]", then the
  /// options by group (groups sorted, options sorted by name within one),
  /// each with its help and default.
  std::string help(std::string_view program = "") const;

 private:
  std::string check_new_name(std::string_view name, const std::source_location& where) const;
  /// The defining file as the compiler named it, without the leading "../"
  /// a build directory adds ("examples/app.cpp", not "../../examples/app.cpp").
  static std::string file_group(const std::source_location& where);
  void add(std::unique_ptr<detail::OptionSlot> option);
  detail::OptionSlot& find_or_throw(std::string_view name) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The global parser the free functions use (Tornado's
/// tornado.options.options). Constructed on first use.
OptionParser& options();

/// define on the global parser.
template <OptionValue T>
Option<T>& define(std::string name, T default_value, std::string help = {}, std::string group = {},
                  std::source_location where = std::source_location::current()) {
  return options().define<T>(std::move(name), std::move(default_value), std::move(help), std::move(group), where);
}
inline Option<std::string>& define(std::string name, const char* default_value, std::string help = {},
                                   std::string group = {},
                                   std::source_location where = std::source_location::current()) {
  return options().define(std::move(name), default_value, std::move(help), std::move(group), where);
}

/// get on the global parser.
template <OptionValue T>
const T& get(std::string_view name) {
  return options().get<T>(name);
}

/// parse_command_line, parse_config_file, add_parse_callback and help on
/// the global parser.
std::vector<std::string> parse_command_line(int argc, const char* const* argv, bool final = true);
void parse_config_file(const std::string& path, bool final = true);
void add_parse_callback(std::function<void()> callback);
std::string help(std::string_view program = "");

}  // namespace squall::options
