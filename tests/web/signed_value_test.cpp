// Signed values as Tornado's create_signed_value / decode_signed_value: its
// own test vectors (tornado/test/web_test.py SignedValueTest), round trips,
// key rotation, expiry, tampering with every byte, malformed input that is
// correctly signed, and interop both ways with Debian's Tornado 6.2.
#include "squall/web/signed_value.hpp"

#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support/exact_input.hpp"
#include "../support/run_program.hpp"

namespace squall::web {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;
using testing::Exact;

constexpr const char* kSecret = "It's a secret to everybody";
constexpr std::int64_t kPresent = 1300000000;
constexpr std::int64_t kDay = 86400;

system_clock::time_point at(std::int64_t t) { return system_clock::time_point(seconds(t)); }

CreateSignedValueOptions signed_at(std::int64_t t, int version = 2) {
  CreateSignedValueOptions o;
  o.version = version;
  o.now = at(t);
  return o;
}

DecodeSignedValueOptions decoded_at(std::int64_t t, int min_version = 2, double max_age_days = 31) {
  DecodeSignedValueOptions o;
  o.now = at(t);
  o.min_version = min_version;
  o.max_age_days = max_age_days;
  return o;
}

/// Decodes from a heap block that ends where the value does, so an
/// overread trips ASan.
std::optional<std::string> decode(const CookieSecret& secret, std::string_view name, std::string_view value,
                                  const DecodeSignedValueOptions& options = decoded_at(kPresent)) {
  Exact exact(value);
  return decode_signed_value(secret, name, exact.view(), options);
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

/// A version-2 value whose fields are whatever the test says, correctly
/// signed: it gets past the HMAC check, so what follows it is exercised.
std::string forge(std::string_view secret, std::string_view fields) {
  std::string to_sign = std::string(fields);
  unsigned char digest[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size(), digest, &length);
  return to_sign + hex(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
  return s;
}

// ---- Tornado's SignedValueTest ----

TEST(SignedValueTest, ProducesTornadosKnownValues) {
  std::string v1 = create_signed_value(kSecret, "key", "value", signed_at(kPresent, 1));
  EXPECT_EQ(v1, "dmFsdWU=|1300000000|31c934969f53e48164c50768b40cbd7e2daaaa4f");
  std::string v2 = create_signed_value(kSecret, "key", "value", signed_at(kPresent, 2));
  EXPECT_EQ(v2,
            "2|1:0|10:1300000000|3:key|8:dmFsdWU=|"
            "3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152");
  EXPECT_EQ(create_signed_value(kSecret, "key", "value", signed_at(kPresent)), v2);
  EXPECT_EQ(decode(kSecret, "key", v1, decoded_at(kPresent, 1)), "value");
  EXPECT_EQ(decode(kSecret, "key", v2, decoded_at(kPresent, 2)), "value");
}

TEST(SignedValueTest, RejectsAValueMadeForAnotherName) {
  std::string signed1 = create_signed_value(kSecret, "key1", "value", signed_at(kPresent));
  std::string signed2 = create_signed_value(kSecret, "key2", "value", signed_at(kPresent));
  EXPECT_EQ(decode(kSecret, "key2", signed1), std::nullopt);
  EXPECT_EQ(decode(kSecret, "key1", signed2), std::nullopt);
  EXPECT_EQ(decode(kSecret, "key1", signed1), "value");
}

TEST(SignedValueTest, RejectsExpiredValues) {
  std::int64_t past = kPresent - 32 * kDay;
  std::string value = create_signed_value(kSecret, "key1", "value", signed_at(past));
  EXPECT_EQ(decode(kSecret, "key1", value, decoded_at(past)), "value");
  EXPECT_EQ(decode(kSecret, "key1", value, decoded_at(kPresent)), std::nullopt);
}

TEST(SignedValueTest, RejectsTamperedPayloads) {
  const std::string sig = "3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152";
  auto valid = [&](const std::string& prefix) { return decode(kSecret, "key", prefix + sig) == "value"; };
  EXPECT_TRUE(valid("2|1:0|10:1300000000|3:key|8:dmFsdWU=|"));
  EXPECT_FALSE(valid("2|1:1|10:1300000000|3:key|8:dmFsdWU=|"));   // key version changed
  EXPECT_FALSE(valid("2|1:0|10:130000000|3:key|8:dmFsdWU=|"));    // field too short
  EXPECT_FALSE(valid("2|1:0|10:1300000000|3:keey|8:dmFsdWU=|"));  // field too long
}

TEST(SignedValueTest, RejectsTamperedSignatures) {
  const std::string prefix = "2|1:0|10:1300000000|3:key|8:dmFsdWU=|";
  auto valid = [&](const std::string& sig) { return decode(kSecret, "key", prefix + sig) == "value"; };
  EXPECT_TRUE(valid("3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152"));
  EXPECT_FALSE(valid(std::string(32, '0')));
  EXPECT_FALSE(valid(std::string(64, '0')));
  EXPECT_FALSE(valid("4d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152"));
  EXPECT_FALSE(valid("3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e153"));
  EXPECT_FALSE(valid("3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e15"));    // truncated
  EXPECT_FALSE(valid("3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e1538"));  // lengthened
  EXPECT_FALSE(valid("3D4E60B996FF9C5D5788E333A0CBA6F238A22C6C0F94788870E1A9ECD482E152"));  // hex case matters
  EXPECT_FALSE(valid(""));
}

TEST(SignedValueTest, RoundTripsNonAsciiValues) {
  std::string value = "\xe9";
  EXPECT_EQ(decode(kSecret, "key", create_signed_value(kSecret, "key", value, signed_at(kPresent))), value);
}

// ---- round trips ----

TEST(SignedValueTest, RoundTripsAnyBytes) {
  for (const std::string& value : {std::string(), std::string("barbaz"), all_bytes(), std::string(10000, 'x'),
                                   std::string("a|b:c\n\r\0d", 10)}) {
    std::string signed_value = create_signed_value("secret", "session", value, signed_at(kPresent));
    EXPECT_EQ(decode("secret", "session", signed_value), value) << signed_value;
  }
}

TEST(SignedValueTest, WritesTheDocumentedFormat) {
  std::string v = create_signed_value("secret", "foo", "barbaz", signed_at(kPresent));
  const std::string prefix = "2|1:0|10:1300000000|3:foo|8:YmFyYmF6|";
  EXPECT_EQ(v.substr(0, prefix.size()), prefix);
  ASSERT_EQ(v.size(), prefix.size() + 64);
  EXPECT_EQ(v.find_first_not_of("0123456789abcdef", prefix.size()), std::string::npos);
}

TEST(SignedValueTest, NamesMayHoldTheSeparators) {
  // Fields are length-prefixed, so '|' and ':' in a name are harmless.
  std::string v = create_signed_value("secret", "a|b:c", "x", signed_at(kPresent));
  EXPECT_EQ(decode("secret", "a|b:c", v), "x");
  EXPECT_EQ(decode("secret", "a|b", v), std::nullopt);
}

TEST(SignedValueTest, StampsTheCurrentTimeInWholeSeconds) {
  CreateSignedValueOptions o;
  o.now = at(kPresent) + std::chrono::milliseconds(999);
  std::string v = create_signed_value("secret", "n", "v", o);
  EXPECT_NE(v.find("|10:1300000000|"), std::string::npos) << v;
  // Without a clock: now, so it decodes now.
  std::string now = create_signed_value("secret", "n", "v");
  EXPECT_EQ(decode_signed_value("secret", "n", now), "v");
}

TEST(SignedValueTest, DifferentSecretsDoNotVerifyEachOther) {
  std::string v = create_signed_value("secret one", "n", "v", signed_at(kPresent));
  EXPECT_EQ(decode("secret two", "n", v), std::nullopt);
}

// ---- max age and clock skew ----

TEST(SignedValueTest, MaxAgeIsInclusiveAndMayBeFractional) {
  std::string v = create_signed_value("secret", "n", "v", signed_at(kPresent));
  EXPECT_EQ(decode("secret", "n", v, decoded_at(kPresent + 31 * kDay)), "v");
  EXPECT_EQ(decode("secret", "n", v, decoded_at(kPresent + 31 * kDay + 1)), std::nullopt);
  EXPECT_EQ(decode("secret", "n", v, decoded_at(kPresent + kDay / 2, 2, 0.5)), "v");
  EXPECT_EQ(decode("secret", "n", v, decoded_at(kPresent + kDay / 2 + 1, 2, 0.5)), std::nullopt);
  EXPECT_EQ(decode("secret", "n", v, decoded_at(kPresent + 400 * kDay, 2, 365)), std::nullopt);
  EXPECT_EQ(decode("secret", "n", v, decoded_at(kPresent + 400 * kDay, 2, 500)), "v");
}

TEST(SignedValueTest, RejectsTimestampsFarInTheFuture) {
  std::string v = create_signed_value("secret", "n", "v", signed_at(kPresent));
  std::int64_t skew = kMaxSignedValueClockSkew.count();
  EXPECT_EQ(decode("secret", "n", v, decoded_at(kPresent - skew)), "v");
  EXPECT_EQ(decode("secret", "n", v, decoded_at(kPresent - skew - 1)), std::nullopt);
  std::string v1 = create_signed_value("secret", "n", "v", signed_at(kPresent, 1));
  EXPECT_EQ(decode("secret", "n", v1, decoded_at(kPresent - skew, 1)), "v");
  EXPECT_EQ(decode("secret", "n", v1, decoded_at(kPresent - skew - 1, 1)), std::nullopt);
}

// ---- key versions ----

TEST(SignedValueTest, SignsWithTheCurrentKeyVersion) {
  auto keys = CookieSecret::versioned({{0, "asdfbasdf"}, {1, "12312312"}, {2, "2342342"}}, 1);
  std::string v = create_signed_value(keys, "key", "\xe9", signed_at(kPresent));
  EXPECT_EQ(v.rfind("2|1:1|", 0), 0u) << v;
  EXPECT_EQ(get_signature_key_version(v), 1);
  EXPECT_EQ(decode(keys, "key", v), "\xe9");
  // The signature is the one a single secret equal to key 1 makes.
  EXPECT_EQ(decode("12312312", "key", v), "\xe9");
  EXPECT_EQ(decode("asdfbasdf", "key", v), std::nullopt);
}

TEST(SignedValueTest, RotatingKeysKeepsOldValuesValidUntilTheirKeyIsDropped) {
  auto old_keys = CookieSecret::versioned({{1, "first secret"}}, 1);
  std::string old_value = create_signed_value(old_keys, "user", "alice", signed_at(kPresent));

  auto rotated = CookieSecret::versioned({{1, "first secret"}, {2, "second secret"}}, 2);
  EXPECT_EQ(decode(rotated, "user", old_value), "alice");
  EXPECT_EQ(get_signature_key_version(old_value), 1);  // a candidate for re-signing
  std::string new_value = create_signed_value(rotated, "user", "alice", signed_at(kPresent));
  EXPECT_EQ(get_signature_key_version(new_value), 2);
  EXPECT_EQ(decode(rotated, "user", new_value), "alice");

  auto retired = CookieSecret::versioned({{2, "second secret"}}, 2);
  EXPECT_EQ(decode(retired, "user", old_value), std::nullopt);
  EXPECT_EQ(decode(retired, "user", new_value), "alice");
}

TEST(SignedValueTest, ASingleSecretIgnoresTheKeyVersionField) {
  // As Tornado: with one secret, every key version is checked with it.
  std::string v = forge("secret", "2|3:123|10:1300000000|1:n|4:dg==|");
  EXPECT_EQ(decode("secret", "n", v), "v");
  auto keys = CookieSecret::versioned({{0, "secret"}}, 0);
  EXPECT_EQ(decode(keys, "n", v), std::nullopt);
}

TEST(SignedValueTest, VersionOneDoesNotMixWithVersionedSecrets) {
  auto keys = CookieSecret::versioned({{0, "secret"}}, 0);
  EXPECT_THROW(create_signed_value(keys, "n", "v", signed_at(kPresent, 1)), std::invalid_argument);
  std::string v1 = create_signed_value("secret", "n", "v", signed_at(kPresent, 1));
  EXPECT_EQ(decode(keys, "n", v1, decoded_at(kPresent, 1)), std::nullopt);
}

TEST(SignedValueTest, CookieSecretRejectsWeakOrInconsistentKeys) {
  EXPECT_THROW(CookieSecret(""), std::invalid_argument);
  EXPECT_THROW(CookieSecret::versioned({}, 0), std::invalid_argument);
  EXPECT_THROW(CookieSecret::versioned({{0, "a"}}, 1), std::invalid_argument);
  EXPECT_THROW(CookieSecret::versioned({{0, "a"}, {1, ""}}, 0), std::invalid_argument);
  EXPECT_THROW(CookieSecret::versioned({{-1, "a"}}, -1), std::invalid_argument);
  CookieSecret single = "s";
  EXPECT_FALSE(single.is_versioned());
  EXPECT_EQ(single.key_version(), 0);
  EXPECT_EQ(single.signing_secret(), "s");
  ASSERT_NE(single.find(7), nullptr);
  EXPECT_EQ(*single.find(7), "s");
  auto keys = CookieSecret::versioned({{3, "c"}, {5, "e"}}, 5);
  EXPECT_TRUE(keys.is_versioned());
  EXPECT_EQ(keys.key_version(), 5);
  EXPECT_EQ(keys.signing_secret(), "e");
  EXPECT_EQ(keys.find(4), nullptr);
}

TEST(SignedValueTest, GetSignatureKeyVersionReadsOnlyWellFormedVersionTwo) {
  EXPECT_EQ(get_signature_key_version("2|1:7|10:1300000000|1:n|4:dg==|sig"), 7);
  EXPECT_EQ(get_signature_key_version("2|2:12|1:0|0:|0:|"), 12);
  EXPECT_EQ(get_signature_key_version(""), std::nullopt);
  EXPECT_EQ(get_signature_key_version("dmFsdWU=|1300000000|31c934969f53e48164c50768b40cbd7e2daaaa4f"), std::nullopt);
  EXPECT_EQ(get_signature_key_version("2|1:x|10:1300000000|1:n|4:dg==|sig"), std::nullopt);
  EXPECT_EQ(get_signature_key_version("2|1:7|10:1300000000|1:n|4:dg=="), std::nullopt);
  EXPECT_EQ(get_signature_key_version("2|10:1234567890|1:0|0:|0:|"), std::nullopt);  // beyond int
  EXPECT_EQ(get_signature_key_version("3|1:7|10:1300000000|1:n|4:dg==|sig"), std::nullopt);
}

// ---- versions ----

TEST(SignedValueTest, VersionOneIsRejectedUnlessMinVersionAllowsIt) {
  std::string v1 = create_signed_value("secret", "n", "value", signed_at(kPresent, 1));
  EXPECT_EQ(decode("secret", "n", v1), std::nullopt);
  EXPECT_EQ(decode("secret", "n", v1, decoded_at(kPresent, 1)), "value");
  std::string v2 = create_signed_value("secret", "n", "value", signed_at(kPresent));
  EXPECT_EQ(decode("secret", "n", v2, decoded_at(kPresent, 1)), "value");
}

TEST(SignedValueTest, VersionOneChecksAreTornados) {
  auto o = decoded_at(kPresent, 1);
  std::string v1 = create_signed_value("secret", "n", "value", signed_at(kPresent, 1));
  EXPECT_EQ(decode("secret", "m", v1, o), std::nullopt);  // name is in the HMAC
  EXPECT_EQ(decode("secret", "n", v1 + "|", o), std::nullopt);
  EXPECT_EQ(decode("secret", "n", v1.substr(0, v1.size() - 1), o), std::nullopt);
  // No delimiter is signed, so digits can move between the payload and
  // the timestamp without changing the HMAC input. "ab4" is "YWI0":
  // moving its '0' makes the same timestamp with a leading zero, and
  // moving the timestamp's '1' the other way makes it 1979 (expired).
  std::string v = create_signed_value("secret", "n", "ab4", signed_at(kPresent, 1));
  ASSERT_EQ(v.substr(0, 16), "YWI0|1300000000|");
  std::string sig = v.substr(16);
  EXPECT_EQ(decode("secret", "n", v, o), "ab4");
  EXPECT_EQ(decode("secret", "n", "YWI|01300000000|" + sig, o), std::nullopt);
  EXPECT_EQ(decode("secret", "n", "YWI01|300000000|" + sig, o), std::nullopt);
}

TEST(SignedValueTest, OptionsOutOfRangeAreProgrammingErrors) {
  std::string v = create_signed_value("secret", "n", "v", signed_at(kPresent));
  EXPECT_THROW(decode("secret", "n", v, decoded_at(kPresent, 3)), std::invalid_argument);
  EXPECT_THROW(decode("secret", "n", v, decoded_at(kPresent, 0)), std::invalid_argument);
  EXPECT_THROW(decode("secret", "n", v, decoded_at(kPresent, 2, std::nan(""))), std::invalid_argument);
  EXPECT_THROW(create_signed_value("secret", "n", "v", signed_at(kPresent, 3)), std::invalid_argument);
  EXPECT_THROW(create_signed_value("secret", "n", "v", signed_at(kPresent, 0)), std::invalid_argument);
}

// ---- tampering and malformed input ----

TEST(SignedValueTest, ChangingAnyByteToAnyOtherInvalidatesTheValue) {
  std::string v = create_signed_value("secret", "name", "value", signed_at(kPresent));
  for (std::size_t i = 0; i < v.size(); ++i) {
    for (int b = 0; b < 256; ++b) {
      if (static_cast<char>(b) == v[i]) continue;
      std::string t = v;
      t[i] = static_cast<char>(b);
      ASSERT_EQ(decode("secret", "name", t), std::nullopt) << "byte " << i << " -> " << b;
    }
  }
}

TEST(SignedValueTest, EveryTruncationAndExtensionIsRejected) {
  std::string v = create_signed_value("secret", "name", "value", signed_at(kPresent));
  for (std::size_t n = 0; n < v.size(); ++n) {
    EXPECT_EQ(decode("secret", "name", v.substr(0, n)), std::nullopt) << n;
    EXPECT_EQ(decode("secret", "name", v.substr(n + 1)), std::nullopt) << n;
  }
  for (const char* tail : {"0", "|", "a", "\n", " ", "|0:|"}) EXPECT_EQ(decode("secret", "name", v + tail), std::nullopt);
  EXPECT_EQ(decode("secret", "name", " " + v), std::nullopt);
}

TEST(SignedValueTest, MalformedFramingIsRejected) {
  for (std::string_view bad : {
           "", "2", "2|", "2|1", "2|1:", "2|1:0", "2|1:0|", "2|1:0|10:1300000000", "2|1:0|10:1300000000|3:key",
           "2|1:0|10:1300000000|3:key|8:dmFsdWU=",        // no signature field
           "2|:0|10:1300000000|3:key|8:dmFsdWU=|",        // empty length
           "2|01:0|10:1300000000|3:key|8:dmFsdWU=|",      // leading zero in a length
           "2|+1:0|10:1300000000|3:key|8:dmFsdWU=|",      // sign
           "2|-1:0|10:1300000000|3:key|8:dmFsdWU=|",      // negative
           "2| 1:0|10:1300000000|3:key|8:dmFsdWU=|",      // space
           "2|1_0:0|10:1300000000|3:key|8:dmFsdWU=|",     // Python's int() would take it
           "2|99999999999999999999999:0|",                // huge length
           "2|18446744073709551615:0|",                   // 2^64 - 1
           "2|9223372036854775807:0|",                    // int64 max
           "2|100:0|10:1300000000|",                      // length past the end
           "2|1:00|10:1300000000|3:key|8:dmFsdWU=|",      // no '|' after the field
           "2|1:0|10:1300000000|3:key|8:dmFsdWU=:",       // ':' instead of '|'
           "2|1:0;10:1300000000|3:key|8:dmFsdWU=|",
           "3|1:0|10:1300000000|3:key|8:dmFsdWU=|",       // unknown version
           "999|1:0|10:1300000000|3:key|8:dmFsdWU=|",
           "1000|1:0|10:1300000000|3:key|8:dmFsdWU=|",    // read as version 1
           "02|1:0|10:1300000000|3:key|8:dmFsdWU=|",      // read as version 1
           "|||||", "::::", "2||||||", "2|0:|0:|0:|0:|",
       }) {
    EXPECT_EQ(decode("secret", "key", bad), std::nullopt) << bad;
    EXPECT_EQ(decode("secret", "key", bad, decoded_at(kPresent, 1)), std::nullopt) << bad;
  }
}

TEST(SignedValueTest, CorrectlySignedButMalformedFieldsAreRejected) {
  auto rejects = [](std::string_view fields) {
    return decode("secret", "n", forge("secret", fields)) == std::nullopt;
  };
  EXPECT_FALSE(rejects("2|1:0|10:1300000000|1:n|4:dg==|"));  // the control: valid
  EXPECT_TRUE(rejects("2|1:0|10:13000000x0|1:n|4:dg==|"));   // timestamp not a number
  EXPECT_TRUE(rejects("2|1:0|0:|1:n|4:dg==|"));              // empty timestamp
  EXPECT_TRUE(rejects("2|1:0|11:01300000000|1:n|4:dg==|"));  // leading zero
  EXPECT_TRUE(rejects("2|1:0|11:-1300000000|1:n|4:dg==|"));  // negative
  EXPECT_TRUE(rejects("2|1:0|20:99999999999999999999|1:n|4:dg==|"));  // huge (Tornado: far future)
  EXPECT_TRUE(rejects("2|1:0|19:9223372036854775807|1:n|4:dg==|"));
  EXPECT_TRUE(rejects("2|1:0|1:0|1:n|4:dg==|"));             // the epoch: expired
  EXPECT_TRUE(rejects("2|1:x|10:1300000000|1:n|4:dg==|"));   // key version not a number
  EXPECT_TRUE(rejects("2|1:0|10:1300000000|1:n|4:dg=|"));    // base64: bad length
  EXPECT_TRUE(rejects("2|1:0|10:1300000000|1:n|4:d!==|"));   // base64: bad character
  EXPECT_TRUE(rejects("2|1:0|10:1300000000|1:n|4:dh==|"));   // base64: stray bits
  EXPECT_TRUE(rejects("2|1:0|10:1300000000|1:n|4:=dg=|"));   // base64: padding first
  EXPECT_TRUE(rejects("2|1:0|10:1300000000|1:n|8:dg==dg==|"));  // base64: padding inside
  EXPECT_TRUE(rejects("2|1:0|10:1300000000|1:n|4:dg-_|"));   // base64: URL alphabet
  EXPECT_FALSE(rejects("2|1:0|10:1300000000|1:n|0:|"));      // empty value: valid
}

TEST(SignedValueTest, NeverThrowsOnArbitraryInput) {
  std::mt19937 rng(7);
  std::string seed = create_signed_value("secret", "n", "some value", signed_at(kPresent));
  const std::string alphabet = "0123456789|:2abcdef=+/ \n";
  for (int i = 0; i < 20000; ++i) {
    std::string s = seed;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      std::size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(pos, 1 + rng() % 3); break;
        default: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    EXPECT_NO_THROW({
      (void)decode("secret", "n", s, decoded_at(kPresent, 1));
      (void)get_signature_key_version(s);
    });
  }
}

// ---- interop with Tornado 6.2 ----

/// Runs Tornado's create_signed_value / decode_signed_value /
/// get_signature_key_version on a batch of requests; one JSON answer each.
const char* const kTornadoSignedValues = R"PY(
import json, sys
from tornado.web import create_signed_value, decode_signed_value, get_signature_key_version

def secret(s):
    return {int(k): v for k, v in s.items()} if isinstance(s, dict) else s

out = []
for c in json.loads(sys.argv[1]):
    clock = (lambda t: lambda: t)(c["now"]) if "now" in c else None
    if c["op"] == "sign":
        v = create_signed_value(secret(c["secret"]), c["name"], bytes.fromhex(c["value"]),
                                version=c.get("version"), clock=clock, key_version=c.get("key_version"))
        out.append(v.decode())
    elif c["op"] == "decode":
        v = decode_signed_value(secret(c["secret"]), c["name"], c["signed"], clock=clock,
                                min_version=c.get("min_version"))
        out.append(None if v is None else v.hex())
    else:
        out.append(get_signature_key_version(c["signed"]))
print(json.dumps(out))
)PY";

nlohmann::json tornado(const nlohmann::json& requests) {
  auto result = squall::testing::run_python(kTornadoSignedValues, {requests.dump()});
  if (!result || result->status != 0) {
    ADD_FAILURE() << "python3 failed";
    return nlohmann::json::array();
  }
  return nlohmann::json::parse(result->out);
}

struct InteropCase {
  nlohmann::json secret;  // a string, or {"version": "secret"}
  int key_version;
  std::string name;
  std::string value;
};

CookieSecret to_secret(const nlohmann::json& j, int key_version) {
  if (j.is_string()) return CookieSecret(j.get<std::string>());
  std::map<int, std::string> keys;
  for (const auto& [k, v] : j.items()) keys[std::stoi(k)] = v.get<std::string>();
  return CookieSecret::versioned(keys, key_version);
}

std::vector<InteropCase> interop_cases() {
  nlohmann::json keys = {{"0", "asdfbasdf"}, {"1", "12312312"}, {"2", "2342342"}};
  return {
      {kSecret, 0, "key", "value"},
      {"s3cr3t", 0, "user", "barbaz"},
      {"s3cr3t", 0, "session", all_bytes()},
      {"s3cr3t", 0, "empty", ""},
      {"another secret entirely", 0, "long", std::string(3000, 'q')},
      {keys, 0, "key", "\xe9"},
      {keys, 1, "key", "\xe9"},
      {keys, 2, "user", "alice"},
  };
}

TEST(SignedValueInteropTest, TornadosValuesDecodeInSquallAndAreByteIdentical) {
  if (!squall::testing::tornado_available()) GTEST_SKIP() << "Debian's python3-tornado is not installed";
  nlohmann::json requests = nlohmann::json::array();
  auto cases = interop_cases();
  for (const auto& c : cases) {
    nlohmann::json r = {{"op", "sign"}, {"secret", c.secret}, {"name", c.name}, {"value", hex(c.value)},
                        {"now", kPresent}};
    if (c.secret.is_object()) r["key_version"] = c.key_version;
    requests.push_back(r);
  }
  requests.push_back({{"op", "sign"}, {"secret", "s3cr3t"}, {"name", "old"}, {"value", hex("v1 value")},
                      {"now", kPresent}, {"version", 1}});
  nlohmann::json answers = tornado(requests);
  ASSERT_EQ(answers.size(), cases.size() + 1);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    std::string theirs = answers[i].get<std::string>();
    CookieSecret secret = to_secret(c.secret, c.key_version);
    EXPECT_EQ(decode(secret, c.name, theirs), c.value) << theirs;
    EXPECT_EQ(get_signature_key_version(theirs), c.key_version);
    EXPECT_EQ(create_signed_value(secret, c.name, c.value, signed_at(kPresent)), theirs);
  }
  std::string v1 = answers.back().get<std::string>();
  EXPECT_EQ(decode("s3cr3t", "old", v1), std::nullopt);
  EXPECT_EQ(decode("s3cr3t", "old", v1, decoded_at(kPresent, 1)), "v1 value");
  EXPECT_EQ(create_signed_value("s3cr3t", "old", "v1 value", signed_at(kPresent, 1)), v1);
}

TEST(SignedValueInteropTest, SquallsValuesDecodeInTornado) {
  if (!squall::testing::tornado_available()) GTEST_SKIP() << "Debian's python3-tornado is not installed";
  auto cases = interop_cases();
  nlohmann::json requests = nlohmann::json::array();
  std::vector<std::string> expected;
  for (const auto& c : cases) {
    std::string ours = create_signed_value(to_secret(c.secret, c.key_version), c.name, c.value, signed_at(kPresent));
    // Accepted as made; refused once tampered with, with another name, or
    // once expired (so Tornado's acceptance is not vacuous).
    std::string tampered = ours;
    tampered[tampered.size() - 1] = tampered.back() == '0' ? '1' : '0';
    requests.push_back({{"op", "decode"}, {"secret", c.secret}, {"name", c.name}, {"signed", ours}, {"now", kPresent + 60}});
    requests.push_back({{"op", "decode"}, {"secret", c.secret}, {"name", c.name}, {"signed", tampered}, {"now", kPresent}});
    requests.push_back({{"op", "decode"}, {"secret", c.secret}, {"name", c.name + "x"}, {"signed", ours}, {"now", kPresent}});
    requests.push_back({{"op", "decode"}, {"secret", c.secret}, {"name", c.name}, {"signed", ours}, {"now", kPresent + 32 * kDay}});
    requests.push_back({{"op", "key_version"}, {"signed", ours}});
  }
  std::string v1 = create_signed_value("s3cr3t", "old", "v1 value", signed_at(kPresent, 1));
  requests.push_back({{"op", "decode"}, {"secret", "s3cr3t"}, {"name", "old"}, {"signed", v1}, {"now", kPresent}, {"min_version", 1}});
  nlohmann::json answers = tornado(requests);
  ASSERT_EQ(answers.size(), cases.size() * 5 + 1);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    EXPECT_EQ(answers[5 * i], hex(cases[i].value));
    EXPECT_TRUE(answers[5 * i + 1].is_null());
    EXPECT_TRUE(answers[5 * i + 2].is_null());
    EXPECT_TRUE(answers[5 * i + 3].is_null());
    EXPECT_EQ(answers[5 * i + 4], cases[i].key_version);
  }
  EXPECT_EQ(answers.back(), hex("v1 value"));
}

}  // namespace
}  // namespace squall::web
