#include "squall/core/unique_fd.hpp"

#include <unistd.h>

namespace squall {

void UniqueFd::reset(int fd) noexcept {
  int old = std::exchange(fd_, fd);
  // close() must not be retried on EINTR on Linux: the fd is already gone.
  if (old >= 0) ::close(old);
}

}  // namespace squall
