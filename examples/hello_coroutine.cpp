// The README's first example: a coroutine that waits on a timer, run to
// completion with run_sync. `--smoke` shortens the wait.
#include <cstdio>
#include <string>
#include <string_view>

#include "squall/squall.hpp"

using namespace std::chrono_literals;

squall::Future<std::string> greet(std::string name, squall::Duration delay) {
  co_await squall::sleep(delay);  // the loop runs other work meanwhile
  co_return "Hello, " + name + "!";
}

int main(int argc, char** argv) {
  bool smoke = argc > 1 && std::string_view(argv[1]) == "--smoke";
  squall::Duration delay = smoke ? squall::Duration(1ms) : squall::Duration(500ms);
  std::string text = squall::IOLoop::current().run_sync([&] { return greet("squall", delay); });
  std::printf("%s\n", text.c_str());
}
