// FdTable: the loop's fd handlers, indexed by fd for O(1) dispatch. Each
// registration gets a generation that travels in epoll's user data, so an
// event for a removed (or closed and reused) fd is recognised as stale.
// Handlers removed while dispatching are parked until dispatch ends, because
// the running handler may be the one removed. Loop thread only.
#pragma once

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
    std::uint32_t generation = 0;
  };

  /// Registers; returns the entry (stable address until removed).
  Entry& add(int fd, std::uint32_t events, IOLoop::Handler handler);
  /// Null if `fd` has no handler.
  Entry* find(int fd) noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < entries_.size() ? entries_[fd].get() : nullptr;
  }
  /// The handler for an epoll event's user data, or null if stale.
  Entry* find_live(std::uint64_t data) noexcept {
    Entry* e = find(static_cast<int>(data & 0xffffffffu));
    return e && e->generation == static_cast<std::uint32_t>(data >> 32) ? e : nullptr;
  }
  static std::uint64_t user_data(int fd, const Entry& e) noexcept {
    return (static_cast<std::uint64_t>(e.generation) << 32) | static_cast<std::uint32_t>(fd);
  }
  void remove(int fd) noexcept;

  void begin_dispatch() noexcept { ++dispatching_; }
  void end_dispatch() noexcept;

  /// Every registered fd (for close(all_fds)).
  std::vector<int> fds() const;
  /// Drops every handler.
  void clear() noexcept;

 private:
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<std::unique_ptr<Entry>> parked_;
  std::uint32_t next_generation_ = 1;
  int dispatching_ = 0;
};

}  // namespace squall
