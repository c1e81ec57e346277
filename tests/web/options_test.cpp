// squall::options (Tornado's tornado.options on CLI11): every value type,
// both command-line syntaxes, config files, --help grouped by file, parse
// callbacks, and errors that leave every option unchanged. Each test uses
// its own OptionParser; one uses the global one through the free functions.
#include "squall/web/options.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace squall::options {
namespace {

using namespace std::chrono_literals;
using Args = std::vector<std::string>;

/// A parser with one option of every type, in group "server".
struct AllTypes {
  OptionParser parser;
  Option<bool>& debug = parser.define<bool>("debug", false, "debug mode", "server");
  Option<int>& port = parser.define<int>("port", 8888, "listen port", "server");
  Option<std::int64_t>& max_body = parser.define<std::int64_t>("max_body_size", 100 << 20, "bytes", "server");
  Option<double>& ratio = parser.define<double>("ratio", 0.5, "a ratio", "server");
  Option<std::string>& name = parser.define("name", "squall", "server name", "server");
  Option<std::vector<std::string>>& hosts = parser.define<std::vector<std::string>>("hosts", {}, "hosts", "server");
  Option<std::chrono::milliseconds>& interval =
      parser.define<std::chrono::milliseconds>("interval", 250ms, "tick", "server");
  Option<std::chrono::seconds>& timeout = parser.define<std::chrono::seconds>("timeout", 30s, "timeout", "server");

  Args parse(Args args) {
    args.insert(args.begin(), "prog");
    return parser.parse_command_line(args);
  }
  void expect_defaults() const {
    EXPECT_FALSE(*debug);
    EXPECT_EQ(*port, 8888);
    EXPECT_EQ(*max_body, 100 << 20);
    EXPECT_EQ(*ratio, 0.5);
    EXPECT_EQ(*name, "squall");
    EXPECT_TRUE(hosts->empty());
    EXPECT_EQ(*interval, 250ms);
    EXPECT_EQ(*timeout, 30s);
  }
};

/// A file in the test's temporary directory, removed at the end.
struct TempFile {
  explicit TempFile(const std::string& text)
      : path(::testing::TempDir() + "squall_options_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml") {
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

TEST(OptionsTest, DefaultsHoldUntilParsed) {
  AllTypes o;
  o.expect_defaults();
  EXPECT_EQ(o.parser.get<int>("port"), 8888);
  EXPECT_EQ(o.port.default_value(), 8888);
  EXPECT_EQ(o.name->size(), 6u);  // operator->
  EXPECT_EQ(o.port.name(), "port");
  EXPECT_EQ(o.port.help(), "listen port");
  EXPECT_EQ(o.port.group(), "server");
}

TEST(OptionsTest, ParsesEveryTypeWithEquals) {
  AllTypes o;
  Args rest = o.parse({"--debug", "--port=8000", "--max_body_size=9000000000", "--ratio=0.25", "--name=web one",
                       "--hosts=a.example,b.example", "--interval=1.5s", "--timeout=2m"});
  EXPECT_TRUE(rest.empty());
  EXPECT_TRUE(*o.debug);
  EXPECT_EQ(*o.port, 8000);
  EXPECT_EQ(*o.max_body, 9000000000);
  EXPECT_EQ(*o.ratio, 0.25);
  EXPECT_EQ(*o.name, "web one");
  EXPECT_EQ(*o.hosts, (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_EQ(*o.interval, 1500ms);
  EXPECT_EQ(*o.timeout, 120s);
  EXPECT_EQ(o.parser.get<std::string>("name"), "web one");
}

TEST(OptionsTest, ParsesEveryTypeWithASpace) {
  AllTypes o;
  Args rest = o.parse({"--port", "8000", "--max-body-size", "7", "--ratio", "2", "--name", "x", "--hosts", "a,b",
                       "--interval", "100ms", "--timeout", "1h 30m", "--debug"});
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(*o.port, 8000);
  EXPECT_EQ(*o.max_body, 7);
  EXPECT_EQ(*o.ratio, 2.0);
  EXPECT_EQ(*o.name, "x");
  EXPECT_EQ(*o.hosts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*o.interval, 100ms);
  EXPECT_EQ(*o.timeout, 5400s);
  EXPECT_TRUE(*o.debug);
}

TEST(OptionsTest, BooleansTakeAnExplicitValueOnlyAfterEquals) {
  AllTypes o;
  o.parse({"--debug=true"});
  EXPECT_TRUE(*o.debug);
  o.parse({"--debug=false"});
  EXPECT_FALSE(*o.debug);
  o.parse({"--debug=1"});
  EXPECT_TRUE(*o.debug);
  o.parse({"--debug=0"});
  EXPECT_FALSE(*o.debug);
  o.parse({"--debug=yes"});
  EXPECT_TRUE(*o.debug);
  o.parse({"--debug=OFF"});
  EXPECT_FALSE(*o.debug);
  // As in Tornado, "--debug false" is the flag and then an argument.
  EXPECT_EQ(o.parse({"--debug", "false"}), (Args{"false"}));
  EXPECT_TRUE(*o.debug);
  EXPECT_THROW(o.parse({"--debug=maybe"}), Error);
  EXPECT_TRUE(*o.debug);
}

TEST(OptionsTest, UnderscoresAndDashesAreTheSame) {
  OptionParser p;
  auto& log_file = p.define("log_file_prefix", "", "log file");
  EXPECT_EQ(log_file.name(), "log-file-prefix");
  p.parse_command_line(Args{"prog", "--log_file_prefix=/tmp/a"});
  EXPECT_EQ(*log_file, "/tmp/a");
  p.parse_command_line(Args{"prog", "--log-file-prefix", "/tmp/b"});
  EXPECT_EQ(*log_file, "/tmp/b");
  p.parse_command_line(Args{"prog", "--log-file_prefix=/tmp/c"});
  EXPECT_EQ(p.get<std::string>("log_file_prefix"), "/tmp/c");
  EXPECT_EQ(p.get<std::string>("log-file-prefix"), "/tmp/c");
  EXPECT_TRUE(p.contains("log_file-prefix"));
  EXPECT_FALSE(p.contains("log"));
}

TEST(OptionsTest, ParsingStopsAtTheFirstArgumentThatIsNotAnOption) {
  AllTypes o;
  EXPECT_EQ(o.parse({"--port=1", "run", "--port=2", "--no_such"}), (Args{"run", "--port=2", "--no_such"}));
  EXPECT_EQ(*o.port, 1);
  EXPECT_EQ(o.parse({"--port", "3", "file_name", "x"}), (Args{"file_name", "x"}));
  EXPECT_EQ(*o.port, 3);
  EXPECT_EQ(o.parse({"--port=4", "--", "--port=5", "--help"}), (Args{"--port=5", "--help"}));
  EXPECT_EQ(*o.port, 4);
  EXPECT_EQ(o.parse({"run", "--help"}), (Args{"run", "--help"}));  // not ours
  EXPECT_TRUE(o.parse({}).empty());
}

TEST(OptionsTest, TheLastScalarWinsAndListsAddUp) {
  AllTypes o;
  o.parse({"--port=1", "--port", "2", "--port=3", "--hosts=a", "--hosts", "b,c", "--hosts=d"});
  EXPECT_EQ(*o.port, 3);
  EXPECT_EQ(*o.hosts, (std::vector<std::string>{"a", "b", "c", "d"}));
  o.parse({"--hosts=x"});  // a new parse replaces the list
  EXPECT_EQ(*o.hosts, (std::vector<std::string>{"x"}));
  o.parse({"--hosts="});
  EXPECT_TRUE(o.hosts->empty());
  // "--name=" is the empty string, and does not swallow the next argument.
  EXPECT_EQ(o.parse({"--name=", "--port=4", "rest"}), (Args{"rest"}));
  EXPECT_EQ(*o.name, "");
  EXPECT_EQ(*o.port, 4);
  o.parse({"--name", "", "--port=5"});
  EXPECT_EQ(*o.name, "");
  EXPECT_EQ(*o.port, 5);
}

TEST(OptionsTest, AcceptsNegativeNumbers) {
  OptionParser p;
  auto& offset = p.define<int>("offset", 0);
  auto& scale = p.define<double>("scale", 1.0);
  p.parse_command_line(Args{"prog", "--offset=-5", "--scale", "-2.5"});
  EXPECT_EQ(*offset, -5);
  EXPECT_EQ(*scale, -2.5);
  p.parse_command_line(Args{"prog", "--offset", "-7"});
  EXPECT_EQ(*offset, -7);
}

TEST(OptionsTest, DurationsUseTornadosUnits) {
  OptionParser p;
  auto& ms = p.define<std::chrono::milliseconds>("ms", 0ms);
  auto& s = p.define<std::chrono::seconds>("s", 0s);
  auto parse_ms = [&](const std::string& text) {
    p.parse_command_line(Args{"prog", "--ms=" + text});
    return *ms;
  };
  EXPECT_EQ(parse_ms("45"), 45s);
  EXPECT_EQ(parse_ms("250ms"), 250ms);
  EXPECT_EQ(parse_ms("2000us"), 2ms);
  EXPECT_EQ(parse_ms("1.5h"), 5400s);
  EXPECT_EQ(parse_ms("1d"), 24h);
  EXPECT_EQ(parse_ms("1w"), 7 * 24h);
  EXPECT_EQ(parse_ms("1h30m"), 90min);
  EXPECT_EQ(parse_ms(" 1 min 2 sec "), 62s);
  EXPECT_EQ(parse_ms("3 seconds"), 3s);
  EXPECT_EQ(parse_ms(".5s"), 500ms);
  for (const char* bad : {"", "s", "5 parsecs", "-1s", "1e3s", "1..5s", "1.5.5s", "0.0001ms", "1s,2s"}) {
    EXPECT_THROW(p.parse_command_line(Args{"prog", std::string("--ms=") + bad}), Error) << bad;
  }
  p.parse_command_line(Args{"prog", "--s=2m"});
  EXPECT_EQ(*s, 120s);
  EXPECT_THROW(p.parse_command_line(Args{"prog", "--s=1.5s"}), Error);  // not whole seconds
  EXPECT_EQ(*s, 120s);
}

TEST(OptionsTest, BadInputIsAnErrorAndChangesNothing) {
  AllTypes o;
  auto expect_error = [&](Args args, const std::string& fragment) {
    try {
      o.parse(args);
      ADD_FAILURE() << "no error for " << args.front();
    } catch (const HelpRequested&) {
      ADD_FAILURE() << "help for " << args.front();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_EQ(e.exit_code(), 2);
    }
    o.expect_defaults();
  };
  expect_error({"--port=1", "--prot=2"}, "--prot");
  expect_error({"--port=1", "-p", "2"}, "-p");
  expect_error({"--port=1", "--port"}, "--port");
  expect_error({"--port=abc"}, "'abc' is not an integer");
  expect_error({"--port=12x"}, "'12x'");
  expect_error({"--port=", "--debug"}, "--port");
  expect_error({"--port=99999999999"}, "in range");
  expect_error({"--debug", "--max-body-size=99999999999999999999"}, "in range");
  expect_error({"--port=1", "--ratio=half"}, "'half' is not a number");
  expect_error({"--port=1", "--timeout=soon"}, "duration");
  expect_error({"--port=0x10"}, "'0x10'");
}

TEST(OptionsTest, HelpListsOptionsByGroupThenName) {
  OptionParser p;
  p.define<int>("port", 8888, "listen port", "web");
  p.define<bool>("debug", false, "debug mode", "web");
  p.define("db_path", "", "database file", "storage");
  p.define<std::vector<std::string>>("hosts", {"a", "b"}, "", "storage");
  p.define<std::chrono::seconds>(
      "a_very_long_option_name_that_does_not_fit", 5s,
      "a help text long enough to be wrapped over more than one line by the formatter", "web");
  std::string expected =
      "Usage: myprog [OPTIONS]\n"
      "\n"
      "Options:\n"
      "\n"
      "  --help                           show this help information\n"
      "\n"
      "storage options:\n"
      "\n"
      "  --db-path                        database file\n"
      "  --hosts                          (default a,b)\n"
      "\n"
      "web options:\n"
      "\n"
      "  --a-very-long-option-name-that-does-not-fit\n"
      "                                   a help text long enough to be wrapped over\n"
      "                                   more than one line by the formatter (default\n"
      "                                   5s)\n"
      "  --debug                          debug mode (default false)\n"
      "  --port                           listen port (default 8888)\n"
      "\n";
  EXPECT_EQ(p.help("myprog"), expected);
  try {
    p.parse_command_line(Args{"myprog", "--port=1", "--help"});
    ADD_FAILURE() << "no help";
  } catch (const HelpRequested& h) {
    EXPECT_EQ(h.what(), expected);
    EXPECT_EQ(h.exit_code(), 0);
  }
  EXPECT_EQ(p.get<int>("port"), 8888);  // help parses nothing
}

TEST(OptionsTest, TheDefaultGroupIsTheDefiningFile) {
  OptionParser p;
  auto& o = p.define<int>("here", 1, "defined here");
  // __FILE__ as the compiler was given it, less the build directory's "../".
  std::string file = __FILE__;
  ASSERT_GE(file.size(), o.group().size());
  EXPECT_EQ(file.substr(file.size() - o.group().size()), o.group());
  EXPECT_EQ(o.group().rfind("../", 0), std::string::npos);
  EXPECT_NE(o.group().find("tests/web/options_test.cpp"), std::string::npos);
  EXPECT_NE(p.help().find(o.group() + " options:"), std::string::npos) << p.help();
}

TEST(OptionsTest, ReadsAConfigFile) {
  AllTypes o;
  TempFile file(
      "# squall options\n"
      "\n"
      "debug = true\n"
      "port = 8000   # a trailing comment\n"
      "max_body_size = 9000000000\n"
      "ratio = 0.75\n"
      "name = \"web # one\"\n"
      "hosts = [\"a.example\", 'b.example', \"c,d\"]\n"
      "interval = \"1.5s\"\n"
      "timeout = 2m\n");
  o.parser.parse_config_file(file.path);
  EXPECT_TRUE(*o.debug);
  EXPECT_EQ(*o.port, 8000);
  EXPECT_EQ(*o.max_body, 9000000000);
  EXPECT_EQ(*o.ratio, 0.75);
  EXPECT_EQ(*o.name, "web # one");
  EXPECT_EQ(*o.hosts, (std::vector<std::string>{"a.example", "b.example", "c,d"}));
  EXPECT_EQ(*o.interval, 1500ms);
  EXPECT_EQ(*o.timeout, 120s);
}

TEST(OptionsTest, ConfigFileQuirks) {
  AllTypes o;
  TempFile file(
      "port = 2\n"
      "max-body-size = 3\n"  // either spelling
      "debug\n"             // a bare name is true
      "name = ''\n"
      "hosts = a,b\n");     // a list without brackets
  o.parser.parse_config_file(file.path);
  EXPECT_EQ(*o.port, 2);
  EXPECT_EQ(*o.max_body, 3);
  EXPECT_TRUE(*o.debug);
  EXPECT_EQ(*o.name, "");
  EXPECT_EQ(*o.hosts, (std::vector<std::string>{"a", "b"}));
}

TEST(OptionsTest, SectionsPrefixNamesAsDottedKeys) {
  OptionParser p;
  auto& host = p.define("server.host", "", "", "server");
  auto& port = p.define<int>("server.port", 0, "", "server");
  auto& level = p.define("log.level", "info", "", "log");
  TempFile file(
      "log.level = \"debug\"\n"
      "[server]\n"
      "host = \"0.0.0.0\"\n"
      "port = 80\n");
  p.parse_config_file(file.path);
  EXPECT_EQ(*host, "0.0.0.0");
  EXPECT_EQ(*port, 80);
  EXPECT_EQ(*level, "debug");
  p.parse_command_line(Args{"prog", "--server.port=81"});
  EXPECT_EQ(*port, 81);
}

TEST(OptionsTest, TheCommandLineOverridesTheConfigFile) {
  AllTypes o;
  TempFile file("port = 8000\nname = \"from file\"\n");
  o.parser.parse_config_file(file.path, false);
  o.parse({"--port=9000"});
  EXPECT_EQ(*o.port, 9000);
  EXPECT_EQ(*o.name, "from file");
}

TEST(OptionsTest, ConfigFileErrorsNameTheFileAndChangeNothing) {
  auto expect_error = [](const std::string& text, const std::string& fragment) {
    AllTypes o;
    TempFile file(text);
    try {
      o.parser.parse_config_file(file.path);
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file.path), std::string::npos) << e.what();
    }
    o.expect_defaults();
  };
  expect_error("port = 1\nprot = 2\n", "unrecognized option 'prot'");
  expect_error("port = 1\n[server]\nname = \"x\"\n", "unrecognized option 'server.name'");
  expect_error("port = 1\nratio = fast\n", "'fast' is not a number");
  expect_error("name = \"x\"\nport = [1, 2]\n", "expects one value");
  expect_error("port = 1\nname = \"x\"\nport = 2\n", "port is set twice");
  expect_error("port = 1\nport = 2\n", "expects one value, got 2");
  expect_error("port = 1\nname = two words\n", "expects one value");

  OptionParser p;
  try {
    p.parse_config_file("/nonexistent/squall.toml");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/squall.toml"), std::string::npos) << e.what();
  }
}

TEST(OptionsTest, ParseCallbacksRunAfterAFinalParse) {
  AllTypes o;
  std::vector<std::string> calls;
  o.parser.add_parse_callback([&] { calls.push_back("first:" + std::to_string(*o.port)); });
  o.parser.add_parse_callback([&] { calls.push_back("second"); });
  o.parser.parse_command_line(Args{"prog", "--port=1"}, false);
  EXPECT_TRUE(calls.empty());
  o.parse({"--port=2"});
  EXPECT_EQ(calls, (std::vector<std::string>{"first:2", "second"}));
  TempFile file("port = 3\n");
  o.parser.parse_config_file(file.path);
  EXPECT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[2], "first:3");
  EXPECT_THROW(o.parse({"--port=x"}), Error);
  EXPECT_EQ(calls.size(), 4u);  // not after a failed parse
  o.parser.run_parse_callbacks();
  EXPECT_EQ(calls.size(), 6u);
}

TEST(OptionsTest, DefinitionsAreChecked) {
  OptionParser p;
  p.define<int>("port", 1);
  EXPECT_THROW(p.define<int>("port", 2), Error);
  EXPECT_THROW(p.define<std::string>("port", "x"), Error);
  EXPECT_THROW(p.define<bool>("help", false), Error);
  for (const char* bad : {"", "-x", "_x", "a b", "a=b", "a,b", "caf\xc3\xa9"}) {
    EXPECT_THROW(p.define<int>(bad, 0), Error) << bad;
  }
  p.define<int>("a.b-c_d9", 0);
  EXPECT_TRUE(p.contains("a.b-c-d9"));
}

TEST(OptionsTest, TypedAccessIsChecked) {
  AllTypes o;
  EXPECT_THROW(o.parser.get<int>("nope"), Error);
  EXPECT_THROW(o.parser.get<std::string>("port"), Error);
  EXPECT_THROW(o.parser.get<std::int64_t>("port"), Error);
  EXPECT_EQ(&o.parser.option<int>("port"), &o.port);
  o.port.set(1234);
  EXPECT_EQ(o.parser.get<int>("port"), 1234);
}

TEST(OptionsTest, ArgcArgvFormWorksOnTheGlobalParser) {
  // Names unique to this test: the global parser lives for the process.
  auto& port = define<int>("global_test_port", 8888, "listen port");
  auto& tag = define("global_test_tag", "none");
  std::string a0 = "prog", a1 = "--global-test-port=81", a2 = "--global_test_tag", a3 = "x", a4 = "rest";
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data()};
  static bool called = false;  // the callback outlives this test
  add_parse_callback([] { called = true; });
  Args rest = parse_command_line(5, argv);
  EXPECT_EQ(rest, (Args{"rest"}));
  EXPECT_EQ(*port, 81);
  EXPECT_EQ(get<std::string>("global_test_tag"), "x");
  EXPECT_EQ(*tag, "x");
  EXPECT_TRUE(called);
  EXPECT_EQ(&options().option<int>("global-test-port"), &port);
  EXPECT_NE(help("prog").find("--global-test-port"), std::string::npos);
}

}  // namespace
}  // namespace squall::options
