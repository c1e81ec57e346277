// after(d): a Future resolved after `d` of loop time, built on call_later
// alone, for tests that must rest on the core loop without gen.hpp.
#pragma once

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"

namespace squall::testing {

inline Future<void> after(Duration d) {
  Future<void> f;
  IOLoop::current().call_later(d, [f]() mutable {
    if (!f.done()) f.set_result();
  });
  return f;
}

}  // namespace squall::testing
