#include "squall/net/ssl_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace squall::net {

std::string ssl_error_text() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown TLS error" : text;
}

namespace {

[[noreturn]] void fail(const std::string& what) { throw SSLError(what + ": " + ssl_error_text()); }

std::string alpn_wire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) throw std::invalid_argument("ALPN protocol names are 1 to 255 bytes");
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  return wire;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
  const auto* wire = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  // The server's preference order wins (RFC 7301 section 3.2).
  if (SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(wire->data()),
                            static_cast<unsigned>(wire->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

SSLContext::SSLContext(SSL_CTX* ctx, bool server, const SSLOptions& options)
    : ctx_(ctx), server_(server), check_hostname_(options.check_hostname), verify_peer_(options.verify_peer) {
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  // Partial writes and retries from a moved buffer fit a stream that flushes
  // whatever it can and retries from its queue.
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  // A peer that closes without close_notify ends the stream like a FIN.
  SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  if (!options.alpn_protocols.empty()) {
    alpn_wire_ = alpn_wire(options.alpn_protocols);
    if (server_) {
      SSL_CTX_set_alpn_select_cb(ctx_, select_alpn, &alpn_wire_);
    } else {
      SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(alpn_wire_.data()),
                              static_cast<unsigned>(alpn_wire_.size()));
    }
  }
}

SSLContext::~SSLContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<SSLContext> SSLContext::server(const SSLOptions& options) {
  if (options.certfile.empty()) throw std::invalid_argument("a TLS server needs a certfile");
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (!raw) fail("SSL_CTX_new");
  std::shared_ptr<SSLContext> ctx(new SSLContext(raw, true, options));  // private constructor
  if (SSL_CTX_use_certificate_chain_file(raw, options.certfile.c_str()) != 1) fail("loading " + options.certfile);
  const std::string& key = options.keyfile.empty() ? options.certfile : options.keyfile;
  if (SSL_CTX_use_PrivateKey_file(raw, key.c_str(), SSL_FILETYPE_PEM) != 1) fail("loading " + key);
  if (SSL_CTX_check_private_key(raw) != 1) fail("the key does not match the certificate");
  if (!options.ca_certs.empty()) {
    if (SSL_CTX_load_verify_locations(raw, options.ca_certs.c_str(), nullptr) != 1) fail("loading " + options.ca_certs);
  }
  // No TLS 1.3 session tickets: squall clients do not resume sessions, and
  // an unread ticket makes a client's close() send RST instead of FIN.
  SSL_CTX_set_num_tickets(raw, 0);
  // Servers verify clients only when asked to (mutual TLS needs a CA).
  SSL_CTX_set_verify(raw, options.verify_peer && !options.ca_certs.empty()
                              ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                              : SSL_VERIFY_NONE,
                     nullptr);
  return ctx;
}

std::shared_ptr<SSLContext> SSLContext::client(const SSLOptions& options) {
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (!raw) fail("SSL_CTX_new");
  std::shared_ptr<SSLContext> ctx(new SSLContext(raw, false, options));  // private constructor
  if (!options.certfile.empty()) {
    if (SSL_CTX_use_certificate_chain_file(raw, options.certfile.c_str()) != 1) fail("loading " + options.certfile);
    const std::string& key = options.keyfile.empty() ? options.certfile : options.keyfile;
    if (SSL_CTX_use_PrivateKey_file(raw, key.c_str(), SSL_FILETYPE_PEM) != 1) fail("loading " + key);
  }
  if (options.verify_peer) {
    if (!options.ca_certs.empty()) {
      if (SSL_CTX_load_verify_locations(raw, options.ca_certs.c_str(), nullptr) != 1) {
        fail("loading " + options.ca_certs);
      }
    } else if (SSL_CTX_set_default_verify_paths(raw) != 1) {
      fail("loading the system CA store");
    }
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

}  // namespace squall::net
