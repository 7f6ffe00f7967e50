#include "jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base64url.hpp"
#include "test_support.hpp"

namespace perpetuo {
namespace {

using testing_support::read_fixture;

constexpr std::int64_t kNow = 1700000000;
constexpr char kSecret[] = "an-hs256-secret-of-at-least-32-bytes";
constexpr char kIssuer[] = "https://idp.example.com";
constexpr char kAudience[] = "perpetuo";

std::string at(std::int64_t offset) {
    return std::to_string(kNow + offset);
}

// ---- Minting: OpenSSL directly, independent of the code under test -------

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    std::size_t len = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
              reinterpret_cast<const unsigned char *>(data.data()), data.size(), mac, sizeof mac,
              &len);
    return std::string(reinterpret_cast<char *>(mac), len);
}

struct PkeyFree {
    void operator()(EVP_PKEY *key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey private_key(const std::string &fixture) {
    std::string pem = read_fixture("jwt/" + fixture);
    BIO *bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    Pkey key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!key) throw std::runtime_error("cannot read " + fixture);
    return key;
}

// The DER signature OpenSSL produces (ECDSA-Sig-Value for EC keys).
std::string der_signature(EVP_PKEY *key, std::string_view data) {
    std::string sig(static_cast<std::size_t>(EVP_PKEY_get_size(key)), '\0');
    std::size_t len = sig.size();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok =
        EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char *>(sig.data()), &len,
                       reinterpret_cast<const unsigned char *>(data.data()), data.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) throw std::runtime_error("signing failed");
    sig.resize(len);
    return sig;
}

// JWS ES256 wants R||S, 32 bytes each (RFC 7518 §3.4).
std::string der_to_raw(const std::string &der) {
    const auto *p = reinterpret_cast<const unsigned char *>(der.data());
    ECDSA_SIG *sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    if (!sig) throw std::runtime_error("not an ECDSA signature");
    std::string raw(64, '\0');
    auto *out = reinterpret_cast<unsigned char *>(raw.data());
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32);
    ECDSA_SIG_free(sig);
    return raw;
}

enum class Signer { kHs256, kRs256, kRs256OtherKey, kEs256, kEs256Der, kRsaPemAsHmacSecret };

class Minter {
  public:
    Minter()
        : rsa_(private_key("rsa_private.pem")),
          rsa_other_(private_key("rsa_other_private.pem")),
          ec_(private_key("ec_private.pem")),
          rsa_public_pem_(read_fixture("jwt/rsa_public.pem")) {}

    std::string signature(Signer signer, std::string_view input) const {
        switch (signer) {
            case Signer::kHs256:
                return hmac_sha256(kSecret, input);
            case Signer::kRsaPemAsHmacSecret:
                return hmac_sha256(rsa_public_pem_, input);
            case Signer::kRs256:
                return der_signature(rsa_.get(), input);
            case Signer::kRs256OtherKey:
                return der_signature(rsa_other_.get(), input);
            case Signer::kEs256:
                return der_to_raw(der_signature(ec_.get(), input));
            case Signer::kEs256Der:
                return der_signature(ec_.get(), input);
        }
        return {};
    }

    // header.payload.signature over the given JSON texts, byte for byte.
    std::string token(Signer signer, std::string_view header, std::string_view payload) const {
        std::string input = base64url_encode(header) + "." + base64url_encode(payload);
        return input + "." + base64url_encode(signature(signer, input));
    }

  private:
    Pkey rsa_, rsa_other_, ec_;
    std::string rsa_public_pem_;
};

const Minter &minter() {
    static const Minter m;
    return m;
}

std::string header_for(Signer signer) {
    switch (signer) {
        case Signer::kRs256:
        case Signer::kRs256OtherKey:
            return R"({"alg":"RS256","typ":"JWT"})";
        case Signer::kEs256:
        case Signer::kEs256Der:
            return R"({"alg":"ES256","typ":"JWT"})";
        default:
            return R"({"alg":"HS256","typ":"JWT"})";
    }
}

// A claim set as ordered raw-JSON fields, so a case can change one claim
// and keep the rest valid.
class Claims {
  public:
    Claims()
        : fields_{{"iss", "\"" + std::string(kIssuer) + "\""},
                  {"aud", "\"" + std::string(kAudience) + "\""},
                  {"iat", at(-10)},
                  {"exp", at(600)},
                  {"workspaces", R"(["ws_a","ws_b"])"}} {}

    Claims &set(const std::string &name, const std::string &raw) {
        for (auto &field : fields_) {
            if (field.first == name) {
                field.second = raw;
                return *this;
            }
        }
        fields_.emplace_back(name, raw);
        return *this;
    }
    Claims &add(const std::string &name, const std::string &raw) {  // even if present
        fields_.emplace_back(name, raw);
        return *this;
    }
    Claims &drop(const std::string &name) {
        for (auto it = fields_.begin(); it != fields_.end(); ++it) {
            if (it->first == name) {
                fields_.erase(it);
                break;
            }
        }
        return *this;
    }
    std::string json() const {
        std::string out = "{";
        for (const auto &[name, raw] : fields_) {
            if (out.size() > 1) out += ",";
            out += "\"" + name + "\":" + raw;
        }
        return out + "}";
    }

  private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

std::string token(Signer signer, const Claims &claims = Claims()) {
    return minter().token(signer, header_for(signer), claims.json());
}

std::string token_with_header(const std::string &header, Signer signer = Signer::kHs256) {
    return minter().token(signer, header, Claims().json());
}

std::vector<std::string> segments(const std::string &token) {
    std::vector<std::string> out(1);
    for (char c : token) {
        if (c == '.') {
            out.emplace_back();
        } else {
            out.back().push_back(c);
        }
    }
    return out;
}

std::string joined(const std::vector<std::string> &parts) {
    std::string out = parts[0];
    for (std::size_t i = 1; i < parts.size(); ++i) out += "." + parts[i];
    return out;
}

// Replaces segment `index` of a token.
std::string with_segment(const std::string &token, std::size_t index, const std::string &text) {
    std::vector<std::string> parts = segments(token);
    parts[index] = text;
    return joined(parts);
}

// Replaces a token's signature with `change(signature bytes)`.
std::string with_signature(const std::string &token,
                           const std::function<std::string(std::string)> &change) {
    std::string sig;
    if (!base64url_decode(segments(token)[2], &sig)) throw std::runtime_error("bad signature");
    return with_segment(token, 2, base64url_encode(change(sig)));
}

std::string flip_last_signature_byte(const std::string &token) {
    return with_signature(token, [](std::string sig) {
        sig.back() ^= 0x01;
        return sig;
    });
}

std::string to_standard_alphabet(std::string b64url) {
    for (char &c : b64url) c = c == '-' ? '+' : c == '_' ? '/' : c;
    return b64url;
}

// The same bytes in RFC 4648 §4 base64: '+', '/' and '=' padding.
std::string standard_base64(std::string_view bytes) {
    std::string out = to_standard_alphabet(base64url_encode(bytes));
    return out + std::string((4 - out.size() % 4) % 4, '=');
}

// HS256 over segment texts taken as they are, so a token can carry a valid
// signature over text that only the decoder should refuse.
std::string signed_segments(const std::string &header_segment, const std::string &payload_segment,
                            std::string_view secret = kSecret) {
    std::string input = header_segment + "." + payload_segment;
    return input + "." + base64url_encode(hmac_sha256(secret, input));
}

// Valid claims whose standard base64 spelling `fits`: a jti of '?'s (0x3f,
// which always encodes to some '/') grows until it does.
std::string claims_where(const std::function<bool(const std::string &standard)> &fits) {
    for (std::size_t n = 8;; ++n) {
        std::string json = Claims().set("jti", "\"" + std::string(n, '?') + "\"").json();
        if (fits(standard_base64(json))) return json;
    }
}

bool has_padding(const std::string &b64) {
    return b64.back() == '=';
}
bool has_plus_or_slash(const std::string &b64) {
    return b64.find_first_of("+/") != std::string::npos;
}

// A token with a valid signature over a payload segment spelt in standard base64.
std::string standard_base64_payload(const std::function<bool(const std::string &)> &fits) {
    return signed_segments(base64url_encode(header_for(Signer::kHs256)),
                           standard_base64(claims_where(fits)));
}

// A valid HS256 token whose claims pad it to exactly `size` bytes.
std::string token_of_size(std::size_t size) {
    std::string filler;
    for (;;) {
        std::string t = token(Signer::kHs256, Claims().set("pad", "\"" + filler + "\""));
        if (t.size() >= size) return t;
        filler.push_back('x');
    }
}

// ---- Configurations ---------------------------------------------------------

enum class Keys { kHs, kRs, kEs, kHsRs };

JwtConfig config_for(Keys keys) {
    JwtConfig c;
    c.enabled = true;
    c.issuer = kIssuer;
    c.audience = kAudience;
    if (keys == Keys::kHs || keys == Keys::kHsRs) {
        c.algorithms.push_back("HS256");
        c.hs256_secret = kSecret;
    }
    if (keys == Keys::kRs || keys == Keys::kHsRs) {
        c.algorithms.push_back("RS256");
        c.public_key_pem = read_fixture("jwt/rsa_public.pem");
    }
    if (keys == Keys::kEs) {
        c.algorithms.push_back("ES256");
        c.public_key_pem = read_fixture("jwt/ec_public.pem");
    }
    return c;
}

const JwtVerifier &verifier(Keys keys) {
    static const JwtVerifier hs(config_for(Keys::kHs)), rs(config_for(Keys::kRs)),
        es(config_for(Keys::kEs)), hs_rs(config_for(Keys::kHsRs));
    switch (keys) {
        case Keys::kHs:
            return hs;
        case Keys::kRs:
            return rs;
        case Keys::kEs:
            return es;
        case Keys::kHsRs:
            break;
    }
    return hs_rs;
}

// ---- Refused tokens (reliability.md §1.3) ----------------------------------

struct RefusedToken {
    const char *name;
    Keys keys;
    std::function<std::string()> token;
    const char *error;
};

void PrintTo(const RefusedToken &c, std::ostream *os) {
    *os << c.name;
}

class RefusedTokenTest : public ::testing::TestWithParam<RefusedToken> {};

TEST_P(RefusedTokenTest, IsRefusedForItsReason) {
    const RefusedToken &c = GetParam();
    const std::string t = c.token();
    JwtVerifier::Result r = verifier(c.keys).verify(t, kNow);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, c.error);
    EXPECT_TRUE(r.workspaces.empty());
}

const RefusedToken kRefused[] = {
    // J2: alg none in every spelling, and no signature at all.
    {"AlgNoneWithoutSignature", Keys::kHsRs,
     [] {
         return base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(Claims().json()) +
                ".";
     },
     "malformed token"},
    {"AlgNoneWithSignature", Keys::kHsRs, [] { return token_with_header(R"({"alg":"none"})"); },
     "algorithm not allowed"},
    {"AlgNoneUpperCase", Keys::kHsRs, [] { return token_with_header(R"({"alg":"NONE"})"); },
     "algorithm not allowed"},
    {"AlgNoneCapitalized", Keys::kHsRs, [] { return token_with_header(R"({"alg":"None"})"); },
     "algorithm not allowed"},
    {"AlgMissing", Keys::kHs, [] { return token_with_header(R"({"typ":"JWT"})"); },
     "missing algorithm"},
    {"AlgNotAString", Keys::kHs, [] { return token_with_header(R"({"alg":["HS256"]})"); },
     "malformed header"},
    {"AlgNull", Keys::kHs, [] { return token_with_header(R"({"alg":null})"); }, "malformed header"},
    {"AlgTwice", Keys::kHs, [] { return token_with_header(R"({"alg":"HS256","alg":"HS256"})"); },
     "malformed header"},
    {"AlgLowerCase", Keys::kHs, [] { return token_with_header(R"({"alg":"hs256"})"); },
     "algorithm not allowed"},
    // J4: algorithms outside the allow-list.
    {"AlgHs512", Keys::kHs, [] { return token_with_header(R"({"alg":"HS512"})"); },
     "algorithm not allowed"},
    {"AlgPs256", Keys::kRs, [] { return token_with_header(R"({"alg":"PS256"})", Signer::kRs256); },
     "algorithm not allowed"},
    // J3: key confusion; the RSA public key is never an HMAC secret.
    {"Hs256WithRsaPemAsSecretRsOnly", Keys::kRs,
     [] { return token_with_header(R"({"alg":"HS256"})", Signer::kRsaPemAsHmacSecret); },
     "algorithm not allowed"},
    {"Hs256WithRsaPemAsSecretHsAndRs", Keys::kHsRs,
     [] { return token_with_header(R"({"alg":"HS256"})", Signer::kRsaPemAsHmacSecret); },
     "signature mismatch"},
    {"Rs256TokenHsOnlyConfig", Keys::kHs, [] { return token(Signer::kRs256); },
     "algorithm not allowed"},
    {"Es256TokenRsConfig", Keys::kRs, [] { return token(Signer::kEs256); },
     "algorithm not allowed"},
    {"Rs256TokenEsConfig", Keys::kEs, [] { return token(Signer::kRs256); },
     "algorithm not allowed"},
    {"Rs256HeaderOverEsSignature", Keys::kEs,
     [] { return token_with_header(R"({"alg":"RS256"})", Signer::kEs256); },
     "algorithm not allowed"},
    // J16: ES256 signatures are raw R||S only, and never zero.
    {"Es256DerSignature", Keys::kEs, [] { return token(Signer::kEs256Der); },
     "malformed signature"},
    {"Es256ZeroSignature", Keys::kEs,
     [] {
         return with_signature(token(Signer::kEs256),
                               [](std::string) { return std::string(64, '\0'); });
     },
     "signature mismatch"},
    {"Es256ZeroR", Keys::kEs,
     [] {
         return with_signature(token(Signer::kEs256),
                               [](std::string sig) { return sig.replace(0, 32, 32, '\0'); });
     },
     "signature mismatch"},
    {"Es256SignatureOneByteLong", Keys::kEs,
     [] {
         return with_signature(token(Signer::kEs256), [](std::string sig) { return sig + "A"; });
     },
     "malformed signature"},
    {"Es256SignatureHuge", Keys::kEs,  // HAProxy's heap overflow: 21,830 characters
     [] {
         return with_signature(token(Signer::kEs256),
                               [](std::string sig) { return sig + std::string(16300, 'A'); });
     },
     "token too large"},
    // J17 and truncation.
    {"Hs256TruncatedSignature", Keys::kHs,
     [] {
         return with_signature(token(Signer::kHs256),
                               [](std::string sig) { return sig.substr(0, 31); });
     },
     "malformed signature"},
    {"Rs256TruncatedSignature", Keys::kRs,
     [] {
         return with_signature(token(Signer::kRs256),
                               [](std::string sig) { return sig.substr(0, sig.size() - 1); });
     },
     "malformed signature"},
    {"Hs256LastByteFlipped", Keys::kHs,
     [] { return flip_last_signature_byte(token(Signer::kHs256)); }, "signature mismatch"},
    {"Rs256LastByteFlipped", Keys::kRs,
     [] { return flip_last_signature_byte(token(Signer::kRs256)); }, "signature mismatch"},
    {"Es256LastByteFlipped", Keys::kEs,
     [] { return flip_last_signature_byte(token(Signer::kEs256)); }, "signature mismatch"},
    {"TamperedPayload", Keys::kHs,
     [] {
         return with_segment(token(Signer::kHs256), 1,
                             base64url_encode(Claims().set("workspaces", R"(["admin"])").json()));
     },
     "signature mismatch"},
    {"TamperedHeader", Keys::kRs,
     [] {
         return with_segment(token(Signer::kRs256), 0,
                             base64url_encode(R"({"alg":"RS256","typ":"JWT","kid":"1"})"));
     },
     "signature mismatch"},
    {"Rs256WrongKey", Keys::kRs, [] { return token(Signer::kRs256OtherKey); },
     "signature mismatch"},
    {"Hs256WrongSecret", Keys::kHs,
     [] {
         return signed_segments(base64url_encode(header_for(Signer::kHs256)),
                                base64url_encode(Claims().json()), "another-secret");
     },
     "signature mismatch"},
    // J11 / J12: headers we will not act on.
    {"CritPresent", Keys::kHs,
     [] { return token_with_header(R"({"alg":"HS256","crit":["exp"],"exp":1})"); },
     "unsupported critical header"},
    {"CritEmpty", Keys::kHs, [] { return token_with_header(R"({"alg":"HS256","crit":[]})"); },
     "unsupported critical header"},
    {"CritB64", Keys::kHs,
     [] { return token_with_header(R"({"alg":"HS256","b64":false,"crit":["b64"]})"); },
     "unsupported critical header"},
    {"JkuPresent", Keys::kRs,
     [] {
         return token_with_header(R"({"alg":"RS256","jku":"https://evil.example/k"})",
                                  Signer::kRs256);
     },
     "unsupported key header"},
    {"JwkPresent", Keys::kRs,
     [] { return token_with_header(R"({"alg":"RS256","jwk":{"kty":"RSA"}})", Signer::kRs256); },
     "unsupported key header"},
    {"X5uPresent", Keys::kRs,
     [] {
         return token_with_header(R"({"alg":"RS256","x5u":"https://evil.example/c"})",
                                  Signer::kRs256);
     },
     "unsupported key header"},
    {"X5cPresent", Keys::kRs,
     [] { return token_with_header(R"({"alg":"RS256","x5c":["MIIB"]})", Signer::kRs256); },
     "unsupported key header"},
    // Shape of the compact serialization.
    {"Empty", Keys::kHs, [] { return std::string(); }, "malformed token"},
    {"OnePart", Keys::kHs, [] { return segments(token(Signer::kHs256))[0]; }, "malformed token"},
    {"TwoParts", Keys::kHs,
     [] {
         std::vector<std::string> p = segments(token(Signer::kHs256));
         return p[0] + "." + p[1];
     },
     "malformed token"},
    {"FourParts", Keys::kHs, [] { return token(Signer::kHs256) + ".e30"; }, "malformed token"},
    {"TrailingDot", Keys::kHs, [] { return token(Signer::kHs256) + "."; }, "malformed token"},
    {"FiveParts", Keys::kHs, [] { return "a.b.c.d.e"; }, "malformed token"},
    {"EmptyHeader", Keys::kHs, [] { return with_segment(token(Signer::kHs256), 0, ""); },
     "malformed token"},
    {"EmptyPayload", Keys::kHs, [] { return with_segment(token(Signer::kHs256), 1, ""); },
     "malformed token"},
    {"EmptySignature", Keys::kHs, [] { return with_segment(token(Signer::kHs256), 2, ""); },
     "malformed token"},
    {"OnlyDots", Keys::kHs, [] { return ".."; }, "malformed token"},
    // J13: strict base64url in every segment.
    {"PaddedHeader", Keys::kHs,
     [] {
         std::string t = token_with_header(R"({"alg":"HS256","x":12})");  // 22 bytes: "=="
         return with_segment(t, 0, standard_base64(R"({"alg":"HS256","x":12})"));
     },
     "malformed header"},
    {"PaddedSignature", Keys::kHs,
     [] { return token(Signer::kHs256) + "="; },  // 32 bytes: 43 characters and one '='
     "malformed signature"},
    {"PaddedPayloadValidlySigned", Keys::kHs, [] { return standard_base64_payload(has_padding); },
     "malformed payload"},
    {"PlusOrSlashInPayloadValidlySigned", Keys::kHs,
     [] {
         return standard_base64_payload(
             [](const std::string &b64) { return has_plus_or_slash(b64) && !has_padding(b64); });
     },
     "malformed payload"},
    {"PlusOrSlashInSignature", Keys::kHs,
     [] {
         std::string t = token(Signer::kHs256);
         for (int jti = 0; segments(t)[2].find_first_of("-_") == std::string::npos; ++jti)
             t = token(Signer::kHs256, Claims().set("jti", std::to_string(jti)));
         return with_segment(t, 2, to_standard_alphabet(segments(t)[2]));
     },
     "malformed signature"},
    {"PlusInHeader", Keys::kHs, [] { return "+" + token(Signer::kHs256).substr(1); },
     "malformed header"},
    {"SlashInHeader", Keys::kHs, [] { return "/" + token(Signer::kHs256).substr(1); },
     "malformed header"},
    {"NonCanonicalSignatureBits", Keys::kHs,
     [] {
         // 32 bytes take 43 characters; the last one carries 2 unused bits.
         static const std::string kAlphabet =
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
         std::string t = token(Signer::kHs256);
         t.back() = kAlphabet[kAlphabet.find(t.back()) | 1];
         return t;
     },
     "malformed signature"},
    {"WhitespaceInSignature", Keys::kHs,
     [] {
         std::string t = token(Signer::kHs256);
         return t.insert(t.size() - 4, " ");
     },
     "malformed signature"},
    {"TrailingNewline", Keys::kHs, [] { return token(Signer::kHs256) + "\n"; },
     "malformed signature"},
    {"NulInToken", Keys::kHs,
     [] {
         std::string t = token(Signer::kHs256);
         return t.insert(3, 1, '\0');
     },
     "malformed header"},
    // J14: segments that are not JSON objects.
    {"HeaderNotJson", Keys::kHs, [] { return token_with_header("not json"); }, "malformed header"},
    {"HeaderJsonArray", Keys::kHs, [] { return token_with_header(R"(["HS256"])"); },
     "malformed header"},
    {"HeaderJsonString", Keys::kHs, [] { return token_with_header(R"("HS256")"); },
     "malformed header"},
    {"HeaderJsonNull", Keys::kHs, [] { return token_with_header("null"); }, "malformed header"},
    {"HeaderInvalidUtf8", Keys::kHs,
     [] { return token_with_header("{\"alg\":\"HS256\",\"x\":\"\xff\xfe\"}"); },
     "malformed header"},
    {"HeaderTrailingGarbage", Keys::kHs, [] { return token_with_header(R"({"alg":"HS256"}x)"); },
     "malformed header"},
    {"PayloadJsonArray", Keys::kHs,
     [] { return minter().token(Signer::kHs256, header_for(Signer::kHs256), "[]"); },
     "malformed payload"},
    {"PayloadNotJson", Keys::kHs,
     [] {
         return minter().token(Signer::kHs256, header_for(Signer::kHs256), "{\"exp\":" + at(60));
     },
     "malformed payload"},
    {"PayloadDeeplyNested", Keys::kHs,
     [] {
         return token(Signer::kHs256,
                      Claims().set("deep", std::string(2000, '[') + std::string(2000, ']')));
     },
     "malformed payload"},
    {"PayloadBadBase64ValidlySigned", Keys::kHs,
     [] { return signed_segments(base64url_encode(header_for(Signer::kHs256)), "e30*"); },
     "malformed payload"},
    // J15: size before anything else.
    {"OversizeToken", Keys::kHs, [] { return token_of_size(JwtVerifier::kMaxTokenBytes + 1); },
     "token too large"},
    {"OversizeGarbage", Keys::kHs, [] { return std::string(64 * 1024, 'A'); }, "token too large"},
    // J5 / J6: exp.
    {"Expired", Keys::kHs, [] { return token(Signer::kHs256, Claims().set("exp", at(-3600))); },
     "token expired"},
    {"ExpiredAtLeewayBoundary", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("exp", at(-60))); }, "token expired"},
    {"ExpMissing", Keys::kHs, [] { return token(Signer::kHs256, Claims().drop("exp")); },
     "missing exp claim"},
    {"ExpString", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("exp", "\"" + at(600) + "\"")); },
     "invalid exp claim"},
    {"ExpFloat", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("exp", at(600) + ".5")); },
     "invalid exp claim"},
    {"ExpExponent", Keys::kHs, [] { return token(Signer::kHs256, Claims().set("exp", "1e30")); },
     "invalid exp claim"},
    {"ExpNull", Keys::kHs, [] { return token(Signer::kHs256, Claims().set("exp", "null")); },
     "invalid exp claim"},
    {"ExpNegative", Keys::kHs, [] { return token(Signer::kHs256, Claims().set("exp", "-1")); },
     "token expired"},
    {"ExpTwice", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("exp", at(-3600)).add("exp", at(3600))); },
     "duplicate claim"},
    // J7 / J8: nbf and iat, each with its own leeway.
    {"NbfInTheFuture", Keys::kHs, [] { return token(Signer::kHs256, Claims().set("nbf", at(61))); },
     "token not yet valid"},
    {"NbfString", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("nbf", "\"" + at(0) + "\"")); },
     "invalid nbf claim"},
    {"IatInTheFuture", Keys::kHs, [] { return token(Signer::kHs256, Claims().set("iat", at(61))); },
     "token issued in the future"},
    {"IatBool", Keys::kHs, [] { return token(Signer::kHs256, Claims().set("iat", "true")); },
     "invalid iat claim"},
    // J10: issuer and audience.
    {"WrongIssuer", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("iss", R"("https://evil.example")")); },
     "issuer mismatch"},
    {"IssuerMissing", Keys::kHs, [] { return token(Signer::kHs256, Claims().drop("iss")); },
     "issuer mismatch"},
    {"IssuerNotAString", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("iss", R"(["https://idp.example.com"])")); },
     "issuer mismatch"},
    {"WrongAudience", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("aud", R"("billing")")); },
     "audience mismatch"},
    {"AudienceArrayWithoutOurs", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("aud", R"(["billing","search"])")); },
     "audience mismatch"},
    {"AudienceArrayWithNonString", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("aud", R"(["perpetuo",1])")); },
     "audience mismatch"},
    {"AudienceMissing", Keys::kHs, [] { return token(Signer::kHs256, Claims().drop("aud")); },
     "audience mismatch"},
    {"AudienceCaseDiffers", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("aud", R"("Perpetuo")")); },
     "audience mismatch"},
    // The workspace claim.
    {"WorkspacesMissing", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().drop("workspaces")); }, "missing workspace claim"},
    {"WorkspacesNumber", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("workspaces", "7")); },
     "invalid workspace claim"},
    {"WorkspacesArrayWithNumber", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("workspaces", R"(["ws_a",7])")); },
     "invalid workspace claim"},
    {"WorkspacesNestedArray", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("workspaces", R"([["ws_a"]])")); },
     "invalid workspace claim"},
    {"WorkspacesObject", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("workspaces", R"({"ws_a":true})")); },
     "invalid workspace claim"},
    {"WorkspacesNull", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("workspaces", "null")); },
     "invalid workspace claim"},
    {"WorkspacesTwice", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().add("workspaces", R"(["admin"])")); },
     "duplicate claim"},
};

INSTANTIATE_TEST_SUITE_P(Jwt, RefusedTokenTest, ::testing::ValuesIn(kRefused),
                         [](const auto &info) { return std::string(info.param.name); });

// ---- Accepted tokens ----------------------------------------------------------

struct AcceptedToken {
    const char *name;
    Keys keys;
    std::function<std::string()> token;
    std::vector<std::string> workspaces;
};

void PrintTo(const AcceptedToken &c, std::ostream *os) {
    *os << c.name;
}

class AcceptedTokenTest : public ::testing::TestWithParam<AcceptedToken> {};

TEST_P(AcceptedTokenTest, IsAcceptedWithItsWorkspaces) {
    const AcceptedToken &c = GetParam();
    JwtVerifier::Result r = verifier(c.keys).verify(c.token(), kNow);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.workspaces, c.workspaces);
}

const std::vector<std::string> kBoth = {"ws_a", "ws_b"};

const AcceptedToken kAccepted[] = {
    {"Hs256", Keys::kHs, [] { return token(Signer::kHs256); }, kBoth},
    {"Rs256", Keys::kRs, [] { return token(Signer::kRs256); }, kBoth},
    {"Es256", Keys::kEs, [] { return token(Signer::kEs256); }, kBoth},
    {"Hs256WithHsAndRs", Keys::kHsRs, [] { return token(Signer::kHs256); }, kBoth},
    {"Rs256WithHsAndRs", Keys::kHsRs, [] { return token(Signer::kRs256); }, kBoth},
    {"AudienceArray", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("aud", R"(["billing","perpetuo"])")); }, kBoth},
    {"WorkspaceString",
     Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("workspaces", R"("ws_a")")); },
     {"ws_a"}},
    {"WorkspaceEmptyArray",
     Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("workspaces", "[]")); },
     {}},
    {"WorkspaceEscapes",
     Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("workspaces", R"(["ws\u005fa"])")); },
     {"ws_a"}},
    {"KidIgnored", Keys::kRs,
     [] {
         return token_with_header(R"({"alg":"RS256","kid":"../../etc/passwd' OR 1=1"})",
                                  Signer::kRs256);
     },
     kBoth},
    {"TypIgnored", Keys::kHs, [] { return token_with_header(R"({"typ":"at+jwt","alg":"HS256"})"); },
     kBoth},
    {"ExpJustInsideLeeway", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("exp", at(-59))); }, kBoth},
    {"ExpBeyondInt64", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("exp", "18446744073709551615")); }, kBoth},
    {"NbfAtLeewayBoundary", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("nbf", at(60))); }, kBoth},
    {"IatAtLeewayBoundary", Keys::kHs,
     [] { return token(Signer::kHs256, Claims().set("iat", at(60))); }, kBoth},
    {"IatAncient", Keys::kHs, [] { return token(Signer::kHs256, Claims().set("iat", "0")); },
     kBoth},
    {"UnknownClaimsIgnored", Keys::kHs,
     [] {
         return token(Signer::kHs256,
                      Claims().set("sub", R"("u1")").set("scope", R"({"a":[1,2,{"b":null}]})"));
     },
     kBoth},
    {"ExactlyMaxSize", Keys::kHs, [] { return token_of_size(JwtVerifier::kMaxTokenBytes); }, kBoth},
};

INSTANTIATE_TEST_SUITE_P(Jwt, AcceptedTokenTest, ::testing::ValuesIn(kAccepted),
                         [](const auto &info) { return std::string(info.param.name); });

TEST(JwtVerifierTest, SizedTokensStraddleTheLimit) {
    EXPECT_EQ(token_of_size(JwtVerifier::kMaxTokenBytes).size(), JwtVerifier::kMaxTokenBytes);
    EXPECT_EQ(token_of_size(JwtVerifier::kMaxTokenBytes + 1).size(),
              JwtVerifier::kMaxTokenBytes + 1);
}

TEST(JwtVerifierTest, CustomWorkspaceClaimName) {
    JwtConfig config = config_for(Keys::kHs);
    config.workspace_claim = "teams";
    JwtVerifier v(config);
    JwtVerifier::Result r = v.verify(
        token(Signer::kHs256, Claims().drop("workspaces").set("teams", R"(["t1"])")), kNow);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.workspaces, std::vector<std::string>{"t1"});
    // The default name means nothing under a custom one.
    EXPECT_EQ(v.verify(token(Signer::kHs256), kNow).error, "missing workspace claim");
}

TEST(JwtVerifierTest, IssuerAndAudienceUncheckedWhenNotConfigured) {
    JwtConfig config = config_for(Keys::kHs);
    config.issuer.clear();
    config.audience.clear();
    JwtVerifier v(config);
    JwtVerifier::Result r =
        v.verify(token(Signer::kHs256, Claims().drop("iss").set("aud", "42")), kNow);
    EXPECT_TRUE(r.ok) << r.error;
}

TEST(JwtVerifierTest, Rfc7515AppendixA1) {
    // The RFC's HS256 example: its key, its token, its exp (2011-03-22).
    std::string key;
    ASSERT_TRUE(base64url_decode(
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        &key));
    JwtConfig config;
    config.algorithms = {"HS256"};
    config.hs256_secret = key;
    config.workspace_claim = "iss";
    JwtVerifier v(config);
    const std::string rfc_token =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
        "cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    JwtVerifier::Result r = v.verify(rfc_token, 1300819380 - 100);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.workspaces, std::vector<std::string>{"joe"});
    EXPECT_EQ(v.verify(rfc_token, 1300819380 + 60).error, "token expired");
}

TEST(JwtVerifierTest, Es256AcceptsSignaturesWithLeadingZerosAndHighBits) {
    // R and S are fixed-width in JWS but minimal in DER: a leading zero byte
    // must be dropped and a high bit needs a 0x00 prefix. Mint until each
    // shape has been seen.
    int leading_zero = 0, high_bit = 0;
    for (int jti = 0; jti < 3000 && (leading_zero < 2 || high_bit < 2); ++jti) {
        std::string t = token(Signer::kEs256, Claims().set("jti", std::to_string(jti)));
        std::string sig;
        ASSERT_TRUE(base64url_decode(segments(t)[2], &sig));
        auto byte = [&](int i) { return static_cast<unsigned char>(sig[i]); };
        leading_zero += (byte(0) == 0) + (byte(32) == 0);
        high_bit += (byte(0) >= 0x80) + (byte(32) >= 0x80);
        JwtVerifier::Result r = verifier(Keys::kEs).verify(t, kNow);
        ASSERT_TRUE(r.ok) << jti << ": " << r.error;
    }
    EXPECT_GE(leading_zero, 2);
    EXPECT_GE(high_bit, 2);
}

TEST(JwtVerifierTest, CopiesShareKeysAndVerifyAlike) {
    JwtVerifier copy = verifier(Keys::kHsRs);
    EXPECT_TRUE(copy.verify(token(Signer::kRs256), kNow).ok);
    EXPECT_TRUE(copy.verify(token(Signer::kHs256), kNow).ok);
}

TEST(JwtVerifierTest, ErrorsNeverEchoTheToken) {
    const std::string t = "eyJhbGciOiJub25lIn0.eyJ3b3Jrc3BhY2VzIjpbImFkbWluIl19.c2ln";
    JwtVerifier::Result r = verifier(Keys::kHs).verify(t, kNow);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error.find("eyJ"), std::string::npos);
    EXPECT_LT(r.error.size(), 40u);
}

// ---- Configurations refused at load time ----------------------------------

struct RefusedConfig {
    const char *name;
    std::function<JwtConfig()> config;
    const char *message_part;
};

void PrintTo(const RefusedConfig &c, std::ostream *os) {
    *os << c.name;
}

class RefusedConfigTest : public ::testing::TestWithParam<RefusedConfig> {};

TEST_P(RefusedConfigTest, Throws) {
    const RefusedConfig &c = GetParam();
    try {
        JwtVerifier v(c.config());
        FAIL() << "accepted";
    } catch (const std::runtime_error &e) {
        EXPECT_NE(std::string(e.what()).find(c.message_part), std::string::npos) << e.what();
    }
}

JwtConfig with_key(const char *alg, const std::string &pem) {
    JwtConfig c;
    c.algorithms = {alg};
    c.public_key_pem = pem;
    return c;
}

const RefusedConfig kRefusedConfigs[] = {
    {"NoAlgorithms", [] { return JwtConfig(); }, "no algorithms"},
    {"UnknownAlgorithm",
     [] {
         JwtConfig c = config_for(Keys::kHs);
         c.algorithms.push_back("HS512");
         return c;
     },
     "unsupported algorithm"},
    {"NoneAlgorithm",
     [] {
         JwtConfig c = config_for(Keys::kHs);
         c.algorithms = {"none"};
         return c;
     },
     "unsupported algorithm"},
    {"EmptySecret",
     [] {
         JwtConfig c = config_for(Keys::kHs);
         c.hs256_secret.clear();
         return c;
     },
     "non-empty secret"},
    {"Rs256WithoutKey", [] { return with_key("RS256", ""); }, "need a public key"},
    {"BadPem", [] { return with_key("RS256", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END"); },
     "not a PEM"},
    {"PrivateKeyPem", [] { return with_key("RS256", read_fixture("jwt/rsa_private.pem")); },
     "not a PEM"},
    {"TwoKeys",
     [] {
         return with_key("RS256", read_fixture("jwt/rsa_public.pem") +
                                      read_fixture("jwt/rsa_other_public.pem"));
     },
     "more than one key"},
    {"Rsa1024", [] { return with_key("RS256", read_fixture("jwt/rsa1024_public.pem")); }, "2048"},
    {"EcP384", [] { return with_key("ES256", read_fixture("jwt/ec_p384_public.pem")); }, "P-256"},
    {"RsaKeyForEs256", [] { return with_key("ES256", read_fixture("jwt/rsa_public.pem")); },
     "EC public key"},
    {"EcKeyForRs256", [] { return with_key("RS256", read_fixture("jwt/ec_public.pem")); },
     "RSA public key"},
    {"KeyWithOnlyHs256",
     [] {
         JwtConfig c = config_for(Keys::kHs);
         c.public_key_pem = read_fixture("jwt/rsa_public.pem");
         return c;
     },
     "neither RS256 nor ES256"},
    {"Rs256AndEs256OneKey",
     [] {
         JwtConfig c = with_key("RS256", read_fixture("jwt/rsa_public.pem"));
         c.algorithms.push_back("ES256");
         return c;
     },
     "only one public key"},
    {"EmptyWorkspaceClaim",
     [] {
         JwtConfig c = config_for(Keys::kHs);
         c.workspace_claim.clear();
         return c;
     },
     "workspace_claim"},
};

INSTANTIATE_TEST_SUITE_P(Jwt, RefusedConfigTest, ::testing::ValuesIn(kRefusedConfigs),
                         [](const auto &info) { return std::string(info.param.name); });

// ---- scripts/jwt ----------------------------------------------------------

std::string run(const std::string &command) {
    std::string out;
    FILE *pipe = popen(command.c_str(), "r");
    if (!pipe) return out;
    char buf[512];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    pclose(pipe);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
}

TEST(JwtScriptTest, Hs256TokenVerifies) {
    const std::string script = std::string(PERPETUO_FIXTURES) + "/../../../scripts/jwt";
    std::string t = run("PERPETUO_JWT_SECRET='" + std::string(kSecret) + "' '" + script +
                        "' --iss '" + kIssuer + "' --aud " + kAudience + " ws_a ws_b");
    ASSERT_FALSE(t.empty());
    JwtVerifier::Result r = verifier(Keys::kHs).verify(t, std::time(nullptr));
    EXPECT_TRUE(r.ok) << r.error << " for " << t;
    EXPECT_EQ(r.workspaces, kBoth);
}

}  // namespace
}  // namespace perpetuo
