// Certificates made fresh by the tests: a CA, server certificates it signed
// (valid, expired, for another host), and a self-signed one, written as PEM
// files into a temporary directory that is removed afterwards.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace squall::testing {

class TestCerts {
 public:
  struct Pair {
    std::string cert;  // PEM file path
    std::string key;   // PEM file path
  };

  TestCerts() {
    char tmpl[] = "/tmp/squall-certs-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    auto ca_key = make_key();
    auto ca = make_cert(ca_key.get(), "squall test CA", {}, ca_key.get(), nullptr, 0, 365, true);
    ca_ = write("ca", ca.get(), ca_key.get());
    auto key = make_key();
    std::vector<std::string> local = {"DNS:localhost", "IP:127.0.0.1", "IP:::1"};
    server_ = write("server", make_cert(key.get(), "localhost", local, ca_key.get(), ca.get(), 0, 30, false).get(), key.get());
    expired_ = write("expired", make_cert(key.get(), "localhost", local, ca_key.get(), ca.get(), -30, -1, false).get(), key.get());
    other_host_ = write("other", make_cert(key.get(), "example.test", {"DNS:example.test"}, ca_key.get(), ca.get(), 0, 30, false).get(), key.get());
    auto self_key = make_key();
    self_signed_ = write("self", make_cert(self_key.get(), "localhost", local, self_key.get(), nullptr, 0, 30, false).get(), self_key.get());
  }
  ~TestCerts() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  const std::string& ca_file() const { return ca_.cert; }
  /// For "localhost", 127.0.0.1 and ::1, signed by the CA.
  const Pair& server() const { return server_; }
  const Pair& expired() const { return expired_; }
  /// Signed by the CA, but for example.test.
  const Pair& other_host() const { return other_host_; }
  /// For localhost, signed by itself.
  const Pair& self_signed() const { return self_signed_; }

 private:
  using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
  using Cert = std::unique_ptr<X509, decltype(&X509_free)>;

  static Key make_key() {
    Key key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    if (!key) throw std::runtime_error("EC key generation failed");
    return key;
  }

  static void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) throw std::runtime_error("bad extension " + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }

  static Cert make_cert(EVP_PKEY* key, const std::string& cn, const std::vector<std::string>& sans, EVP_PKEY* signer,
                        X509* issuer, long not_before_days, long not_after_days, bool is_ca) {
    Cert cert(X509_new(), X509_free);
    static long serial = 1;
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_days * 86400 - 3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after_days * 86400);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
    add_ext(cert.get(), issuer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca) add_ext(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (!sans.empty()) {
      std::string joined;
      for (const auto& s : sans) joined += (joined.empty() ? "" : ",") + s;
      add_ext(cert.get(), issuer, NID_subject_alt_name, joined);
    }
    if (X509_sign(cert.get(), signer, EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
    return cert;
  }

  Pair write(const std::string& stem, X509* cert, EVP_PKEY* key) {
    Pair p{dir_ + "/" + stem + ".crt", dir_ + "/" + stem + ".key"};
    FILE* f = std::fopen(p.cert.c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(p.key.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    return p;
  }

  std::string dir_;
  Pair ca_, server_, expired_, other_host_, self_signed_;
};

}  // namespace squall::testing
