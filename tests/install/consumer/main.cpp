// Runs a coroutine on an installed squall: a timer, a Future resolved by it,
// and run_sync returning the coroutine's result. Exits 0 only if the value
// came back right, so a broken install fails loudly.
#include <cstdio>
#include <utility>

#include <squall/squall.hpp>

using namespace std::chrono_literals;

namespace {

squall::Future<int> answer_later() {
  squall::Future<int> ready;
  squall::IOLoop::current().call_later(1ms, [ready]() mutable { ready.set_result(41); });
  int value = co_await std::move(ready);
  co_return value + 1;
}

}  // namespace

int main() {
  int result = squall::IOLoop::current().run_sync([] { return answer_later(); }, 5s);
  if (result != 42) {
    std::fprintf(stderr, "consumer: expected 42, got %d\n", result);
    return 1;
  }
  std::printf("consumer: ok\n");
  return 0;
}
