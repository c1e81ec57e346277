// BaseIOStream behaviour over every transport: TCP on loopback, unix socket
// pairs and pipes, through one typed suite. (TLS joins in ssl_iostream_test.)
#include "squall/net/iostream.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "../support/counting_new.hpp"
#include "../support/test_certs.hpp"
#include "squall/core/gen.hpp"
#include "squall/net/ssl_iostream.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::net {
namespace {

/// A reading end and a writing end of one transport.
struct Ends {
  std::unique_ptr<BaseIOStream> reader;
  std::unique_ptr<BaseIOStream> writer;
};

UniqueFd checked(int fd) {
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "fd");
  return UniqueFd(fd);
}

struct TcpTransport {
  static constexpr bool kBidirectional = true;
  static Ends make() {
    auto [listener, port] = testing::bind_unused_port();
    UniqueFd client = checked(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
    UniqueFd server = checked(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    return {std::make_unique<IOStream>(std::move(server)), std::make_unique<IOStream>(std::move(client))};
  }
};

struct SslTransport {
  static constexpr bool kBidirectional = true;
  static Ends make() {
    static testing::TestCerts certs;
    static auto server_ctx = SSLContext::server({.certfile = certs.server().cert, .keyfile = certs.server().key});
    static auto client_ctx = SSLContext::client({.ca_certs = certs.ca_file()});
    Ends plain = TcpTransport::make();
    // Take the fds back out of the plain streams to wrap them in TLS.
    UniqueFd server_fd = static_cast<IOStream&>(*plain.reader).detach();
    UniqueFd client_fd = static_cast<IOStream&>(*plain.writer).detach();
    return {std::make_unique<SSLIOStream>(std::move(server_fd), server_ctx),
            std::make_unique<SSLIOStream>(std::move(client_fd), client_ctx, "localhost")};
  }
};

struct UnixTransport {
  static constexpr bool kBidirectional = true;
  static Ends make() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
    return {std::make_unique<IOStream>(UniqueFd(fds[0])), std::make_unique<IOStream>(UniqueFd(fds[1]))};
  }
};

struct PipeTransport {
  static constexpr bool kBidirectional = false;
  static Ends make() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    return {std::make_unique<PipeIOStream>(UniqueFd(fds[0])), std::make_unique<PipeIOStream>(UniqueFd(fds[1]))};
  }
};

template <class Transport>
class StreamTest : public testing::AsyncTest {
 protected:
  void SetUp() override {
    testing::AsyncTest::SetUp();
    ends_ = Transport::make();
  }
  void TearDown() override {
    ends_ = {};
    testing::AsyncTest::TearDown();
  }

 public:
  BaseIOStream& reader() { return *ends_.reader; }
  BaseIOStream& writer() { return *ends_.writer; }
  Ends ends_;
};

using Transports = ::testing::Types<TcpTransport, UnixTransport, PipeTransport, SslTransport>;
TYPED_TEST_SUITE(StreamTest, Transports);

/// Resolves on the loop's next iteration, so the other end gets to run.
Future<void> next_iteration() {
  Future<void> f;
  IOLoop::current().add_callback([f]() mutable { f.set_result(); });
  return f;
}

/// Runs a coroutine test body on the fixture's loop.
#define STREAM_TEST(name)                                   \
  template <class T>                                        \
  Future<void> name##_body(StreamTest<T>& t);               \
  TYPED_TEST(StreamTest, name) {                            \
    this->run_coroutine_test([this] { return name##_body(*this); }); \
  }                                                         \
  template <class T>                                        \
  Future<void> name##_body(StreamTest<T>& t)

STREAM_TEST(ReadBytesReturnsExactlyTheBytesAskedFor) {
  co_await t.writer().write("hello world");
  EXPECT_EQ(co_await t.reader().read_bytes(5), "hello");
  EXPECT_EQ(co_await t.reader().read_bytes(6), " world");
}

STREAM_TEST(APartialReadReturnsWhatIsThereUpToN) {
  co_await t.writer().write("abc");
  std::string got = co_await t.reader().read_bytes(100, true);
  EXPECT_EQ(got, "abc");
}

STREAM_TEST(ReadUntilFindsADelimiterSplitAcrossWrites) {
  auto line = t.reader().read_until("\r\n\r\n");
  for (char c : std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\nextra")) {
    co_await t.writer().write(std::string(1, c));
    co_await next_iteration();
  }
  EXPECT_EQ(co_await line, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(co_await t.reader().read_bytes(5), "extra");
}

STREAM_TEST(ReadUntilRegexStopsAfterTheFirstMatch) {
  co_await t.writer().write("id=42;name=x;");
  EXPECT_EQ(co_await t.reader().read_until_regex("[0-9]+;"), "id=42;");
  EXPECT_EQ(co_await t.reader().read_until(";"), "name=x;");
}

STREAM_TEST(ReadUntilPastMaxBytesFailsAndClosesTheStream) {
  co_await t.writer().write(std::string(100, 'x'));
  bool failed = false;
  try {
    co_await t.reader().read_until("\n", 64);
  } catch (const StreamClosedError& e) {
    // The read fails with the cause: an unsatisfiable read.
    try {
      std::rethrow_exception(e.real_error());
    } catch (const UnsatisfiableReadError&) {
      failed = true;
    }
  }
  EXPECT_TRUE(failed);
  EXPECT_TRUE(t.reader().closed());
}

STREAM_TEST(ReadUntilCloseReturnsEverythingTheWriterSent) {
  auto all = t.reader().read_until_close();
  co_await t.writer().write("part one, ");
  co_await t.writer().write("part two");
  t.writer().close();
  EXPECT_EQ(co_await all, "part one, part two");
  EXPECT_TRUE(t.reader().closed());
}

STREAM_TEST(ReadIntoFillsTheCallersBuffer) {
  co_await t.writer().write("0123456789");
  char buf[4];
  std::size_t n = co_await t.reader().read_into(std::span<char>(buf, 4));
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(std::string(buf, 4), "0123");
  n = co_await t.reader().read_into(std::span<char>(buf, 4), true);
  EXPECT_GE(n, 1u);
  EXPECT_EQ(std::string(buf, n), std::string("456789").substr(0, n));
}

STREAM_TEST(ASecondPendingReadIsAClearError) {
  auto first = t.reader().read_bytes(1);
  EXPECT_THROW(t.reader().read_bytes(1), InvalidStateError);
  co_await t.writer().write("z");
  EXPECT_EQ(co_await first, "z");
}

STREAM_TEST(CancellingAPendingReadKeepsBufferedBytesForTheNextRead) {
  co_await t.writer().write("abc");
  auto pending = t.reader().read_until("\n");
  co_await next_iteration();
  EXPECT_FALSE(pending.done());
  EXPECT_TRUE(pending.cancel());
  EXPECT_FALSE(t.reader().reading());
  co_await t.writer().write("def\n");
  EXPECT_EQ(co_await t.reader().read_until("\n"), "abcdef\n");
}

STREAM_TEST(APendingReadFailsWhenThePeerCloses) {
  auto pending = t.reader().read_bytes(10);
  co_await t.writer().write("short");
  t.writer().close();
  bool closed = false;
  try {
    co_await pending;
  } catch (const StreamClosedError&) {
    closed = true;
  }
  EXPECT_TRUE(closed);
}

STREAM_TEST(TheCloseCallbackRunsOnceOnTheLoop) {
  auto calls = std::make_shared<int>(0);
  Future<void> called;
  t.reader().set_close_callback([calls, called]() mutable {
    if (++*calls == 1) called.set_result();
  });
  co_await t.writer().write("bye");  // over TLS: after the handshake
  t.writer().close();
  std::string rest = co_await t.reader().read_until_close();
  EXPECT_EQ(rest, "bye");
  co_await called;
  t.reader().close();
  co_await next_iteration();
  EXPECT_EQ(*calls, 1);
}

// Regression: a writer that hung up while no read was pending lost the
// output it sent (a subprocess that exits before its output is read).
STREAM_TEST(OutputSentBeforeAHangUpIsStillReadableAfterTheClose) {
  co_await t.writer().write("line one\nline two");
  t.writer().close();
  for (int i = 0; i < 5 && !t.reader().closed(); ++i) co_await next_iteration();
  EXPECT_EQ(co_await t.reader().read_until("\n"), "line one\n");
  EXPECT_EQ(co_await t.reader().read_until_close(), "line two");
  bool failed = false;
  try {
    co_await t.reader().read_bytes(1);
  } catch (const StreamClosedError&) {
    failed = true;
  }
  EXPECT_TRUE(failed);
}

STREAM_TEST(WritingToAClosedStreamFailsWithStreamClosedError) {
  t.writer().close();
  bool failed = false;
  try {
    co_await t.writer().write("x");
  } catch (const StreamClosedError&) {
    failed = true;
  }
  EXPECT_TRUE(failed);
}

STREAM_TEST(SixtyFourMebibytesArriveIntactWhileBothEndsRun) {
  constexpr std::size_t kSize = 64u << 20;
  auto big = std::make_shared<std::string>(kSize, '\0');
  for (std::size_t i = 0; i < kSize; ++i) (*big)[i] = static_cast<char>('a' + (i * 7) % 26);
  auto reader = [&]() -> Future<std::string> { co_return co_await t.reader().read_bytes(kSize); };
  auto got = reader();
  co_await t.writer().write(std::shared_ptr<const std::string>(big));
  std::string data = co_await got;
  EXPECT_EQ(data.size(), kSize);
  EXPECT_TRUE(data == *big);
}

STREAM_TEST(AnIdleStreamHoldsNoReadBuffer) {
  co_await t.writer().write("ping\n");
  EXPECT_EQ(co_await t.reader().read_until("\n"), "ping\n");
  EXPECT_EQ(t.reader().read_buffer_capacity(), 0u);
}

STREAM_TEST(ZeroCopyAccessLetsAParserConsumeInPlace) {
  co_await t.writer().write("key: value\nrest");
  while (t.reader().buffered().find('\n') == std::string_view::npos) co_await t.reader().read_more();
  std::string_view view = t.reader().buffered();
  std::size_t eol = view.find('\n');
  EXPECT_EQ(view.substr(0, eol), "key: value");
  t.reader().consume(eol + 1);
  while (t.reader().buffered().size() < 4) co_await t.reader().read_more();
  EXPECT_EQ(t.reader().buffered(), "rest");
}

STREAM_TEST(ReadMoreWithSpaceMakesRoomForABulkChunkFirst) {
  // Pending on an idle stream, it holds no buffer yet.
  Future<void> more = t.reader().read_more(64 * 1024);
  co_await next_iteration();
  EXPECT_FALSE(more.done());
  EXPECT_EQ(t.reader().read_buffer_capacity(), 0u);
  co_await t.writer().write(std::string(40000, 'b'));
  co_await more;
  // The first read already had 64 KiB of room (without `space`: 16 KiB).
  EXPECT_GE(t.reader().read_buffer_capacity(), 64u * 1024);
  while (t.reader().buffered().size() < 40000) co_await t.reader().read_more(64 * 1024);
  EXPECT_EQ(t.reader().buffered(), std::string(40000, 'b'));
  t.reader().consume(40000);
  EXPECT_EQ(t.reader().read_buffer_capacity(), 0u);
}

STREAM_TEST(AConsumeInPlaceRelayLosesNothing) {
  // read_more(space) + buffered() + consume(): how an echo or a proxy moves
  // bytes without copying them out of the stream.
  constexpr std::size_t kSize = 1u << 20;
  auto sent = std::make_shared<std::string>(kSize, '\0');
  for (std::size_t i = 0; i < kSize; ++i) (*sent)[i] = static_cast<char>('a' + (i * 11) % 26);
  Future<void> writing = t.writer().write(std::shared_ptr<const std::string>(sent));
  std::string got;
  while (got.size() < kSize) {
    co_await t.reader().read_more(64 * 1024);
    std::string_view chunk = t.reader().buffered();
    got.append(chunk);
    t.reader().consume(chunk.size());
  }
  co_await writing;
  EXPECT_TRUE(got == *sent);
  EXPECT_EQ(t.reader().read_buffer_capacity(), 0u);
}

// --- the short-read rule ------------------------------------------------------------
// On a socket, a read that returned less than it asked for marks the fd
// drained until its next edge (iostream.hpp). Nothing may be lost by it:
// neither data that arrives later, nor a hang-up that came with the data.

STREAM_TEST(DataAndAHangUpThatArriveTogetherAreBothSeen) {
  co_await t.writer().write("last words");
  t.writer().close();
  EXPECT_EQ(co_await t.reader().read_bytes(100, true), "last words");  // a short read
  EXPECT_EQ(co_await t.reader().read_until_close(), "");
  EXPECT_TRUE(t.reader().closed());
}

STREAM_TEST(AShortReadWaitsForTheNextArrivalAndMissesNothing) {
  co_await t.writer().write("abc");
  EXPECT_EQ(co_await t.reader().read_bytes(100, true), "abc");  // a short read
  auto next = t.reader().read_bytes(6);
  co_await next_iteration();
  EXPECT_FALSE(next.done());
  co_await t.writer().write("def");
  co_await next_iteration();
  co_await t.writer().write("ghi");
  EXPECT_EQ(co_await next, "defghi");
  co_await t.writer().write("tail");
  t.writer().close();
  EXPECT_EQ(co_await t.reader().read_until_close(), "tail");
}

STREAM_TEST(AHangUpAfterAShortReadIsNoticedWithoutAPendingRead) {
  Future<void> closed;
  t.reader().set_close_callback([&closed] { closed.set_result(); });
  co_await t.writer().write("abc");
  EXPECT_EQ(co_await t.reader().read_bytes(100, true), "abc");  // a short read
  t.writer().close();
  co_await closed;
  EXPECT_TRUE(t.reader().closed());
}

// --- large reads straight into the result ---------------------------------------------

/// `n` bytes that differ from position to position, so a lost or reordered
/// piece shows.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 131 + i / 7) % 26);
  return s;
}

STREAM_TEST(ALargeReadTakesTheBufferedBytesFirstThenTheRest) {
  constexpr std::size_t kSize = 1 << 20;
  auto data = std::make_shared<const std::string>(pattern(kSize + 10));
  auto sent = t.writer().write(std::shared_ptr<const std::string>(data));
  EXPECT_EQ(co_await t.reader().read_bytes(10), data->substr(0, 10));  // buffers more than 10
  std::string rest = co_await t.reader().read_bytes(kSize);
  co_await sent;
  EXPECT_EQ(rest.size(), kSize);
  EXPECT_TRUE(rest == data->substr(10));
}

STREAM_TEST(AWrittenViewMayBeReusedAsSoonAsWriteReturns) {
  // More than any socket or pipe takes at once: part of it must be queued,
  // and the queue must hold its own copy of what the kernel did not take.
  constexpr std::size_t kSize = 4 << 20;
  const std::string original = pattern(kSize);
  std::string buffer = original;
  auto first = t.writer().write(std::string_view(buffer));
  std::fill(buffer.begin(), buffer.end(), 'x');  // the caller reuses its buffer at once
  auto second = t.writer().write(std::string_view(buffer.data(), 3));
  std::string got = co_await t.reader().read_bytes(kSize + 3);
  co_await first;
  co_await second;
  EXPECT_TRUE(got.substr(0, kSize) == original);
  EXPECT_EQ(got.substr(kSize), "xxx");
}

/// Waits (checking every millisecond, for at most two seconds) until the
/// kernel holds at least `n` unread bytes on `fd`.
Future<void> until_unread(int fd, std::size_t n) {
  for (int i = 0; i < 2000; ++i) {
    int unread = 0;
    if (::ioctl(fd, FIONREAD, &unread) == 0 && static_cast<std::size_t>(unread) >= n) co_return;
    co_await squall::sleep(1ms);
  }
  ADD_FAILURE() << "fewer than " << n << " bytes ever arrived on fd " << fd;
}

STREAM_TEST(CancellingALargeReadKeepsWhatItHadReadForTheNextRead) {
  co_await t.writer().write("x");  // over TLS: both handshakes done after this
  EXPECT_EQ(co_await t.reader().read_bytes(1), "x");
  std::string data = pattern(50 * 1024);
  co_await t.writer().write(data);
  co_await until_unread(t.reader().fileno(), data.size());
  // One loop iteration that polls, so the reader sees the arrival's edge
  // (its last read was short: it waits for an edge before reading again).
  co_await squall::sleep(1ms);
  auto big = t.reader().read_bytes(1 << 20);  // takes all 50 KiB into its result string, then waits
  EXPECT_FALSE(big.done());
  EXPECT_TRUE(big.cancel());
  EXPECT_FALSE(t.reader().reading());
  EXPECT_EQ(t.reader().buffered().size(), data.size());  // given back to the buffer
  std::string again = co_await t.reader().read_bytes(data.size());
  EXPECT_TRUE(again == data);
}

STREAM_TEST(APeerThatHangsUpDuringALargeReadLeavesItsBytesToReadUntilClose) {
  std::string data = pattern(100 * 1024);
  auto big = t.reader().read_bytes(1 << 20);
  co_await t.writer().write(data);
  t.writer().close();
  bool failed = false;
  try {
    co_await big;
  } catch (const StreamClosedError&) {
    failed = true;
  }
  EXPECT_TRUE(failed);
  EXPECT_TRUE(co_await t.reader().read_until_close() == data);
}

// --- writes -----------------------------------------------------------------------------

STREAM_TEST(WritesKeepTheirOrderWhenTheKernelTakesOnlyPartOfOne) {
  // The first write fills the kernel's buffer: the rest of it and the next
  // writes wait in the queue, and must follow in order.
  auto a = std::make_shared<const std::string>(pattern(16 << 20));  // more than loopback TCP buffers
  std::string b = "[middle]";
  std::string c = pattern(1000);
  std::size_t total = a->size() + b.size() + c.size();
  auto got = t.reader().read_bytes(total);
  auto wa = t.writer().write(std::shared_ptr<const std::string>(a));
  auto wb = t.writer().write(b);
  auto wc = t.writer().write(c);
  EXPECT_TRUE(t.writer().writing());
  std::string all = co_await got;
  co_await wa;
  co_await wb;
  co_await wc;
  EXPECT_FALSE(t.writer().writing());
  EXPECT_TRUE(all == *a + b + c);
}

// --- socket-only behaviour ------------------------------------------------------------

class SocketStreamTest : public testing::AsyncTest {};

SQUALL_ASYNC_TEST(SocketStreamTest, AResetPeerFailsTheReadWithTheRealCause) {
  Ends ends = TcpTransport::make();
  linger hard{1, 0};  // close() sends RST instead of FIN
  ::setsockopt(ends.writer->fileno(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  auto pending = ends.reader->read_bytes(10);
  ends.writer.reset();
  std::string cause;
  try {
    co_await pending;
  } catch (const StreamClosedError& e) {
    try {
      std::rethrow_exception(e.real_error());
    } catch (const StreamIOError& io) {
      cause = io.code().message();
      EXPECT_EQ(io.code().value(), ECONNRESET);
    } catch (...) {
    }
  }
  EXPECT_FALSE(cause.empty());
}

SQUALL_ASYNC_TEST(SocketStreamTest, ExceedingTheReadBufferLimitClosesTheStream) {
  int fds[2];
  CO_ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  IOStream reader{UniqueFd(fds[0]), StreamOptions{.max_buffer_size = 4096}};
  IOStream writer{UniqueFd(fds[1])};
  co_await writer.write(std::string(10000, 'x'));
  bool closed = false;
  try {
    co_await reader.read_until("\n");
  } catch (const StreamClosedError&) {
    closed = true;
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(reader.closed());
}

SQUALL_ASYNC_TEST(SocketStreamTest, ExceedingTheWriteBufferLimitClosesTheStream) {
  int fds[2];
  CO_ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd peer{fds[1]};  // never read: the kernel buffer fills, then ours
  IOStream writer{UniqueFd(fds[0]), StreamOptions{.max_write_buffer_size = 1 << 20}};
  bool closed = false;
  for (int i = 0; i < 1000 && !closed; ++i) {
    auto f = writer.write(std::string(64 * 1024, 'y'));
    if (f.done()) {
      try {
        f.result();
      } catch (const StreamClosedError&) {
        closed = true;
      }
    }
  }
  EXPECT_TRUE(closed);
  try {
    std::rethrow_exception(writer.error());
  } catch (const StreamBufferFullError&) {
  } catch (...) {
    ADD_FAILURE() << "the stream closed for another reason";
  }
  co_return;
}

SQUALL_ASYNC_TEST(SocketStreamTest, WritingToAPeerThatWentAwayFailsWithoutSignals) {
  Ends ends = UnixTransport::make();
  ends.reader.reset();
  bool failed = false;
  for (int i = 0; i < 10 && !failed; ++i) {
    try {
      co_await ends.writer->write(std::string(4096, 'z'));
    } catch (const StreamClosedError&) {
      failed = true;
    }
  }
  EXPECT_TRUE(failed);
}

SQUALL_ASYNC_TEST(SocketStreamTest, DestroyingAStreamFailsItsPendingRead) {
  Ends ends = UnixTransport::make();
  auto pending = ends.reader->read_bytes(1);
  ends.reader.reset();
  EXPECT_TRUE(pending.done());
  EXPECT_THROW(pending.result(), StreamClosedError);
  co_return;
}

SQUALL_ASYNC_TEST(SocketStreamTest, APeerThatClosesAnIdleConnectionIsNoticed) {
  Ends ends = UnixTransport::make();
  Future<void> closed;
  ends.reader->set_close_callback([&] { closed.set_result(); });
  ends.writer.reset();
  co_await closed;  // no read was pending: the hang-up alone closed it
  EXPECT_TRUE(ends.reader->closed());
}

/// An IOStream that counts its reads from the socket.
class CountingStream : public IOStream {
 public:
  using IOStream::IOStream;
  int reads = 0;

 protected:
  IOResult read_from_fd(char* buf, std::size_t n) override {
    ++reads;
    return IOStream::read_from_fd(buf, n);
  }
};

SQUALL_ASYNC_TEST(SocketStreamTest, ARequestResponseRoundTripCostsOneRead) {
  // The short-read rule: the read that brings a small request in also says
  // the socket is empty, so no second read runs into EAGAIN.
  Ends ends = UnixTransport::make();
  CountingStream reader(static_cast<IOStream&>(*ends.reader).detach());
  constexpr int kRounds = 20;
  for (int i = 0; i < kRounds; ++i) {
    auto request = reader.read_bytes(4096, true);  // waits: nothing was sent yet
    co_await next_iteration();
    co_await ends.writer->write("ping");
    EXPECT_EQ(co_await request, "ping");
    co_await reader.write("pong");
    EXPECT_EQ(co_await ends.writer->read_bytes(4), "pong");
  }
  // One read per request, plus the first read a new stream tries at once.
  EXPECT_LE(reader.reads, kRounds + 1);
}

SQUALL_ASYNC_TEST(SocketStreamTest, DataAndAHangUpSentBeforeTheStreamExistedAreBothSeen) {
  // Regression guard for the short-read rule: the hang-up has been in the
  // socket all along (no EPOLLRDHUP seen yet when the short read happens).
  int fds[2];
  CO_ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd peer{fds[1]};
  CO_ASSERT_EQ(::write(peer.get(), "hello", 5), 5);
  ::shutdown(peer.get(), SHUT_WR);
  IOStream stream{UniqueFd(fds[0])};
  EXPECT_EQ(co_await stream.read_bytes(100, true), "hello");
  bool closed = false;
  try {
    co_await stream.read_bytes(1);
  } catch (const StreamClosedError&) {
    closed = true;
  }
  EXPECT_TRUE(closed);
}

SQUALL_ASYNC_TEST(SocketStreamTest, AWriteTheKernelTakesWholeAllocatesNothing) {
  Ends ends = UnixTransport::make();
  co_await ends.writer->write("warm-up");  // the shared ready future is made once per thread
  tls_allocations = 0;
  auto written = ends.writer->write(std::string_view("ping"));  // short: no string allocation either
  long counted = std::exchange(tls_allocations, -1);
  EXPECT_TRUE(written.done());
  EXPECT_EQ(counted, 0);  // no write queue, no future
  EXPECT_FALSE(ends.writer->writing());
  EXPECT_EQ(co_await ends.reader->read_bytes(11), "warm-upping");
}

SQUALL_ASYNC_TEST(SocketStreamTest, AWrittenViewTheKernelTakesWholeIsNotCopied) {
  Ends ends = UnixTransport::make();
  co_await ends.writer->write("warm-up");
  const std::string block(16 * 1024, 'v');  // past the short-string buffer: a copy would allocate
  tls_allocations = 0;
  auto written = ends.writer->write(std::string_view(block));
  long counted = std::exchange(tls_allocations, -1);
  EXPECT_TRUE(written.done());
  EXPECT_EQ(counted, 0);
  std::string got = co_await ends.reader->read_bytes(7 + block.size());
  EXPECT_TRUE(got == "warm-up" + block);
}

SQUALL_ASYNC_TEST(SocketStreamTest, ReadBytesBeyondTheBufferLimitStillFails) {
  // A large read_bytes reads straight into its result, but only within
  // max_buffer_size: past it, it fails as Tornado's does.
  int fds[2];
  CO_ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  IOStream reader{UniqueFd(fds[0]), StreamOptions{.max_buffer_size = 100 * 1024}};
  IOStream writer{UniqueFd(fds[1])};
  auto sent = writer.write(std::string(150 * 1024, 'x'));
  bool closed = false;
  try {
    co_await reader.read_bytes(150 * 1024);
  } catch (const StreamClosedError& e) {
    try {
      std::rethrow_exception(e.real_error());
    } catch (const UnsatisfiableReadError&) {
      closed = true;
    }
  }
  EXPECT_TRUE(closed);
  writer.close();
}

// Regression guard for the idle-connection budget (bench/README-net.md:
// at most 1 KiB per idle connection, all included): the stream object.
TEST(StreamSizeTest, AStreamObjectStaysSmall) {
  EXPECT_LE(sizeof(IOStream), 192u);
  EXPECT_LE(sizeof(PipeIOStream), 192u);
}

}  // namespace
}  // namespace squall::net
