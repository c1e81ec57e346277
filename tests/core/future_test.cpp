#include "squall/core/future.hpp"

#include <gtest/gtest.h>

#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall {
namespace {

class FutureTest : public testing::AsyncTest {};

TEST_F(FutureTest, SetResultThenReadIt) {
  Future<int> f;
  EXPECT_FALSE(f.done());
  f.set_result(7);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), 7);
}

Future<int> add_one(Future<int> f) { co_return co_await f + 1; }

SQUALL_ASYNC_TEST(FutureTest, CoroutineAwaitsAFutureResolvedLater) {
  Future<int> f;
  auto g = add_one(f);
  EXPECT_FALSE(g.done());
  io_loop().add_callback([f]() mutable { f.set_result(41); });
  int v = co_await g;
  EXPECT_EQ(v, 42);
}

}  // namespace
}  // namespace squall
