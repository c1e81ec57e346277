// ResolvedAddress, DefaultResolver and OverrideResolver. DefaultResolver is
// only given inputs that getaddrinfo answers without DNS: numeric addresses,
// names listed in /etc/hosts (for the families listed there), and inputs
// that fail before any lookup. Failures that need a DNS server (NXDOMAIN,
// timeouts) are tested in caresresolver_test.cpp against a loopback server.
#include "squall/net/resolver.hpp"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <exception>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "squall/core/executor.hpp"
#include "squall/testing.hpp"

namespace squall::net {
namespace {

using Addresses = std::vector<ResolvedAddress>;

class ResolverTest : public testing::AsyncTest {};

template <class T>
Future<std::exception_ptr> outcome(Future<T> f) {
  std::exception_ptr error;
  try {
    (void)co_await f;
  } catch (...) {
    error = std::current_exception();
  }
  co_return error;
}

std::string resolve_error_message(const std::exception_ptr& e) {
  if (!e) return "<no error>";
  try {
    std::rethrow_exception(e);
  } catch (const ResolveError& error) {
    return error.what();
  } catch (const std::exception& other) {
    return std::string("<not a ResolveError: ") + other.what() + ">";
  }
}

std::vector<std::string> ips(const Addresses& list) {
  std::vector<std::string> out;
  for (const auto& a : list) out.push_back(a.ip());
  std::sort(out.begin(), out.end());
  return out;
}

/// The numeric addresses /etc/hosts gives `name`, per family.
struct HostsEntry {
  std::set<std::string> v4, v6;
};

HostsEntry hosts_file_entry(const std::string& name) {
  HostsEntry entry;
  std::ifstream in("/etc/hosts");
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream fields(line);
    std::string address, alias;
    if (!(fields >> address)) continue;
    bool listed = false;
    while (fields >> alias) listed = listed || alias == name;
    if (!listed) continue;
    auto parsed = ResolvedAddress::try_from_ip(address, 0);
    if (!parsed) continue;
    (parsed->family == AF_INET ? entry.v4 : entry.v6).insert(parsed->ip());
  }
  return entry;
}

// --- ResolvedAddress ---------------------------------------------------------------------

TEST(ResolvedAddressTest, AnIPv4AddressRoundTripsThroughText) {
  auto a = ResolvedAddress::from_ip("127.0.0.1", 8888);
  EXPECT_EQ(a.family, AF_INET);
  EXPECT_EQ(a.length, sizeof(sockaddr_in));
  EXPECT_EQ(a.sockaddr_ptr()->sa_family, AF_INET);
  EXPECT_EQ(a.port(), 8888);
  EXPECT_EQ(a.ip(), "127.0.0.1");
  EXPECT_EQ(a.to_string(), "127.0.0.1:8888");
}

TEST(ResolvedAddressTest, AnIPv6AddressIsBracketedInText) {
  auto a = ResolvedAddress::from_ip("::1", 443);
  EXPECT_EQ(a.family, AF_INET6);
  EXPECT_EQ(a.length, sizeof(sockaddr_in6));
  EXPECT_EQ(a.to_string(), "[::1]:443");
  EXPECT_EQ(ResolvedAddress::from_ip("[::1]", 443), a);
  EXPECT_EQ(ResolvedAddress::from_ip("2001:db8::1", 0).to_string(), "[2001:db8::1]:0");
}

TEST(ResolvedAddressTest, AnIPv6ZoneIsKept) {
  auto a = ResolvedAddress::from_ip("fe80::1%1", 80);
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_scope_id, 1u);
  EXPECT_NE(a, ResolvedAddress::from_ip("fe80::1", 80));
  EXPECT_EQ(a.ip().rfind("fe80::1%", 0), 0u) << a.ip();
}

TEST(ResolvedAddressTest, TextThatIsNotAnAddressIsRejected) {
  for (const char* text : {"", "localhost", "127.1", "256.0.0.1", "::g", "[::1", "1.2.3.4:80", "fe80::1%"}) {
    EXPECT_THROW(ResolvedAddress::from_ip(text, 80), std::invalid_argument) << text;
    EXPECT_FALSE(ResolvedAddress::try_from_ip(text, 80)) << text;
  }
  EXPECT_THROW(ResolvedAddress::from_ip("127.0.0.1", 65536), std::invalid_argument);
  EXPECT_THROW(ResolvedAddress::from_ip("127.0.0.1", -1), std::invalid_argument);
}

TEST(ResolvedAddressTest, EqualityComparesFamilyAddressAndPort) {
  EXPECT_EQ(ResolvedAddress::from_ip("127.0.0.1", 80), ResolvedAddress::from_ip("127.0.0.1", 80));
  EXPECT_NE(ResolvedAddress::from_ip("127.0.0.1", 80), ResolvedAddress::from_ip("127.0.0.1", 81));
  EXPECT_NE(ResolvedAddress::from_ip("127.0.0.1", 80), ResolvedAddress::from_ip("127.0.0.2", 80));
  EXPECT_NE(ResolvedAddress::from_ip("::ffff:127.0.0.1", 80), ResolvedAddress::from_ip("127.0.0.1", 80));
}

// --- DefaultResolver ---------------------------------------------------------------------

SQUALL_ASYNC_TEST(ResolverTest, DefaultResolverFindsLocalhostInTheHostsFile) {
  auto listed = hosts_file_entry("localhost");
  CO_ASSERT_FALSE(listed.v4.empty() && listed.v6.empty());
  DefaultResolver resolver;
  // Ask only for families /etc/hosts has: a family it lacks would make
  // glibc go on to DNS.
  if (!listed.v4.empty()) {
    Addresses v4 = co_await resolver.resolve("localhost", 8080, AF_INET);
    EXPECT_EQ(ips(v4), std::vector<std::string>(listed.v4.begin(), listed.v4.end()));
    for (const auto& a : v4) {
      EXPECT_EQ(a.family, AF_INET);
      EXPECT_EQ(a.port(), 8080);
    }
  }
  if (!listed.v6.empty()) {
    Addresses v6 = co_await resolver.resolve("localhost", 8080, AF_INET6);
    EXPECT_EQ(ips(v6), std::vector<std::string>(listed.v6.begin(), listed.v6.end()));
  }
  if (!listed.v4.empty() && !listed.v6.empty()) {
    Addresses both = co_await resolver.resolve("localhost", 8080, AF_UNSPEC);
    std::vector<std::string> expected(listed.v4.begin(), listed.v4.end());
    expected.insert(expected.end(), listed.v6.begin(), listed.v6.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(ips(both), expected);
  }
}

SQUALL_ASYNC_TEST(ResolverTest, DefaultResolverAnswersNumericAddressesAtOnce) {
  DefaultResolver resolver;
  auto v4 = resolver.resolve("127.0.0.1", 80);
  EXPECT_TRUE(v4.done());  // no trip to the executor
  Addresses a = co_await v4;
  CO_ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].to_string(), "127.0.0.1:80");
  Addresses b = co_await resolver.resolve("::1", 80, AF_INET6);
  CO_ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].to_string(), "[::1]:80");
}

SQUALL_ASYNC_TEST(ResolverTest, DefaultResolverRejectsANumericAddressOfTheWrongFamily) {
  DefaultResolver resolver;
  auto error = co_await outcome(resolver.resolve("127.0.0.1", 80, AF_INET6));
  auto message = resolve_error_message(error);
  EXPECT_NE(message.find("127.0.0.1"), std::string::npos) << message;
  EXPECT_NE(message.find("AF_INET6"), std::string::npos) << message;
}

SQUALL_ASYNC_TEST(ResolverTest, DefaultResolverRejectsAnEmptyHostAndABadPort) {
  DefaultResolver resolver;
  auto empty = co_await outcome(resolver.resolve("", 80));
  EXPECT_NE(resolve_error_message(empty).find("empty host"), std::string::npos);
  auto port = co_await outcome(resolver.resolve("localhost", 65536));
  auto message = resolve_error_message(port);
  EXPECT_NE(message.find("localhost"), std::string::npos) << message;
  EXPECT_NE(message.find("port out of range"), std::string::npos) << message;
}

SQUALL_ASYNC_TEST(ResolverTest, DefaultResolverReportsGetaddrinfoErrorsWithGaiStrerror) {
  // glibc rejects the family before any lookup (EAI_FAMILY), so this
  // exercises the getaddrinfo error path without a DNS query.
  DefaultResolver resolver;
  auto error = co_await outcome(resolver.resolve("localhost", 80, AF_UNIX));
  auto message = resolve_error_message(error);
  EXPECT_NE(message.find("localhost"), std::string::npos) << message;
  EXPECT_NE(message.find(::gai_strerror(EAI_FAMILY)), std::string::npos) << message;
}

SQUALL_ASYNC_TEST(ResolverTest, DefaultResolverRunsOnAGivenExecutor) {
  auto listed = hosts_file_entry("localhost");
  CO_ASSERT_FALSE(listed.v4.empty() && listed.v6.empty());
  int family = listed.v4.empty() ? AF_INET6 : AF_INET;
  ThreadPoolExecutor pool(1);
  DefaultResolver resolver(&pool);
  Addresses a = co_await resolver.resolve("localhost", 1, family);
  EXPECT_FALSE(a.empty());
}

SQUALL_ASYNC_TEST(ResolverTest, CancellingADefaultResolverLookupAbandonsItsAnswer) {
  auto listed = hosts_file_entry("localhost");
  CO_ASSERT_FALSE(listed.v4.empty() && listed.v6.empty());
  int family = listed.v4.empty() ? AF_INET6 : AF_INET;
  DefaultResolver resolver;
  auto lookup = resolver.resolve("localhost", 1, family);
  EXPECT_TRUE(lookup.cancel());
  EXPECT_TRUE(lookup.cancelled());
  // The lookup already on the executor finishes; its answer is dropped.
  // A later lookup on the same pool comes back normally.
  Addresses again = co_await resolver.resolve("localhost", 1, family);
  EXPECT_FALSE(again.empty());
  EXPECT_TRUE(lookup.cancelled());
}

SQUALL_ASYNC_TEST(ResolverTest, TheDefaultResolverIsOneSharedDefaultResolver) {
  auto a = default_resolver();
  auto b = default_resolver();
  CO_ASSERT_TRUE(a != nullptr);
  EXPECT_EQ(a, b);
  EXPECT_NE(dynamic_cast<DefaultResolver*>(a.get()), nullptr);
  a->close();  // ignored: shared by everyone
  Addresses result = co_await b->resolve("127.0.0.1", 5);
  EXPECT_EQ(result.size(), 1u);
}

SQUALL_ASYNC_TEST(ResolverTest, TheGuidesDefaultResolverExampleRuns) {
  if (hosts_file_entry("localhost").v4.empty()) co_return;  // the example asks for IPv4
  squall::net::DefaultResolver resolver;  // getaddrinfo on the loop's default executor
  auto addresses = co_await resolver.resolve("localhost", 8080, AF_INET);
  CO_ASSERT_FALSE(addresses.empty());
  EXPECT_EQ(addresses[0].port(), 8080);
}

SQUALL_ASYNC_TEST(ResolverTest, TheGuidesOverrideResolverExampleRuns) {
  auto resolver = std::make_shared<squall::net::OverrideResolver>(
      squall::net::default_resolver(),
      squall::net::OverrideMapping{
          .host = {{"www.example.com", "localhost"}},
          .host_port = {{{"login.example.com", 443}, {"localhost", 8443}}},
          .addresses = {{"api.example.com", {"127.0.0.1", "::1"}}},
      });
  auto api = co_await resolver->resolve("api.example.com", 80);  // 127.0.0.1:80 and [::1]:80, no lookup
  EXPECT_EQ(ips(api), (std::vector<std::string>{"127.0.0.1", "::1"}));
}

// --- OverrideResolver --------------------------------------------------------------------

/// An inner resolver that records what it was asked and answers 127.0.0.1
/// for every name; names starting with "fail" fail.
class RecordingResolver final : public Resolver {
 public:
  Future<Addresses> resolve(const std::string& host, int port, int family) override {
    asked.emplace_back(host, port, family);
    if (host.rfind("fail", 0) == 0) {
      return make_exception_future<Addresses>(std::make_exception_ptr(ResolveError("inner failed " + host)));
    }
    return make_ready_future(Addresses{ResolvedAddress::from_ip("127.0.0.1", port)});
  }
  void close() override { closed = true; }

  std::vector<std::tuple<std::string, int, int>> asked;
  bool closed = false;
};

SQUALL_ASYNC_TEST(ResolverTest, OverrideResolverMapsAHostToAnotherKeepingThePort) {
  auto inner = std::make_shared<RecordingResolver>();
  OverrideResolver resolver(inner, {.host = {{"example.com", "localhost"}}});
  (void)co_await resolver.resolve("example.com", 443, AF_INET);
  (void)co_await resolver.resolve("other.com", 80);
  using Call = std::tuple<std::string, int, int>;
  EXPECT_EQ(inner->asked, (std::vector<Call>{{"localhost", 443, AF_INET}, {"other.com", 80, AF_UNSPEC}}));
}

SQUALL_ASYNC_TEST(ResolverTest, OverrideResolverMapsAHostAndPortToAnotherHostAndPort) {
  auto inner = std::make_shared<RecordingResolver>();
  OverrideResolver resolver(inner, {.host_port = {{{"login.example.com", 443}, {"localhost", 8443}}}});
  Addresses a = co_await resolver.resolve("login.example.com", 443);
  (void)co_await resolver.resolve("login.example.com", 80);  // another port: untouched
  using Call = std::tuple<std::string, int, int>;
  EXPECT_EQ(inner->asked,
            (std::vector<Call>{{"localhost", 8443, AF_UNSPEC}, {"login.example.com", 80, AF_UNSPEC}}));
  CO_ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].port(), 8443);
}

SQUALL_ASYNC_TEST(ResolverTest, OverrideResolverPrefersTheMostSpecificRule) {
  auto inner = std::make_shared<RecordingResolver>();
  OverrideResolver resolver(inner, {
                                       .host = {{"a.test", "by-host"}},
                                       .host_port = {{{"a.test", 80}, {"by-host-port", 81}}},
                                       .host_port_family = {{{"a.test", 80, AF_INET6}, {"by-family", 82}}},
                                   });
  (void)co_await resolver.resolve("a.test", 80, AF_INET6);
  (void)co_await resolver.resolve("a.test", 80, AF_INET);
  (void)co_await resolver.resolve("a.test", 80);
  (void)co_await resolver.resolve("a.test", 90, AF_INET6);
  using Call = std::tuple<std::string, int, int>;
  EXPECT_EQ(inner->asked, (std::vector<Call>{{"by-family", 82, AF_INET6},
                                             {"by-host-port", 81, AF_INET},
                                             {"by-host-port", 81, AF_UNSPEC},
                                             {"by-host", 90, AF_INET6}}));
}

SQUALL_ASYNC_TEST(ResolverTest, OverrideResolverAnswersFixedAddressesWithoutTheInnerResolver) {
  auto inner = std::make_shared<RecordingResolver>();
  OverrideResolver resolver(inner, {
                                       .host = {{"alias.test", "api.test"}},
                                       .addresses = {{"api.test", {"127.0.0.5", "::1"}}},
                                   });
  Addresses both = co_await resolver.resolve("api.test", 9000);
  EXPECT_EQ(ips(both), (std::vector<std::string>{"127.0.0.5", "::1"}));
  for (const auto& a : both) EXPECT_EQ(a.port(), 9000);
  Addresses v6 = co_await resolver.resolve("api.test", 9001, AF_INET6);
  CO_ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0].to_string(), "[::1]:9001");
  // A rewritten host gets the fixed addresses too.
  Addresses via_alias = co_await resolver.resolve("alias.test", 1, AF_INET);
  EXPECT_EQ(ips(via_alias), (std::vector<std::string>{"127.0.0.5"}));
  EXPECT_TRUE(inner->asked.empty());
}

SQUALL_ASYNC_TEST(ResolverTest, OverrideResolverFailsWhenNoFixedAddressHasTheFamily) {
  auto inner = std::make_shared<RecordingResolver>();
  OverrideResolver resolver(inner, {.addresses = {{"v4.test", {"127.0.0.5"}}}});
  auto error = co_await outcome(resolver.resolve("v4.test", 80, AF_INET6));
  EXPECT_NE(resolve_error_message(error).find("v4.test"), std::string::npos);
  EXPECT_TRUE(inner->asked.empty());
}

SQUALL_ASYNC_TEST(ResolverTest, OverrideResolverPassesTheInnerResolversErrorsThrough) {
  auto inner = std::make_shared<RecordingResolver>();
  OverrideResolver resolver(inner, {.host = {{"x.test", "fail.test"}}});
  auto error = co_await outcome(resolver.resolve("x.test", 80));
  EXPECT_EQ(resolve_error_message(error), "inner failed fail.test");
}

TEST(OverrideResolverTest, CloseClosesTheInnerResolver) {
  auto inner = std::make_shared<RecordingResolver>();
  OverrideResolver resolver(inner, {});
  EXPECT_EQ(resolver.inner(), inner);
  resolver.close();
  EXPECT_TRUE(inner->closed);
}

TEST(OverrideResolverTest, BadConstructionArgumentsAreRejected) {
  EXPECT_THROW(OverrideResolver(nullptr, {}), std::invalid_argument);
  EXPECT_THROW(OverrideResolver(std::make_shared<RecordingResolver>(), {.addresses = {{"x", {"not-an-ip"}}}}),
               std::invalid_argument);
}

}  // namespace
}  // namespace squall::net
