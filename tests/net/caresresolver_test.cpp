// CaresResolver against a DNS responder on 127.0.0.1 run by the same loop:
// answers, NXDOMAIN, timeouts, cancellation, many lookups at once, closing
// and destroying with lookups in flight. Every query goes to the responder:
// the resolvers here never read the system's configuration
// (use_system_config = false), so no packet leaves loopback.
#include "squall/net/caresresolver.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "../support/dns_responder.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::net {
namespace {

using test_support::DnsResponder;
using Addresses = std::vector<ResolvedAddress>;

class CaresResolverTest : public testing::AsyncTest {};

/// Options that send every query to `dns` and nothing to the system's
/// resolvers.
CaresResolver::Options loopback(const DnsResponder& dns, std::chrono::milliseconds timeout = 2s, int tries = 2) {
  return {.servers = {dns.address()}, .timeout = timeout, .tries = tries, .use_system_config = false};
}

/// The addresses as sorted "ip" texts, so tests do not depend on c-ares's
/// RFC 6724 ordering.
std::vector<std::string> ips(const Addresses& list) {
  std::vector<std::string> out;
  for (const auto& a : list) out.push_back(a.ip());
  std::sort(out.begin(), out.end());
  return out;
}

/// Waits for `f` and returns its exception (null if it succeeded).
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

template <class E>
bool holds(const std::exception_ptr& e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
  }
  return false;
}

/// The message of a ResolveError, or a description of what came instead.
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

SQUALL_ASYNC_TEST(CaresResolverTest, AnARecordComesBackWithTheRequestedPort) {
  DnsResponder dns;
  dns.add("www.example.test", "127.0.0.2");
  CaresResolver resolver(loopback(dns));
  Addresses result = co_await resolver.resolve("www.example.test", 8080, AF_INET);
  CO_ASSERT_EQ(result.size(), 1u);
  EXPECT_EQ(result[0].family, AF_INET);
  EXPECT_EQ(result[0].to_string(), "127.0.0.2:8080");
  EXPECT_EQ(dns.log(), (std::vector<std::string>{"www.example.test/A"}));
}

SQUALL_ASYNC_TEST(CaresResolverTest, AnAAAARecordComesBackForAF_INET6) {
  DnsResponder dns;
  dns.add("v6.example.test", "::1");
  dns.add("v6.example.test", "127.0.0.3");  // an A record that must not be asked for
  CaresResolver resolver(loopback(dns));
  Addresses result = co_await resolver.resolve("v6.example.test", 443, AF_INET6);
  CO_ASSERT_EQ(result.size(), 1u);
  EXPECT_EQ(result[0].family, AF_INET6);
  EXPECT_EQ(result[0].to_string(), "[::1]:443");
  EXPECT_EQ(dns.log(), (std::vector<std::string>{"v6.example.test/AAAA"}));
}

SQUALL_ASYNC_TEST(CaresResolverTest, AF_UNSPECAsksForBothFamiliesAndReturnsEveryAddress) {
  DnsResponder dns;
  dns.add("both.example.test", "127.0.0.4");
  dns.add("both.example.test", "127.0.0.5");
  dns.add("both.example.test", "::1");
  CaresResolver resolver(loopback(dns));
  Addresses result = co_await resolver.resolve("both.example.test", 80);
  EXPECT_EQ(ips(result), (std::vector<std::string>{"127.0.0.4", "127.0.0.5", "::1"}));
  for (const auto& a : result) EXPECT_EQ(a.port(), 80);
  auto asked = dns.log();
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<std::string>{"both.example.test/A", "both.example.test/AAAA"}));
}

SQUALL_ASYNC_TEST(CaresResolverTest, NamesAreMatchedCaseInsensitively) {
  DnsResponder dns;
  dns.add("mixed.example.test", "127.0.0.6");
  CaresResolver resolver(loopback(dns));
  Addresses result = co_await resolver.resolve("MiXeD.Example.TEST", 1, AF_INET);
  EXPECT_EQ(ips(result), (std::vector<std::string>{"127.0.0.6"}));
}

SQUALL_ASYNC_TEST(CaresResolverTest, NXDOMAINFailsWithAResolveErrorNamingTheHost) {
  DnsResponder dns;
  CaresResolver resolver(loopback(dns));
  auto error = co_await outcome(resolver.resolve("nowhere.example.test", 80));
  auto message = resolve_error_message(error);
  EXPECT_NE(message.find("nowhere.example.test"), std::string::npos) << message;
  EXPECT_NE(message.find("Domain name not found"), std::string::npos) << message;
}

SQUALL_ASYNC_TEST(CaresResolverTest, ANameWithoutAddressesOfTheFamilyFails) {
  DnsResponder dns;
  dns.add("v4only.example.test", "127.0.0.7");
  CaresResolver resolver(loopback(dns));
  auto error = co_await outcome(resolver.resolve("v4only.example.test", 80, AF_INET6));
  auto message = resolve_error_message(error);
  EXPECT_NE(message.find("v4only.example.test"), std::string::npos) << message;
  EXPECT_EQ(message.find("<"), std::string::npos) << message;
}

SQUALL_ASYNC_TEST(CaresResolverTest, AServerThatNeverAnswersTimesOutWithAResolveError) {
  DnsResponder dns;
  dns.set_mode(DnsResponder::Mode::silent);
  CaresResolver resolver(loopback(dns, 200ms, 1));
  auto started = io_loop().time();
  auto error = co_await outcome(resolver.resolve("slow.example.test", 80, AF_INET));
  auto elapsed = io_loop().time() - started;
  auto message = resolve_error_message(error);
  EXPECT_NE(message.find("slow.example.test"), std::string::npos) << message;
  EXPECT_NE(message.find("Timeout"), std::string::npos) << message;
  EXPECT_EQ(dns.queries(), 1u);
  // c-ares timed the query out itself, at about the configured 200 ms.
  EXPECT_GE(elapsed, 150ms);
  EXPECT_EQ(resolver.pending(), 0u);
}

SQUALL_ASYNC_TEST(CaresResolverTest, RetriesResendTheQueryBeforeGivingUp) {
  DnsResponder dns;
  dns.set_mode(DnsResponder::Mode::silent);
  CaresResolver resolver(loopback(dns, 100ms, 3));
  auto error = co_await outcome(resolver.resolve("retry.example.test", 80, AF_INET));
  EXPECT_NE(resolve_error_message(error).find("Timeout"), std::string::npos);
  EXPECT_EQ(dns.queries(), 3u);
}

SQUALL_ASYNC_TEST(CaresResolverTest, NumericHostsAreAnsweredWithoutAQuery) {
  DnsResponder dns;
  CaresResolver resolver(loopback(dns));
  auto v4 = resolver.resolve("127.0.0.1", 80);
  EXPECT_TRUE(v4.done());  // no round trip at all
  Addresses a = co_await v4;
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].to_string(), "127.0.0.1:80");
  Addresses b = co_await resolver.resolve("::1", 81, AF_INET6);
  CO_ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].to_string(), "[::1]:81");
  auto mismatch = co_await outcome(resolver.resolve("::1", 81, AF_INET));
  EXPECT_NE(resolve_error_message(mismatch).find("::1"), std::string::npos);
  EXPECT_EQ(dns.queries(), 0u);
}

SQUALL_ASYNC_TEST(CaresResolverTest, BadArgumentsFailWithoutAQuery) {
  DnsResponder dns;
  CaresResolver resolver(loopback(dns));
  auto unix_family = co_await outcome(resolver.resolve("name.example.test", 80, AF_UNIX));
  EXPECT_NE(resolve_error_message(unix_family).find("unsupported address family"), std::string::npos);
  auto empty = co_await outcome(resolver.resolve("", 80));
  EXPECT_NE(resolve_error_message(empty).find("empty host"), std::string::npos);
  auto bad_port = co_await outcome(resolver.resolve("name.example.test", 70000));
  EXPECT_NE(resolve_error_message(bad_port).find("port out of range"), std::string::npos);
  EXPECT_EQ(dns.queries(), 0u);
}

SQUALL_ASYNC_TEST(CaresResolverTest, CancellingALookupAbandonsItAndTheLateAnswerIsDropped) {
  DnsResponder dns;
  dns.add("held.example.test", "127.0.0.8");
  dns.add("after.example.test", "127.0.0.9");
  dns.set_mode(DnsResponder::Mode::hold);
  CaresResolver resolver(loopback(dns));
  auto lookup = resolver.resolve("held.example.test", 80, AF_INET);
  co_await dns.wait_for_queries(1);
  EXPECT_TRUE(lookup.cancel());
  EXPECT_TRUE(lookup.cancelled());
  // c-ares still holds the query until its answer (or timeout) arrives.
  EXPECT_EQ(resolver.pending(), 1u);
  dns.set_mode(DnsResponder::Mode::answer);
  dns.release();
  // The late answer reaches c-ares before this one (same socket, in order),
  // so once this lookup is done the abandoned one has been dropped.
  Addresses after = co_await resolver.resolve("after.example.test", 80, AF_INET);
  EXPECT_EQ(ips(after), (std::vector<std::string>{"127.0.0.9"}));
  EXPECT_EQ(resolver.pending(), 0u);
  EXPECT_TRUE(lookup.cancelled());
}

SQUALL_ASYNC_TEST(CaresResolverTest, CancellingACoroutineThatAwaitsALookupCancelsTheLookup) {
  DnsResponder dns;
  dns.set_mode(DnsResponder::Mode::hold);
  CaresResolver resolver(loopback(dns, 200ms, 1));
  bool cancelled = false;
  auto waiter = [&]() -> Future<void> {
    try {
      (void)co_await resolver.resolve("held.example.test", 80, AF_INET);
    } catch (const CancelledError&) {
      cancelled = true;
      throw;
    }
  };
  auto running = waiter();
  co_await dns.wait_for_queries(1);
  EXPECT_TRUE(running.cancel());
  auto error = co_await outcome(running);
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(holds<CancelledError>(error));
  // c-ares still holds the abandoned query: it ends by its own timeout, or
  // here, when the resolver is destroyed; either way nothing is delivered.
  EXPECT_EQ(resolver.pending(), 1u);
}

SQUALL_ASYNC_TEST(CaresResolverTest, TwoHundredConcurrentLookupsAllSucceed) {
  constexpr int kLookups = 200;
  DnsResponder dns;
  for (int i = 0; i < kLookups; ++i) {
    dns.add("host" + std::to_string(i) + ".example.test", "127.0.1." + std::to_string(i % 250 + 1));
  }
  auto options = loopback(dns);
  // 400 answers (A and AAAA) arrive in one burst; give them room so none is
  // dropped and retried (see Options::socket_receive_buffer).
  options.socket_receive_buffer = 1 << 20;
  CaresResolver resolver(options);
  std::vector<Future<Addresses>> lookups;
  for (int i = 0; i < kLookups; ++i) {
    lookups.push_back(resolver.resolve("host" + std::to_string(i) + ".example.test", 80));
  }
  EXPECT_EQ(resolver.pending(), static_cast<std::size_t>(kLookups));
  for (int i = 0; i < kLookups; ++i) {
    Addresses result = co_await lookups[i];
    EXPECT_EQ(ips(result), (std::vector<std::string>{"127.0.1." + std::to_string(i % 250 + 1)})) << "lookup " << i;
  }
  EXPECT_EQ(resolver.pending(), 0u);
  EXPECT_EQ(dns.queries(), static_cast<std::size_t>(2 * kLookups));  // A and AAAA each
}

SQUALL_ASYNC_TEST(CaresResolverTest, DestroyingTheResolverFailsPendingLookups) {
  DnsResponder dns;
  dns.set_mode(DnsResponder::Mode::hold);
  auto resolver = std::make_unique<CaresResolver>(loopback(dns));
  std::vector<Future<Addresses>> lookups;
  for (int i = 0; i < 3; ++i) lookups.push_back(resolver->resolve("pending" + std::to_string(i) + ".example.test", 80));
  co_await dns.wait_for_queries(6);  // A and AAAA for each
  resolver.reset();
  for (auto& f : lookups) {
    CO_ASSERT_TRUE(f.done());
    auto message = resolve_error_message(f.exception());
    EXPECT_NE(message.find("the resolver was closed"), std::string::npos) << message;
  }
  // The answers that arrive now go to a closed socket; nothing may notice.
  dns.release();
}

SQUALL_ASYNC_TEST(CaresResolverTest, CloseFailsPendingAndLaterLookups) {
  DnsResponder dns;
  dns.set_mode(DnsResponder::Mode::hold);
  CaresResolver resolver(loopback(dns));
  auto pending = resolver.resolve("pending.example.test", 80, AF_INET);
  co_await dns.wait_for_queries(1);
  resolver.close();
  resolver.close();  // idempotent
  EXPECT_EQ(resolver.pending(), 0u);
  CO_ASSERT_TRUE(pending.done());
  EXPECT_NE(resolve_error_message(pending.exception()).find("closed"), std::string::npos);
  auto later = co_await outcome(resolver.resolve("later.example.test", 80));
  EXPECT_NE(resolve_error_message(later).find("the resolver is closed"), std::string::npos);
  // Numeric hosts need no channel and still work.
  Addresses numeric = co_await resolver.resolve("127.0.0.1", 80);
  EXPECT_EQ(numeric.size(), 1u);
}

SQUALL_ASYNC_TEST(CaresResolverTest, ALookupsContinuationMayDestroyTheResolverWhileOthersArePending) {
  DnsResponder dns;
  dns.add("first.example.test", "127.0.0.10");
  dns.add("second.example.test", "127.0.0.11");
  dns.set_mode(DnsResponder::Mode::hold);
  auto resolver = std::make_unique<CaresResolver>(loopback(dns));
  auto first = resolver->resolve("first.example.test", 80, AF_INET);
  auto second = resolver->resolve("second.example.test", 80, AF_INET);
  bool destroyed = false;
  // Runs inside the resolver's socket handler, while the second answer may
  // still be waiting in the same batch.
  first.add_done_callback([&] {
    resolver.reset();
    destroyed = true;
  });
  co_await dns.wait_for_queries(2);
  dns.release();
  auto error = co_await outcome(second);
  EXPECT_TRUE(destroyed);
  CO_ASSERT_TRUE(first.done());
  EXPECT_EQ(ips(first.result()), (std::vector<std::string>{"127.0.0.10"}));
  // The second answer came in the same read or later; either way the
  // lookup ended once, with its answer or the closed resolver's error.
  if (error) {
    EXPECT_NE(resolve_error_message(error).find("closed"), std::string::npos);
  } else {
    EXPECT_EQ(ips(second.result()), (std::vector<std::string>{"127.0.0.11"}));
  }
}

SQUALL_ASYNC_TEST(CaresResolverTest, ASecondServerIsTriedWhenTheFirstIsSilent) {
  DnsResponder down;
  down.set_mode(DnsResponder::Mode::silent);
  DnsResponder up;
  up.add("failover.example.test", "127.0.0.12");
  CaresResolver resolver(
      {.servers = {down.address(), up.address()}, .timeout = 100ms, .tries = 2, .use_system_config = false});
  Addresses result = co_await resolver.resolve("failover.example.test", 80, AF_INET);
  EXPECT_EQ(ips(result), (std::vector<std::string>{"127.0.0.12"}));
  EXPECT_EQ(down.queries(), 1u);
  EXPECT_EQ(up.queries(), 1u);
}

// The guide's examples (docs/guide/resolvers.md), verbatim.

SQUALL_ASYNC_TEST(CaresResolverTest, ATestResolverTalksOnlyToItsLoopbackServer) {
  test_support::DnsResponder dns;  // UDP on 127.0.0.1, at a port the OS chose
  dns.add("www.example.test", "127.0.0.2");
  dns.add("www.example.test", "::1");
  squall::net::CaresResolver resolver(
      {.servers = {dns.address()}, .timeout = 200ms, .tries = 1, .use_system_config = false});
  auto addresses = co_await resolver.resolve("www.example.test", 8080, AF_INET);
  CO_ASSERT_EQ(addresses.size(), 1u);
  EXPECT_EQ(addresses[0].to_string(), "127.0.0.2:8080");
}

SQUALL_ASYNC_TEST(CaresResolverTest, TheSystemConfigurationLoadsWithoutAQuery) {
  // Reads /etc/resolv.conf and /etc/hosts; sends nothing until asked for a
  // name, and a numeric host needs no query.
  auto resolver = std::make_shared<squall::net::CaresResolver>(
      squall::net::CaresResolver::Options{.timeout = 2s, .tries = 3});  // servers: /etc/resolv.conf's
  auto addresses = co_await resolver->resolve("127.0.0.1", 80);
  EXPECT_EQ(addresses.size(), 1u);
  EXPECT_EQ(resolver->pending(), 0u);
}

TEST_F(CaresResolverTest, HermeticOptionsRequireExplicitServers) {
  EXPECT_THROW(CaresResolver({.use_system_config = false}), std::invalid_argument);
}

TEST_F(CaresResolverTest, AServerThatIsNotAnAddressIsRejected) {
  EXPECT_THROW(CaresResolver({.servers = {"not an address"}, .use_system_config = false}), std::invalid_argument);
  EXPECT_THROW(CaresResolver({.servers = {"127.0.0.1,127.0.0.2"}, .use_system_config = false}),
               std::invalid_argument);
}

}  // namespace
}  // namespace squall::net
