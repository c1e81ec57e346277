#include "squall/web/options.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace squall::options {

namespace {

constexpr std::string_view kHelpText = "show this help information";
/// The positional catch-all given to CLI11; not a valid option name, so it
/// cannot collide with one.
constexpr const char* kRemainingName = "squall-remaining";
/// Tornado's help layout: "  --%-30s %s", descriptions wrapped at 79 - 35.
constexpr std::size_t kHelpNameWidth = 30;
constexpr std::size_t kHelpTextWidth = 79 - 35;

std::string normalize_name(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

[[noreturn]] void bad_value(std::string_view where, std::string_view text, std::string_view expected) {
  throw Error(std::string(where) + ": " + in_quotes(text) + " is not " + std::string(expected));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

bool parse_bool(std::string_view text, std::string_view where) {
  std::string t = lower(text);
  if (t == "true" || t == "1" || t == "t" || t == "yes" || t == "y" || t == "on") return true;
  if (t == "false" || t == "0" || t == "f" || t == "no" || t == "n" || t == "off") return false;
  bad_value(where, text, "a boolean (true or false)");
}

template <class Int>
Int parse_integer(std::string_view text, std::string_view where) {
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  Int value{};
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, 10);
  if (ec == std::errc::result_out_of_range) bad_value(where, text, "an integer in range");
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    bad_value(where, text, "an integer");
  }
  return value;
}

double parse_double(std::string_view text, std::string_view where) {
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double value{};
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) bad_value(where, text, "a number");
  return value;
}

/// Tornado's _parse_timedelta: a sum of "<number><unit>" terms with
/// optional spaces between them, "1h 30m", "1.5h", "250ms", "45" (seconds).
std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view where) {
  static const std::map<std::string, long double, std::less<>> kUnits = {
      {"us", 1e3L},        {"microseconds", 1e3L}, {"ms", 1e6L},       {"milliseconds", 1e6L},
      {"", 1e9L},          {"s", 1e9L},            {"sec", 1e9L},      {"seconds", 1e9L},
      {"m", 60e9L},        {"min", 60e9L},         {"minutes", 60e9L}, {"h", 3600e9L},
      {"hours", 3600e9L},  {"d", 86400e9L},        {"days", 86400e9L}, {"w", 604800e9L},
      {"weeks", 604800e9L}};
  auto space = [](char c) { return c == ' ' || c == '\t'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  long double total = 0;
  std::size_t i = 0, terms = 0;
  while (true) {
    while (i < text.size() && space(text[i])) ++i;
    if (i == text.size()) break;
    std::size_t start = i;
    while (i < text.size() && (digit(text[i]) || text[i] == '.')) ++i;
    std::string_view number = text.substr(start, i - start);
    double n{};
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), n, std::chars_format::fixed);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size()) {
      bad_value(where, text, "a duration (such as 30s, 1.5h, 1h 30m, 250ms)");
    }
    while (i < text.size() && space(text[i])) ++i;
    start = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z'))) ++i;
    auto unit = kUnits.find(lower(text.substr(start, i - start)));
    if (unit == kUnits.end()) bad_value(where, text, "a duration (units us, ms, s, m, h, d, w)");
    total += static_cast<long double>(n) * unit->second;
    ++terms;
  }
  if (terms == 0) bad_value(where, text, "a duration (such as 30s, 1.5h, 1h 30m, 250ms)");
  if (total > static_cast<long double>(std::numeric_limits<std::int64_t>::max())) {
    bad_value(where, text, "a duration in range");
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(total)));
}

template <class Duration>
Duration parse_duration_as(std::string_view text, std::string_view where) {
  auto ns = parse_duration(text, where);
  auto d = std::chrono::duration_cast<Duration>(ns);
  if (std::chrono::nanoseconds(d) != ns) {
    bad_value(where, text, std::is_same_v<Duration, std::chrono::seconds> ? "a whole number of seconds"
                                                                          : "a whole number of milliseconds");
  }
  return d;
}

template <class T>
T parse_one(std::string_view text, std::string_view where) {
  if constexpr (std::is_same_v<T, bool>) {
    return parse_bool(text, where);
  } else if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::int64_t>) {
    return parse_integer<T>(text, where);
  } else if constexpr (std::is_same_v<T, double>) {
    return parse_double(text, where);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return std::string(text);
  } else {
    return parse_duration_as<T>(text, where);
  }
}

template <class T>
std::string to_text(const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::int64_t>) {
    return std::to_string(value);
  } else if constexpr (std::is_same_v<T, double>) {
    std::ostringstream out;
    out << value;
    return out.str();
  } else if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    std::string out;
    for (const auto& v : value) out += (out.empty() ? "" : ",") + v;
    return out;
  } else if constexpr (std::is_same_v<T, std::chrono::seconds>) {
    return std::to_string(value.count()) + "s";
  } else {
    return std::to_string(value.count()) + "ms";
  }
}

/// textwrap.wrap(text, width): words joined by single spaces into lines of
/// at most `width` (a longer word gets a line of its own).
std::vector<std::string> wrap(std::string_view text, std::size_t width) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream words{std::string(text)};
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(std::move(line));
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

void append_help_line(std::string& out, std::string_view name, std::string_view description) {
  std::vector<std::string> lines = wrap(description, kHelpTextWidth);
  std::string prefix = std::string(name);
  if (prefix.size() > kHelpNameWidth || lines.empty()) lines.insert(lines.begin(), "");
  prefix.resize(std::max(prefix.size(), kHelpNameWidth), ' ');
  out += "  --" + prefix + " " + lines[0];
  while (!out.empty() && out.back() == ' ') out.pop_back();
  out += '\n';
  for (std::size_t i = 1; i < lines.size(); ++i) out += std::string(kHelpNameWidth + 4, ' ') + " " + lines[i] + "\n";
}

/// Cuts each line at the first '#' outside quotes. CLI11 2.1 cuts at any
/// '#', even inside a quoted string ("a#b" would become `"a`).
std::string strip_comments(std::istream& in) {
  std::string out;
  for (std::string line; std::getline(in, line);) {
    char quote = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quote != 0) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        line.erase(i);
        break;
      }
    }
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace

// ---- Option<T> ----

template <OptionValue T>
bool Option<T>::is_flag() const noexcept {
  return std::is_same_v<T, bool>;
}

template <OptionValue T>
bool Option<T>::is_list() const noexcept {
  return std::is_same_v<T, std::vector<std::string>>;
}

template <OptionValue T>
std::string Option<T>::default_text() const {
  return to_text(default_);
}

template <OptionValue T>
void Option<T>::stage(const std::vector<std::string>& texts, std::string_view where) {
  if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    // "--hosts=" is the empty list, not a list of one empty string.
    if (texts.size() == 1 && texts.front().empty()) {
      pending_ = T{};
    } else {
      pending_ = texts;
    }
  } else {
    if (texts.size() != 1) {
      throw Error(std::string(where) + ": expects one value, got " + std::to_string(texts.size()));
    }
    pending_ = parse_one<T>(texts.front(), where);
  }
}

template <OptionValue T>
void Option<T>::commit() noexcept {
  if (pending_) value_ = std::move(*pending_);
  pending_.reset();
}

template <OptionValue T>
void Option<T>::discard() noexcept {
  pending_.reset();
}

template class Option<bool>;
template class Option<int>;
template class Option<std::int64_t>;
template class Option<double>;
template class Option<std::string>;
template class Option<std::vector<std::string>>;
template class Option<std::chrono::milliseconds>;
template class Option<std::chrono::seconds>;

// ---- OptionParser ----

/// A parsed option's new value, as text, and where it came from.
struct Assignment {
  detail::OptionSlot* option{};
  std::vector<std::string> texts{};
  std::string where{};
};

struct OptionParser::Impl {
  // Sorted by normalized name: the order --help lists them in.
  std::map<std::string, std::unique_ptr<detail::OptionSlot>, std::less<>> options;
  std::vector<std::function<void()>> callbacks;

  detail::OptionSlot* find(std::string_view name) const {
    auto it = options.find(normalize_name(name));
    return it == options.end() ? nullptr : it->second.get();
  }

  /// Stages every assignment, then commits all of them, or none if one
  /// fails: a bad value leaves every option as it was.
  static void apply(const std::vector<Assignment>& assignments) {
    try {
      for (const auto& a : assignments) a.option->stage(a.texts, a.where);
    } catch (...) {
      for (const auto& a : assignments) a.option->discard();
      throw;
    }
    for (const auto& a : assignments) a.option->commit();
  }
};

OptionParser::OptionParser() : impl_(std::make_unique<Impl>()) {}
OptionParser::~OptionParser() = default;

std::string OptionParser::check_new_name(std::string_view name, const std::source_location& where) const {
  auto valid = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  };
  if (name.empty() || name.front() == '-' || name.front() == '_' || !std::all_of(name.begin(), name.end(), valid)) {
    throw Error("invalid option name " + in_quotes(name) + " (letters, digits, '-', '_' and '.')");
  }
  std::string normalized = normalize_name(name);
  if (normalized == "help") throw Error("option 'help' is reserved for --help");
  if (auto it = impl_->options.find(normalized); it != impl_->options.end()) {
    throw Error("option " + in_quotes(normalized) + " already defined in " + it->second->group() + " (again in " +
                where.file_name() + ")");
  }
  return normalized;
}

std::string OptionParser::file_group(const std::source_location& where) {
  std::string_view file = where.file_name();
  while (file.rfind("../", 0) == 0 || file.rfind("./", 0) == 0) file.remove_prefix(file.find('/') + 1);
  return std::string(file);
}

void OptionParser::add(std::unique_ptr<detail::OptionSlot> option) {
  std::string name = option->name();
  impl_->options.emplace(std::move(name), std::move(option));
}

detail::OptionSlot& OptionParser::find_or_throw(std::string_view name) const {
  detail::OptionSlot* option = impl_->find(name);
  if (option == nullptr) throw Error("unrecognized option " + in_quotes(name));
  return *option;
}

bool OptionParser::contains(std::string_view name) const noexcept {
  try {
    return impl_->options.find(normalize_name(name)) != impl_->options.end();
  } catch (...) {
    return false;
  }
}

std::vector<std::string> OptionParser::parse_command_line(int argc, const char* const* argv, bool final) {
  std::vector<std::string> args;
  args.reserve(static_cast<std::size_t>(std::max(argc, 0)));
  for (int i = 0; i < argc; ++i) args.emplace_back(argv[i] != nullptr ? argv[i] : "");
  return parse_command_line(args, final);
}

std::vector<std::string> OptionParser::parse_command_line(const std::vector<std::string>& args, bool final) {
  std::string program = args.empty() ? std::string("program") : args.front();
  // Tornado's normalization ("--log_file=x" is "--log-file=x") and --help,
  // applied to the option arguments only: those before "--" or the first
  // positional argument, skipping the value of "--name value".
  std::vector<std::string> normalized(args.begin() + (args.empty() ? 0 : 1), args.end());
  for (std::size_t i = 0; i < normalized.size(); ++i) {
    std::string& arg = normalized[i];
    if (arg == "--" || arg.empty() || arg.front() != '-') break;
    if (arg.rfind("--", 0) != 0) continue;  // "-x": CLI11 reports it
    std::size_t eq = arg.find('=');
    std::string name = normalize_name(arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2));
    if (name == "help") throw HelpRequested(help(program));
    const detail::OptionSlot* option = impl_->find(name);
    bool takes_value = option != nullptr && !option->is_flag();
    if (takes_value && eq + 1 == arg.size()) {
      // "--name=" sets the empty string. CLI11 2.1 would take the next
      // argument as the value instead, so it gets the value as its own.
      arg = "--" + name;
      normalized.insert(normalized.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::string());
      ++i;
      continue;
    }
    arg = "--" + name + (eq == std::string::npos ? "" : arg.substr(eq));
    if (eq == std::string::npos && takes_value) ++i;
  }

  CLI::App app;
  app.set_help_flag();
  app.allow_extras(false);
  // Tornado stops at the first argument that is not an option: everything
  // after it is the program's.
  app.positionals_at_end(true);
  std::vector<std::string> remaining;
  app.add_option(kRemainingName, remaining);
  std::vector<std::pair<detail::OptionSlot*, CLI::Option*>> cli_options;
  for (auto& [name, option] : impl_->options) {
    CLI::Option* cli = nullptr;
    if (option->is_flag()) {
      cli = app.add_flag("--" + name);
    } else {
      cli = app.add_option("--" + name)->expected(1);
      if (option->is_list()) {
        cli->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->delimiter(',');
      } else {
        cli->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
      }
    }
    cli_options.emplace_back(option.get(), cli);
  }

  try {
    std::vector<std::string> reversed(normalized.rbegin(), normalized.rend());
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    throw Error(std::string(e.what()) + " (see --help)");
  }

  std::vector<Assignment> assignments;
  for (auto& [option, cli] : cli_options) {
    if (cli->count() == 0) continue;
    std::vector<std::string> texts = cli->results();
    if (!option->is_list() && texts.size() > 1) texts = {texts.back()};
    assignments.push_back({option, std::move(texts), "option --" + option->name()});
  }
  Impl::apply(assignments);
  if (final) run_parse_callbacks();
  return remaining;
}

void OptionParser::parse_config_file(const std::string& path, bool final) {
  std::ifstream file(path);
  if (!file) throw Error("cannot read config file " + in_quotes(path) + ": " + std::strerror(errno));
  std::istringstream text(strip_comments(file));
  std::vector<CLI::ConfigItem> items;
  try {
    CLI::ConfigTOML format;
    format.comment('\0');  // comments are already gone, quotes respected
    items = format.from_config(text);
  } catch (const CLI::Error& e) {
    throw Error(path + ": " + e.what());
  }
  std::vector<Assignment> assignments;
  for (const auto& item : items) {
    // CLI11 marks where a [section] opens and closes with these names.
    if (!item.parents.empty() && (item.name == "++" || item.name == "--")) continue;
    // As in TOML, "[server]" then "port = 1" is the dotted key server.port.
    std::string name;
    for (const auto& parent : item.parents) name += parent + ".";
    name += item.name;
    detail::OptionSlot* option = impl_->find(name);
    if (option == nullptr) throw Error(path + ": unrecognized option " + in_quotes(name));
    // As in TOML, a name may be set once. (CLI11 merges a name repeated on
    // the next line into one item with several values: an error for a
    // scalar, the values added up for a list.)
    auto same = [option](const Assignment& a) { return a.option == option; };
    if (std::any_of(assignments.begin(), assignments.end(), same)) {
      throw Error(path + ": option " + option->name() + " is set twice");
    }
    assignments.push_back({option, item.inputs, path + ": option " + option->name()});
  }
  Impl::apply(assignments);
  if (final) run_parse_callbacks();
}

void OptionParser::add_parse_callback(std::function<void()> callback) { impl_->callbacks.push_back(std::move(callback)); }

void OptionParser::run_parse_callbacks() {
  for (auto& callback : impl_->callbacks) callback();
}

std::string OptionParser::help(std::string_view program) const {
  std::string out = "Usage: " + std::string(program.empty() ? "program" : program) + " [OPTIONS]\n\nOptions:\n\n";
  append_help_line(out, "help", kHelpText);
  std::map<std::string, std::vector<const detail::OptionSlot*>> by_group;
  for (const auto& [name, option] : impl_->options) by_group[option->group()].push_back(option.get());
  for (const auto& [group, options] : by_group) {
    out += "\n" + group + " options:\n\n";
    for (const auto* option : options) {
      std::string description = option->help();
      std::string default_text = option->default_text();
      if (!default_text.empty()) description += (description.empty() ? "" : " ") + std::string("(default ") + default_text + ")";
      append_help_line(out, option->name(), description);
    }
  }
  out += '\n';
  return out;
}

// ---- the global parser ----

OptionParser& options() {
  static OptionParser parser;
  return parser;
}

std::vector<std::string> parse_command_line(int argc, const char* const* argv, bool final) {
  return options().parse_command_line(argc, argv, final);
}

void parse_config_file(const std::string& path, bool final) { options().parse_config_file(path, final); }

void add_parse_callback(std::function<void()> callback) { options().add_parse_callback(std::move(callback)); }

std::string help(std::string_view program) { return options().help(program); }

}  // namespace squall::options
