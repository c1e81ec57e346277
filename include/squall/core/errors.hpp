// Named exception types of the core layer. Any thread may construct and throw
// them; they carry no loop state.
#pragma once

#include <stdexcept>
#include <string>

namespace squall {

/// Base of every squall error, so `catch (const squall::Error&)` catches ours.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An operation outlived its deadline (`with_timeout`, `run_sync`, timeouts
/// of locks, queues, streams and fetches).
class TimeoutError : public Error {
 public:
  explicit TimeoutError(const std::string& what = "Timeout") : Error(what) {}
};

/// Thrown at a coroutine's current `co_await` when its Future is cancelled,
/// and stored in a plain Future that was cancelled. Catch it to clean up, then
/// rethrow: swallowing it un-cancels the coroutine (asyncio's semantics).
class CancelledError : public Error {
 public:
  explicit CancelledError(const std::string& what = "Cancelled") : Error(what) {}
};

/// A Future was used in a state that does not allow the call: reading the
/// result of a pending future, setting a result twice.
class InvalidStateError : public Error {
 public:
  using Error::Error;
};

}  // namespace squall
