// Socket address helpers shared by the net layer's sources (not installed).
#pragma once

#include <sys/socket.h>

#include <string>

namespace squall::net {

/// "127.0.0.1:80", "[::1]:80", or a unix socket's path.
std::string format_sockaddr(const sockaddr* addr, socklen_t len);

}  // namespace squall::net
