#include "squall/core/queues.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "squall/core/gen.hpp"  // sleep() and moment(), for the guide's examples only
#include "../support/after.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

#include "../support/counting_new.hpp"

namespace squall {
namespace {

// Every test runs on a virtual clock: timeouts are instant and exact.
class QueueTest : public testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }
};

class QueueBasicTest : public QueueTest {};
class QueueGetTest : public QueueTest {};
class QueuePutTest : public QueueTest {};
class QueueJoinTest : public QueueTest {};
class PriorityQueueTest : public QueueTest {};
class LifoQueueTest : public QueueTest {};
class QueueShutdownTest : public QueueTest {};
class QueueItemTest : public QueueTest {};
class QueueLifetimeTest : public QueueTest {};
class QueueExampleTest : public QueueTest {};

// The tests wait with after() rather than gen.hpp's sleep(), so they rest
// on the core loop alone; only the guide's examples at the end use gen.hpp.
using testing::after;

// A move-only item that counts live instances, so tests can prove items are
// neither leaked nor destroyed early.
class Counted {
 public:
  Counted(int value, int& live) : value_(value), live_(&live) { ++*live_; }
  Counted(Counted&& o) noexcept : value_(o.value_), live_(o.live_) { ++*live_; }
  Counted& operator=(Counted&&) = delete;
  ~Counted() { --*live_; }
  int value() const { return value_; }

 private:
  int value_;
  int* live_;
};

// A copyable item that counts copies, to prove the queue only moves.
struct CopyCounted {
  explicit CopyCounted(int v, int& copies) : value(v), copies(&copies) {}
  CopyCounted(const CopyCounted& o) : value(o.value), copies(o.copies) { ++*copies; }
  CopyCounted(CopyCounted&& o) noexcept = default;
  CopyCounted& operator=(const CopyCounted&) = delete;
  CopyCounted& operator=(CopyCounted&&) = delete;
  int value;
  int* copies;
};

// --- basics -------------------------------------------------------------------------

TEST_F(QueueBasicTest, ReportsItsSizeAndWhetherItIsFull) {
  Queue<int> q(2);
  EXPECT_EQ(q.maxsize(), 2u);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  q.put_nowait(1);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_FALSE(q.empty());
  EXPECT_FALSE(q.full());
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  EXPECT_EQ(q.qsize(), 2u);
}

TEST_F(QueueBasicTest, MaxsizeZeroIsUnbounded) {
  Queue<int> q;
  EXPECT_EQ(q.maxsize(), 0u);
  for (int i = 0; i < 10000; ++i) q.put_nowait(i);
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.qsize(), 10000u);
  for (int i = 0; i < 10000; ++i) EXPECT_EQ(q.get_nowait(), i);
}

TEST_F(QueueBasicTest, ItemsComeOutInFifoOrderAcrossGrowth) {
  Queue<int> q;
  int next_in = 0;
  int next_out = 0;
  // Interleave so the ring wraps around before it grows.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 7; ++i) q.put_nowait(next_in++);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(q.get_nowait(), next_out++);
  }
  while (!q.empty()) EXPECT_EQ(q.get_nowait(), next_out++);
  EXPECT_EQ(next_out, next_in);
}

SQUALL_ASYNC_TEST(QueueBasicTest, PutAndGetWithoutWaitingDoNotAllocate) {
  Queue<int> q(4);
  q.put_nowait(0);  // the ring's first allocation
  (void)q.get_nowait();
  tls_allocations = 0;
  long sum = 0;
  for (int i = 0; i < 100; ++i) {
    co_await q.put(i);
    q.put_nowait(i);
    sum += co_await q.get();
    sum += q.get_nowait();
    q.put_nowait(i);
    sum += (co_await q.next()).value_or(-1000);
  }
  long counted = std::exchange(tls_allocations, -1);
  EXPECT_EQ(counted, 0);
  EXPECT_EQ(sum, 3 * 4950);
  // The counter does see allocations: a get that must wait makes a Future.
  tls_allocations = 0;
  { auto waiting = q.get(); }
  EXPECT_GT(std::exchange(tls_allocations, -1), 0);
}

// --- get ------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(QueueGetTest, GetIsReadyAtOnceWhenAnItemWaits) {
  Queue<int> q;
  q.put_nowait(0);
  auto got = q.get();
  EXPECT_TRUE(got.done());
  EXPECT_EQ(co_await got, 0);
}

TEST_F(QueueGetTest, GetNowaitOnAnEmptyQueueThrowsQueueEmpty) {
  Queue<int> q;
  EXPECT_THROW(q.get_nowait(), QueueEmpty);
  q.put_nowait(3);
  EXPECT_EQ(q.get_nowait(), 3);
  EXPECT_THROW(q.get_nowait(), QueueEmpty);
}

// Tornado's test_get_with_putters.
SQUALL_ASYNC_TEST(QueueGetTest, GetAdmitsTheOldestWaitingPutter) {
  Queue<int> q(1);
  q.put_nowait(0);
  Future<void> put = q.put(1);
  EXPECT_FALSE(put.done());
  EXPECT_EQ(co_await q.get(), 0);
  EXPECT_TRUE(put.done());
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(co_await q.get(), 1);
}

// Tornado's test_blocking_get_wait.
SQUALL_ASYNC_TEST(QueueGetTest, GetWaitsUntilAnItemIsPut) {
  Queue<int> q;
  io_loop().call_later(10ms, [&q] { q.put_nowait(0); });
  io_loop().call_later(20ms, [&q] { q.put_nowait(1); });
  TimePoint start = io_loop().time();
  EXPECT_EQ(co_await q.get(), 0);
  EXPECT_EQ(io_loop().time() - start, 10ms);
  EXPECT_EQ(co_await q.get(), 1);
  EXPECT_EQ(io_loop().time() - start, 20ms);
}

// Tornado's test_get_timeout.
SQUALL_ASYNC_TEST(QueueGetTest, GetTimesOutWithoutTakingALaterItem) {
  Queue<int> q;
  TimePoint start = io_loop().time();
  bool timed_out = false;
  try {
    (void)co_await q.get(10ms);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(io_loop().time() - start, 10ms);
  q.put_nowait(0);
  EXPECT_EQ(q.qsize(), 1u);  // the timed-out getter is gone
  EXPECT_EQ(co_await q.get(), 0);
}

SQUALL_ASYNC_TEST(QueueGetTest, GetWithADeadlineTimesOutThere) {
  Queue<int> q;
  TimePoint deadline = io_loop().time() + 3s;
  Future<int> got = q.get(deadline);
  co_await after(3s);
  EXPECT_THROW(got.result(), TimeoutError);
}

// Tornado's test_get_timeout_preempted.
SQUALL_ASYNC_TEST(QueueGetTest, GetServedBeforeItsTimeoutSucceeds) {
  Queue<int> q;
  io_loop().call_later(10ms, [&q] { q.put_nowait(7); });
  EXPECT_EQ(co_await q.get(1s), 7);
  co_await after(2s);  // the timer is gone: nothing fires
}

// Tornado's test_get_clears_timed_out_getters.
SQUALL_ASYNC_TEST(QueueGetTest, TimedOutGettersAreSkippedByPut) {
  Queue<int> q;
  std::vector<Future<int>> timed;
  for (int i = 0; i < 10; ++i) timed.push_back(q.get(10ms));
  Future<int> last = q.get();
  co_await after(20ms);
  EXPECT_FALSE(last.done());
  q.put_nowait(5);
  EXPECT_TRUE(last.done());
  EXPECT_EQ(last.result(), 5);
  for (auto& f : timed) EXPECT_THROW(f.result(), TimeoutError);
}

Future<void> get_and_record(Queue<int>& q, std::vector<std::pair<int, int>>& got, int id) {
  int item = co_await q.get();
  got.emplace_back(id, item);
}

SQUALL_ASYNC_TEST(QueueGetTest, ServesAThousandWaitingGettersInFifoOrder) {
  Queue<int> q;
  std::vector<std::pair<int, int>> got;
  std::vector<Future<void>> getters;
  for (int i = 0; i < 1000; ++i) getters.push_back(get_and_record(q, got, i));
  for (int i = 0; i < 1000; ++i) q.put_nowait(i * 10);
  CO_ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(got[i], std::make_pair(i, i * 10));
  EXPECT_TRUE(q.empty());
  for (auto& g : getters) co_await g;
}

SQUALL_ASYNC_TEST(QueueGetTest, CancelledGetNeverReceivesAnItem) {
  Queue<int> q;
  Future<int> cancelled = q.get();
  Future<int> next = q.get();
  cancelled.cancel();
  q.put_nowait(1);
  EXPECT_TRUE(cancelled.cancelled());
  EXPECT_EQ(co_await next, 1);
}

SQUALL_ASYNC_TEST(QueueGetTest, DroppedGetDoesNotSwallowAnItem) {
  Queue<int> q;
  { auto dropped = q.get(); }
  q.put_nowait(1);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(co_await q.get(), 1);
}

Future<int> get_expecting_cancel(Queue<int>& q, bool& saw_cancel) {
  try {
    co_return co_await q.get();
  } catch (const CancelledError&) {
    saw_cancel = true;
    throw;
  }
}

SQUALL_ASYNC_TEST(QueueGetTest, CancellingTheGettingCoroutineWithdrawsItsGet) {
  Queue<int> q;
  bool saw_cancel = false;
  auto getter = get_expecting_cancel(q, saw_cancel);
  getter.cancel();
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(getter.cancelled());
  q.put_nowait(4);
  EXPECT_EQ(q.qsize(), 1u);
  co_return;
}

// --- put ------------------------------------------------------------------------------

// Tornado's test_blocking_put.
SQUALL_ASYNC_TEST(QueuePutTest, PutIsReadyAtOnceWhileThereIsRoom) {
  Queue<int> q(1);
  auto put = q.put(0);
  EXPECT_TRUE(put.done());
  co_await put;
  EXPECT_EQ(q.get_nowait(), 0);
}

TEST_F(QueuePutTest, PutNowaitOnAFullQueueThrowsQueueFullAndKeepsTheItem) {
  Queue<std::unique_ptr<int>> q(1);
  q.put_nowait(std::make_unique<int>(1));
  auto item = std::make_unique<int>(2);
  EXPECT_THROW(q.put_nowait(std::move(item)), QueueFull);
  ASSERT_TRUE(item);
  EXPECT_EQ(*item, 2);
}

// Tornado's test_put_with_getters and test_nonblocking_put_with_getters.
SQUALL_ASYNC_TEST(QueuePutTest, PutHandsTheItemToAWaitingGetter) {
  Queue<int> q;
  Future<int> g0 = q.get();
  Future<int> g1 = q.get();
  co_await q.put(0);
  EXPECT_EQ(g0.result(), 0);
  q.put_nowait(1);
  EXPECT_EQ(g1.result(), 1);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.unfinished_tasks(), 2u);
}

SQUALL_ASYNC_TEST(QueuePutTest, BoundedQueueHandsAPutToAWaitingGetter) {
  // Getters only wait on an empty queue, so a bounded queue with getters
  // always has room: a put to a maxsize 1 queue goes straight to the getter.
  Queue<int> q(1);
  Future<int> g = q.get();
  q.put_nowait(1);
  EXPECT_EQ(g.result(), 1);
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  co_return;
}

// Tornado's test_blocking_put_wait.
SQUALL_ASYNC_TEST(QueuePutTest, PutWaitsForRoom) {
  Queue<int> q(1);
  q.put_nowait(0);
  io_loop().call_later(10ms, [&q] { EXPECT_EQ(q.get_nowait(), 0); });
  io_loop().call_later(20ms, [&q] { EXPECT_EQ(q.get_nowait(), 1); });
  TimePoint start = io_loop().time();
  co_await q.put(1);
  EXPECT_EQ(io_loop().time() - start, 10ms);
  co_await q.put(2);
  EXPECT_EQ(io_loop().time() - start, 20ms);
  EXPECT_EQ(q.get_nowait(), 2);
}

// Tornado's test_put_timeout.
SQUALL_ASYNC_TEST(QueuePutTest, PutTimesOutAndDestroysItsItem) {
  int live = 0;
  {
    Queue<Counted> q(1);
    q.put_nowait(Counted(0, live));
    bool timed_out = false;
    try {
      co_await q.put(Counted(1, live), 10ms);
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(live, 1);  // the waiting item died with its put
    EXPECT_EQ(q.get_nowait().value(), 0);
    EXPECT_TRUE(q.empty());
  }
  EXPECT_EQ(live, 0);
}

// Tornado's test_put_timeout_preempted.
SQUALL_ASYNC_TEST(QueuePutTest, PutServedBeforeItsTimeoutSucceeds) {
  Queue<int> q(1);
  q.put_nowait(0);
  io_loop().call_later(10ms, [&q] { q.get_nowait(); });
  co_await q.put(1, 1s);
  co_await after(2s);  // the timer is gone: nothing fires
  EXPECT_EQ(q.get_nowait(), 1);
}

// Tornado's test_put_clears_timed_out_putters.
SQUALL_ASYNC_TEST(QueuePutTest, TimedOutPuttersAreSkippedByGet) {
  Queue<int> q(1);
  std::vector<Future<void>> putters;
  for (int i = 0; i < 10; ++i) putters.push_back(q.put(i, 10ms));  // the first fits
  Future<void> last = q.put(10);
  co_await after(20ms);
  EXPECT_FALSE(last.done());
  EXPECT_TRUE(putters[0].done());
  EXPECT_EQ(co_await q.get(), 0);
  EXPECT_TRUE(last.done());
  EXPECT_EQ(co_await q.get(), 10);
  for (std::size_t i = 1; i < putters.size(); ++i) EXPECT_THROW(putters[i].result(), TimeoutError);
}

SQUALL_ASYNC_TEST(QueuePutTest, DroppedPutStillPutsItsItemWhenThereIsRoom) {
  Queue<int> q(1);
  q.put_nowait(0);
  { auto dropped = q.put(1); }  // as in Tornado, the put goes on
  EXPECT_EQ(co_await q.get(), 0);
  EXPECT_EQ(co_await q.get(), 1);
}

SQUALL_ASYNC_TEST(QueuePutTest, CancelledPutLeavesAndDestroysItsItem) {
  int live = 0;
  Queue<Counted> q(1);
  q.put_nowait(Counted(0, live));
  Future<void> put = q.put(Counted(1, live));
  EXPECT_EQ(live, 2);
  put.cancel();
  EXPECT_EQ(live, 1);
  EXPECT_EQ((co_await q.get()).value(), 0);
  EXPECT_TRUE(q.empty());
}

Future<void> produce(Queue<int>& q, int n, std::vector<std::string>& log) {
  for (int i = 0; i < n; ++i) {
    co_await q.put(i);
    log.push_back("put " + std::to_string(i));
  }
}

Future<void> consume_slowly(Queue<int>& q, int n, Duration each, std::vector<std::string>& log,
                            std::size_t& max_qsize) {
  for (int i = 0; i < n; ++i) {
    co_await after(each);
    max_qsize = std::max(max_qsize, q.qsize());
    int item = co_await q.get();
    log.push_back("got " + std::to_string(item));
  }
}

SQUALL_ASYNC_TEST(QueuePutTest, ProducerBlocksOnAFullQueueUntilTheConsumerMakesRoom) {
  Queue<int> q(2);
  std::vector<std::string> log;
  std::size_t max_qsize = 0;
  TimePoint start = io_loop().time();
  auto producer = produce(q, 5, log);
  // Two fit; the third put waits.
  EXPECT_EQ(log, (std::vector<std::string>{"put 0", "put 1"}));
  auto consumer = consume_slowly(q, 5, 10ms, log, max_qsize);
  co_await producer;
  co_await consumer;
  EXPECT_EQ(log, (std::vector<std::string>{"put 0", "put 1", "put 2", "got 0", "put 3", "got 1", "put 4", "got 2",
                                           "got 3", "got 4"}));
  EXPECT_EQ(max_qsize, 2u);
  EXPECT_EQ(io_loop().time() - start, 50ms);
}

Future<void> consume_into(Queue<int>& q, int n, std::vector<std::string>& log) {
  for (int i = 0; i < n; ++i) {
    int item = co_await q.get();
    log.push_back("got " + std::to_string(item));
  }
}

Future<void> produce_slowly(Queue<int>& q, int n, Duration each, std::vector<std::string>& log) {
  for (int i = 0; i < n; ++i) {
    co_await after(each);
    log.push_back("put " + std::to_string(i));
    co_await q.put(i);
  }
}

SQUALL_ASYNC_TEST(QueuePutTest, ConsumerBlocksOnAnEmptyQueueUntilTheProducerPuts) {
  Queue<int> q;
  std::vector<std::string> log;
  TimePoint start = io_loop().time();
  auto consumer = consume_into(q, 3, log);
  EXPECT_TRUE(log.empty());
  auto producer = produce_slowly(q, 3, 10ms, log);
  co_await consumer;
  co_await producer;
  // Each put resumes the waiting consumer at once.
  EXPECT_EQ(log, (std::vector<std::string>{"put 0", "got 0", "put 1", "got 1", "put 2", "got 2"}));
  EXPECT_EQ(io_loop().time() - start, 30ms);
}

// --- join / task_done ------------------------------------------------------------------

TEST_F(QueueJoinTest, TaskDoneCalledTooOftenThrows) {
  Queue<int> q;
  EXPECT_THROW(q.task_done(), InvalidStateError);
  q.put_nowait(1);
  q.get_nowait();
  q.task_done();
  EXPECT_THROW(q.task_done(), InvalidStateError);
}

Future<void> sum_worker(Queue<int>& q, int& accumulator, int seed) {
  for (;;) {
    int item = co_await q.get();
    accumulator += item;
    q.task_done();
    co_await after(std::chrono::milliseconds((item * 7 + seed) % 10));
  }
}

// Tornado's test_task_done: two coroutines share the work; join() returns
// when every item is done. The workers never end: they are abandoned with
// the queue when the test returns.
SQUALL_ASYNC_TEST(QueueJoinTest, JoinWaitsUntilEveryItemIsDone) {
  Queue<int> q;
  for (int i = 0; i < 100; ++i) q.put_nowait(i);
  int accumulator = 0;
  auto w1 = sum_worker(q, accumulator, 1);
  auto w2 = sum_worker(q, accumulator, 2);
  co_await q.join();
  EXPECT_EQ(accumulator, 4950);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
}

// Tornado's test_task_done_delay.
SQUALL_ASYNC_TEST(QueueJoinTest, JoinWaitsForTaskDoneNotForGet) {
  Queue<int> q;
  q.put_nowait(0);
  Future<void> join = q.join();
  EXPECT_FALSE(join.done());
  q.get_nowait();
  EXPECT_FALSE(join.done());
  q.task_done();
  EXPECT_TRUE(join.done());
  co_await join;
}

// Tornado's test_join_empty_queue.
SQUALL_ASYNC_TEST(QueueJoinTest, JoinOnAQueueWithNothingUnfinishedIsReady) {
  Queue<int> q;
  auto join = q.join();
  EXPECT_TRUE(join.done());
  co_await join;
  q.put_nowait(1);
  q.get_nowait();
  q.task_done();
  co_await q.join();
}

// Tornado's test_join_timeout.
SQUALL_ASYNC_TEST(QueueJoinTest, JoinTimesOutWithTimeoutError) {
  Queue<int> q;
  q.put_nowait(0);
  bool timed_out = false;
  try {
    co_await q.join(10ms);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  Future<void> at_deadline = q.join(io_loop().time() + 1s);
  co_await after(1s);
  EXPECT_THROW(at_deadline.result(), TimeoutError);
}

// Tornado's ProducerConsumerTest: get() resumes the consumer, which calls
// task_done before the producer's next put.
Future<void> consume_forever(Queue<int>& q, std::vector<int>& history) {
  for (;;) {
    history.push_back(co_await q.get());
    q.task_done();
  }
}

Future<void> put_ten(Queue<int>& q) {
  for (int item = 0; item < 10; ++item) co_await q.put(item);
}

SQUALL_ASYNC_TEST(QueueJoinTest, ProducerConsumerSeesEveryItemInOrder) {
  Queue<int> q(3);
  std::vector<int> history;
  auto consumer = consume_forever(q, history);
  co_await put_ten(q);
  co_await q.join();
  std::vector<int> expected(10);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(history, expected);
}

// --- PriorityQueue and LifoQueue -------------------------------------------------------------

// Tornado's PriorityQueueJoinTest.test_order.
SQUALL_ASYNC_TEST(PriorityQueueTest, GetReturnsTheLowestItemFirst) {
  PriorityQueue<std::pair<int, std::string>> q(2);
  q.put_nowait(std::make_pair(1, std::string("a")));
  q.put_nowait(std::make_pair(0, std::string("b")));
  EXPECT_TRUE(q.full());
  Future<void> put_c = q.put({3, "c"});
  Future<void> put_d = q.put({2, "d"});
  EXPECT_EQ(q.get_nowait(), std::make_pair(0, std::string("b")));
  EXPECT_EQ(co_await q.get(), std::make_pair(1, std::string("a")));
  EXPECT_EQ(q.get_nowait(), std::make_pair(2, std::string("d")));
  EXPECT_EQ(co_await q.get(), std::make_pair(3, std::string("c")));
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(put_c.done());
  EXPECT_TRUE(put_d.done());
}

TEST_F(PriorityQueueTest, CompareDecidesWhichItemComesFirst) {
  PriorityQueue<int, std::greater<int>> q;
  for (int v : {3, 9, 1, 7}) q.put_nowait(v);
  std::vector<int> out;
  while (!q.empty()) out.push_back(q.get_nowait());
  EXPECT_EQ(out, (std::vector<int>{9, 7, 3, 1}));
}

struct ByPointee {
  bool operator()(const std::unique_ptr<int>& a, const std::unique_ptr<int>& b) const { return *a < *b; }
};

TEST_F(PriorityQueueTest, MoveOnlyItemsWork) {
  PriorityQueue<std::unique_ptr<int>, ByPointee> q;
  for (int v : {5, 2, 8, 1}) q.put_nowait(std::make_unique<int>(v));
  std::vector<int> out;
  while (!q.empty()) out.push_back(*q.get_nowait());
  EXPECT_EQ(out, (std::vector<int>{1, 2, 5, 8}));
}

// Tornado's LifoQueueJoinTest.test_order.
SQUALL_ASYNC_TEST(LifoQueueTest, GetReturnsTheNewestItemFirst) {
  LifoQueue<int> q(2);
  q.put_nowait(1);
  q.put_nowait(0);
  EXPECT_TRUE(q.full());
  Future<void> put_3 = q.put(3);
  Future<void> put_2 = q.put(2);
  EXPECT_EQ(q.get_nowait(), 3);
  EXPECT_EQ(co_await q.get(), 2);
  EXPECT_EQ(q.get_nowait(), 0);
  EXPECT_EQ(co_await q.get(), 1);
  EXPECT_TRUE(q.empty());
}

// --- shutdown and the consuming loop ---------------------------------------------------------

Future<void> drain_with_next(Queue<int>& q, std::vector<int>& seen) {
  while (auto item = co_await q.next()) {
    seen.push_back(*item);
    q.task_done();
  }
}

SQUALL_ASYNC_TEST(QueueShutdownTest, NextEndsTheLoopOnceShutDownAndDrained) {
  Queue<int> q;
  for (int i = 0; i < 3; ++i) q.put_nowait(i);
  q.shutdown();
  std::vector<int> seen;
  co_await drain_with_next(q, seen);  // finishes without waiting
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
  co_await q.join();
}

SQUALL_ASYNC_TEST(QueueShutdownTest, WaitingConsumersLeaveTheirLoopAtShutdown) {
  Queue<int> q;
  std::vector<int> seen;
  auto c1 = drain_with_next(q, seen);
  auto c2 = drain_with_next(q, seen);
  q.put_nowait(1);
  q.put_nowait(2);
  EXPECT_FALSE(c1.done());
  q.shutdown();
  EXPECT_TRUE(c1.done());
  EXPECT_TRUE(c2.done());
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  co_await c1;
  co_await c2;
}

SQUALL_ASYNC_TEST(QueueShutdownTest, GetThrowsQueueShutDownOnceShutDownAndEmpty) {
  Queue<int> q;
  Future<int> waiting = q.get();
  q.put_nowait(1);
  EXPECT_EQ(waiting.result(), 1);
  q.put_nowait(2);
  Future<int> later = q.get();  // ready: takes 2
  Future<int> blocked = q.get();
  q.shutdown();
  EXPECT_EQ(later.result(), 2);
  EXPECT_THROW(blocked.result(), QueueShutDown);
  EXPECT_THROW(q.get_nowait(), QueueShutDown);
  bool threw = false;
  try {
    (void)co_await q.get();
  } catch (const QueueShutDown&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  EXPECT_FALSE(co_await q.next());
}

SQUALL_ASYNC_TEST(QueueShutdownTest, PutsFailAfterShutdownAndWaitingPutsFailAtIt) {
  int live = 0;
  Queue<Counted> q(1);
  q.put_nowait(Counted(0, live));
  Future<void> waiting = q.put(Counted(1, live));
  EXPECT_EQ(live, 2);
  q.shutdown();
  EXPECT_THROW(waiting.result(), QueueShutDown);
  EXPECT_EQ(live, 1);  // the waiting put's item was destroyed
  EXPECT_THROW(q.put_nowait(Counted(2, live)), QueueShutDown);
  bool threw = false;
  try {
    co_await q.put(Counted(3, live));
  } catch (const QueueShutDown&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  EXPECT_EQ(live, 1);
  EXPECT_EQ(q.get_nowait().value(), 0);  // what was in stays gettable
  EXPECT_TRUE(q.is_shut_down());
}

SQUALL_ASYNC_TEST(QueueShutdownTest, ImmediateShutdownDropsTheItemsAndReleasesJoin) {
  int live = 0;
  Queue<Counted> q;
  for (int i = 0; i < 3; ++i) q.put_nowait(Counted(i, live));
  (void)q.get_nowait();  // one taken out, not yet done
  Future<void> join = q.join();
  q.shutdown(true);
  EXPECT_EQ(live, 0);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(join.done());  // the one taken out is still unfinished
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  q.task_done();
  EXPECT_TRUE(join.done());
  co_await join;
}

// --- items ------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(QueueItemTest, MoveOnlyItemsPassThroughEveryPath) {
  Queue<std::unique_ptr<int>> q(1);
  // A getter waiting for an item.
  Future<std::unique_ptr<int>> waiting_get = q.get();
  co_await q.put(std::make_unique<int>(1));
  EXPECT_EQ(*waiting_get.result(), 1);
  // A putter waiting for room.
  q.put_nowait(std::make_unique<int>(2));
  Future<void> waiting_put = q.put(std::make_unique<int>(3));
  EXPECT_EQ(*q.get_nowait(), 2);
  EXPECT_TRUE(waiting_put.done());
  // Ready paths.
  EXPECT_EQ(*co_await q.get(), 3);
  co_await q.put(std::make_unique<int>(4));
  auto item = co_await q.next();
  EXPECT_EQ(**item, 4);
}

SQUALL_ASYNC_TEST(QueueItemTest, ItemsAreMovedNeverCopied) {
  int copies = 0;
  Queue<CopyCounted> q(1);
  Future<CopyCounted> waiting_get = q.get();
  co_await q.put(CopyCounted(1, copies));
  EXPECT_EQ(waiting_get.result().value, 1);
  q.put_nowait(CopyCounted(2, copies));
  Future<void> waiting_put = q.put(CopyCounted(3, copies));
  EXPECT_EQ(q.get_nowait().value, 2);
  EXPECT_EQ((co_await q.get()).value, 3);
  co_await q.put(CopyCounted(4, copies));
  EXPECT_EQ((co_await q.next())->value, 4);
  EXPECT_EQ(copies, 0);
}

SQUALL_ASYNC_TEST(QueueItemTest, NoItemLeaksOrDiesEarly) {
  int live = 0;
  {
    Queue<Counted> q(2);
    q.put_nowait(Counted(0, live));
    q.put_nowait(Counted(1, live));
    Future<void> waiting_put = q.put(Counted(2, live));
    Future<void> timed_put = q.put(Counted(3, live), 1ms);
    EXPECT_EQ(live, 4);
    co_await after(2ms);
    EXPECT_EQ(live, 3);  // the timed-out item is gone at once
    EXPECT_THROW(timed_put.result(), TimeoutError);
    EXPECT_EQ((co_await q.get()).value(), 0);
    EXPECT_EQ(live, 2);
    EXPECT_TRUE(waiting_put.done());
    Future<void> abandoned_put = q.put(Counted(4, live));
    EXPECT_EQ(live, 3);
  }  // the queue dies holding two items and a waiting put
  EXPECT_EQ(live, 0);
}

// --- lifetimes --------------------------------------------------------------------------

Future<void> wait_for_item_holding(Queue<int>& q, int& live) {
  Counted counted(0, live);
  (void)co_await q.get();
}

TEST_F(QueueLifetimeTest, DestroyingAQueueWithWaitersFreesTheirCoroutines) {
  int live = 0;
  std::vector<Future<void>> waiters;
  {
    Queue<int> q;
    for (int i = 0; i < 3; ++i) waiters.push_back(wait_for_item_holding(q, live));
    EXPECT_EQ(live, 3);
  }
  EXPECT_EQ(live, 0);
  for (auto& w : waiters) EXPECT_FALSE(w.done());
}

Future<void> own_queue_and_wait(Queue<int>*& out, int& got) {
  Queue<int> q;
  out = &q;
  got = co_await q.get();
}  // destroys the queue inside the put that resumed this coroutine

SQUALL_ASYNC_TEST(QueueLifetimeTest, PutSurvivesTheQueueBeingDestroyedByTheConsumerItResumes) {
  Queue<int>* q = nullptr;
  int got = 0;
  auto owner = own_queue_and_wait(q, got);
  q->put_nowait(42);
  EXPECT_EQ(got, 42);
  co_await owner;
}

Future<void> own_queue_and_join(Queue<int>*& out, int& joined) {
  Queue<int> q;
  out = &q;
  q.put_nowait(1);
  co_await q.join();
  ++joined;
}  // destroys the queue inside the task_done() that resumed this coroutine

SQUALL_ASYNC_TEST(QueueLifetimeTest, TaskDoneSurvivesTheQueueBeingDestroyedByAJoiner) {
  Queue<int>* q = nullptr;
  int joined = 0;
  auto owner = own_queue_and_join(q, joined);
  q->get_nowait();
  q->task_done();
  EXPECT_EQ(joined, 1);
  co_await owner;
}

}  // namespace
}  // namespace squall

// --- the examples of docs/guide/locks-and-queues.md ----------------------------------
// Written as an application would write them (outside namespace squall, with
// gen.hpp's sleep); the guide quotes them and the tests below run them.

namespace guide {

using namespace std::chrono_literals;

// Tornado's producer/consumer example (tornado.queues), with the lines it
// prints collected in `printed`.
struct ProducerConsumer {
  squall::Queue<int> q{2};
  std::vector<std::string> printed;

  squall::Future<void> consumer() {
    while (auto item = co_await q.next()) {  // std::nullopt once shut down and drained
      printed.push_back("Doing work on " + std::to_string(*item));
      co_await squall::sleep(10ms);
      q.task_done();
    }
  }

  squall::Future<void> producer() {
    for (int item = 0; item < 5; ++item) {
      co_await q.put(item);
      printed.push_back("Put " + std::to_string(item));
    }
  }

  squall::Future<void> main() {
    // Start the consumer without waiting (it runs until the shutdown).
    squall::IOLoop::current().spawn_callback([this] { return consumer(); });
    co_await producer();  // wait for the producer to put all tasks
    co_await q.join();    // wait for the consumer to finish them all
    printed.push_back("Done");
    q.shutdown();  // ends the consumer's loop
  }
};

// Jobs by priority: the lowest pair first, so priority 0 before 1.
std::vector<std::string> by_priority() {
  squall::PriorityQueue<std::pair<int, std::string>> jobs;
  jobs.put_nowait({1, "resize images"});
  jobs.put_nowait({0, "answer the health check"});
  jobs.put_nowait({2, "send the newsletter"});
  std::vector<std::string> order;
  while (!jobs.empty()) order.push_back(jobs.get_nowait().second);
  return order;  // health check, images, newsletter
}

// A consumer that waits at most 100 ms for each item.
squall::Future<int> sum_until_idle(squall::Queue<int>& q) {
  int sum = 0;
  try {
    for (;;) {
      sum += co_await q.get(100ms);
      q.task_done();
    }
  } catch (const squall::TimeoutError&) {
    co_return sum;  // nothing came for 100 ms
  }
}

}  // namespace guide

class QueuesGuideTest : public squall::testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }
};

SQUALL_ASYNC_TEST(QueuesGuideTest, TornadoProducerConsumerExampleRunsAsDocumented) {
  guide::ProducerConsumer example;
  squall::TimePoint start = io_loop().time();
  co_await example.main();
  EXPECT_EQ(example.printed, (std::vector<std::string>{"Put 0", "Put 1", "Put 2", "Doing work on 0", "Put 3",
                                                       "Doing work on 1", "Put 4", "Doing work on 2",
                                                       "Doing work on 3", "Doing work on 4", "Done"}));
  EXPECT_EQ(io_loop().time() - start, 50ms);
  // The last task_done() resumed main() (and this test) from inside the
  // consumer; let the consumer leave its loop before the example dies.
  co_await squall::moment();
  EXPECT_TRUE(example.q.is_shut_down());
}

TEST_F(QueuesGuideTest, PriorityQueueServesTheLowestPriorityFirst) {
  EXPECT_EQ(guide::by_priority(),
            (std::vector<std::string>{"answer the health check", "resize images", "send the newsletter"}));
}

SQUALL_ASYNC_TEST(QueuesGuideTest, ConsumerGivesUpAfterAnIdleTimeout) {
  squall::Queue<int> q;
  auto summing = guide::sum_until_idle(q);
  for (int i = 1; i <= 4; ++i) {
    co_await squall::sleep(50ms);
    q.put_nowait(i);
  }
  squall::TimePoint start = io_loop().time();
  EXPECT_EQ(co_await summing, 10);
  EXPECT_EQ(io_loop().time() - start, 100ms);
}
