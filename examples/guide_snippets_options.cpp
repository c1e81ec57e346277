// The code shown in docs/guide/options.md, compiled and run. Its options are
// defined at file scope, as a program's would be. `--smoke` (what CTest
// runs) parses a made-up command line and config file and checks what the
// chapter says; any other arguments are parsed for real, so
// `guide_snippets_options --help` shows the help the chapter describes.
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "squall/squall.hpp"

namespace {

// guide: define
auto& port = squall::options::define<int>("port", 8888, "listen port");
auto& debug = squall::options::define<bool>("debug", false, "log more and reload templates");
auto& db_path = squall::options::define("db_path", "notes.db", "SQLite database file", "storage");
auto& request_timeout = squall::options::define<std::chrono::seconds>("request_timeout", std::chrono::seconds(30),
                                                                      "give up on a request after this long");

// guide: main
int run(int argc, const char* const* argv) {
try {
  std::vector<std::string> rest = squall::options::parse_command_line(argc, argv);
} catch (const squall::options::HelpRequested& help) {
  std::fputs(help.what(), stdout);
  return 0;
} catch (const squall::options::Error& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 2;
}
  return 0;
}

// guide: use
std::string describe() {
std::string where = "listening on port " + std::to_string(*port);
if (squall::options::get<bool>("debug")) where += " (debug)";
  return where + ", database " + *db_path + ", timeout " + std::to_string(request_timeout->count()) + "s";
}

// guide: config
void configure(const std::string& config_path, int argc, const char* const* argv) {
squall::options::parse_config_file(config_path, /*final=*/false);
squall::options::parse_command_line(argc, argv);  // the command line wins
}

// guide: callback
bool logging_configured = false;
void add_callbacks() {
squall::options::add_parse_callback([] {
  squall::log::enable_pretty_logging({.level = *debug ? squall::log::Level::debug : squall::log::Level::info});
  logging_configured = true;
});
}

// guide: testing
void parser_for_tests() {
squall::options::OptionParser parser;  // not the global one
auto& workers = parser.define<int>("workers", 1, "worker threads");
parser.parse_command_line(std::vector<std::string>{"test", "--workers=4"});
  if (*workers != 4) std::exit(1);
}

void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "guide_snippets_options: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::strcmp(argv[1], "--smoke") != 0) return run(argc, argv);

  const char* bad[] = {"prog", "--prot=80"};
  check(run(2, bad) == 2, "an unknown option is exit status 2");
  const char* help[] = {"prog", "--help"};
  check(run(2, help) == 0, "--help is exit status 0");
  check(squall::options::help("prog").find("storage options:") != std::string::npos, "help has a storage group");

  const char* args[] = {"prog", "--port=8000", "--debug"};
  check(run(3, args) == 0, "a good command line parses");
  check(describe() == "listening on port 8000 (debug), database notes.db, timeout 30s", "values are read back");

  add_callbacks();
  std::string path = "/tmp/guide_snippets_options.toml";
  std::ofstream(path) << "port = 9000\ndb_path = \"/var/lib/notes.db\"\nrequest_timeout = \"1m\"\n";
  const char* override_port[] = {"prog", "--port=9001"};
  configure(path, 2, override_port);
  std::remove(path.c_str());
  check(describe() == "listening on port 9001 (debug), database /var/lib/notes.db, timeout 60s",
        "the config file is read and the command line wins");
  check(logging_configured, "parse callbacks ran");

  parser_for_tests();
  std::puts("guide_snippets_options: ok");
  return 0;
}
