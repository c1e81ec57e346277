// SSLContext: a TLS configuration (OpenSSL's SSL_CTX) for servers and
// clients, built from Tornado-style ssl options. Immutable once built, so one
// context may serve every stream on every thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "squall/core/errors.hpp"

typedef struct ssl_ctx_st SSL_CTX;  // from <openssl/types.h>

namespace squall::net {

/// A TLS failure: a handshake alert, a certificate that does not verify
/// (the message says why, e.g. "certificate has expired" or "hostname
/// mismatch"), a bad key file.
class SSLError : public Error {
 public:
  using Error::Error;
};

/// Tornado's ssl_options, typed.
struct SSLOptions {
  std::string certfile{};    // PEM certificate chain (servers; clients for mutual TLS)
  std::string keyfile{};     // PEM private key for certfile (empty: in certfile)
  std::string ca_certs{};    // PEM CA bundle to verify the peer (empty: system default for clients)
  bool verify_peer = true; // clients: verify the server (servers: require client certificates)
  bool check_hostname = true;  // clients: the certificate must name the host
  std::vector<std::string> alpn_protocols{};  // e.g. {"http/1.1"}
};

class SSLContext {
 public:
  /// A server context: certfile/keyfile required; verify_peer asks clients
  /// for certificates signed by ca_certs.
  static std::shared_ptr<SSLContext> server(const SSLOptions& options);
  /// A client context: verifies servers against ca_certs (or the system
  /// store) unless verify_peer is false.
  static std::shared_ptr<SSLContext> client(const SSLOptions& options = {});

  ~SSLContext();
  SSLContext(const SSLContext&) = delete;
  SSLContext& operator=(const SSLContext&) = delete;

  SSL_CTX* native() const noexcept { return ctx_; }
  bool is_server() const noexcept { return server_; }
  bool check_hostname() const noexcept { return check_hostname_; }
  bool verify_peer() const noexcept { return verify_peer_; }

 private:
  SSLContext(SSL_CTX* ctx, bool server, const SSLOptions& options);
  SSL_CTX* ctx_;
  bool server_;
  bool check_hostname_;
  bool verify_peer_;
  std::string alpn_wire_;  // ALPN list in wire format, for the server callback
};

/// The text of OpenSSL's error queue (and clears it), for error messages.
std::string ssl_error_text();

}  // namespace squall::net
