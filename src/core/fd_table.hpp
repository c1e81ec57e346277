// FdTable: the loop's fd handlers, indexed by fd for O(1) dispatch and
// stored inline in pages of kPageSize entries (no allocation per fd: with
// 10,000 connections that is 10,000 fewer heap blocks, and entries never
// move, so an Entry& stays valid until its fd is removed). Each registration
// gets a generation that travels in epoll's user data, so an event for a
// removed (or closed and reused) fd is recognised as stale.
//
// A handler may remove itself (or re-register its fd) while it runs: the
// dispatcher moves the running handler out of its entry for the call
// (take_for_dispatch) and puts it back afterwards only if the registration
// is still the same (restore_after_dispatch); otherwise it is destroyed
// after it returned, never while it runs. Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "squall/core/ioloop.hpp"

namespace squall {

class FdTable {
 public:
  struct Entry {
    IOLoop::Handler handler;
    std::uint32_t events = 0;
    std::uint32_t generation = 0;  // 0: no handler registered
  };
  static constexpr std::size_t kPageSize = 256;

  /// Registers; returns the entry (stable address until removed).
  Entry& add(int fd, std::uint32_t events, IOLoop::Handler handler);
  /// Null if `fd` has no handler.
  Entry* find(int fd) noexcept {
    if (fd < 0) return nullptr;
    std::size_t page = static_cast<std::size_t>(fd) / kPageSize;
    if (page >= pages_.size() || !pages_[page]) return nullptr;
    Entry& e = (*pages_[page])[static_cast<std::size_t>(fd) % kPageSize];
    return e.generation != 0 ? &e : nullptr;
  }
  /// The handler for an epoll event's user data, or null if stale.
  Entry* find_live(std::uint64_t data) noexcept {
    Entry* e = find(static_cast<int>(data & 0xffffffffu));
    return e && e->generation == static_cast<std::uint32_t>(data >> 32) ? e : nullptr;
  }
  static std::uint64_t user_data(int fd, const Entry& e) noexcept {
    return (static_cast<std::uint64_t>(e.generation) << 32) | static_cast<std::uint32_t>(fd);
  }
  /// Destroys the handler (unless it is running: see the top of the file).
  void remove(int fd) noexcept;

  /// Moves the handler out for the call. Empty if it is running already
  /// (a nested loop dispatching the same fd).
  static IOLoop::Handler take_for_dispatch(Entry& e) noexcept { return std::move(e.handler); }
  /// Puts a handler back after its call, if `fd` still holds the same
  /// registration; otherwise `handler` is destroyed here.
  void restore_after_dispatch(int fd, std::uint32_t generation, IOLoop::Handler& handler) noexcept;

  /// Every registered fd (for close(all_fds)).
  std::vector<int> fds() const;
  /// Drops every handler.
  void clear() noexcept;

 private:
  using Page = std::array<Entry, kPageSize>;
  std::vector<std::unique_ptr<Page>> pages_;
  std::uint32_t next_generation_ = 1;
};

}  // namespace squall
