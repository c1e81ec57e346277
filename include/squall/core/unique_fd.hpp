// UniqueFd: the one owner of a file descriptor; closes it exactly once.
// Not thread-affine; move it like a unique_ptr.
#pragma once

#include <utility>

namespace squall {

/// Move-only owner of a POSIX file descriptor. A negative value means empty.
///
///   UniqueFd fd{::eventfd(0, EFD_CLOEXEC)};
///   if (!fd) throw std::system_error(errno, std::system_category());
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  /// Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }

  /// Closes the held descriptor (if any) and takes `fd`.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace squall
