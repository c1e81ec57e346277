#include "net/sockaddr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

namespace squall::net {

std::string format_sockaddr(const sockaddr* addr, socklen_t len) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (addr->sa_family) {
    case AF_INET: {
      auto* a = reinterpret_cast<const sockaddr_in*>(addr);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      return std::string(text) + ":" + std::to_string(ntohs(a->sin_port));
    }
    case AF_INET6: {
      auto* a = reinterpret_cast<const sockaddr_in6*>(addr);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      return "[" + std::string(text) + "]:" + std::to_string(ntohs(a->sin6_port));
    }
    case AF_UNIX: {
      auto* a = reinterpret_cast<const sockaddr_un*>(addr);
      if (len <= sizeof(sa_family_t)) return {};
      return std::string(a->sun_path);
    }
    default:
      return {};
  }
}

}  // namespace squall::net
