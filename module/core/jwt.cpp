#include "jwt.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <simdjson.h>

#include <cstring>
#include <limits>
#include <stdexcept>

#include "base64url.hpp"

namespace perpetuo {

namespace {

using simdjson::dom::element;

constexpr std::size_t kMaxJsonDepth = 32;  // a JOSE header or claim set is shallow
constexpr std::size_t kHs256Bytes = 32;
constexpr std::size_t kEs256CoordinateBytes = 32;
constexpr int kMinRsaBits = 2048;

template <typename T, auto Free>
struct Freer {
    void operator()(T *p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using MdPtr = std::unique_ptr<EVP_MD, Freer<EVP_MD, EVP_MD_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Freer<EVP_MD_CTX, EVP_MD_CTX_free>>;
using MacPtr = std::unique_ptr<EVP_MAC, Freer<EVP_MAC, EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Freer<EVP_MAC_CTX, EVP_MAC_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

[[noreturn]] void refuse_config(const std::string &message) {
    ERR_clear_error();
    throw std::runtime_error(message);
}

PkeyPtr read_public_key(const std::string &pem) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) refuse_config("out of memory reading the public key");
    PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key) refuse_config("public key is not a PEM \"PUBLIC KEY\"");
    // One key per configuration: a second block would be silently unused.
    PkeyPtr second(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (second) refuse_config("public key file holds more than one key");
    ERR_clear_error();  // the failed look for a second block leaves "no start line"
    return key;
}

bool is_p256(EVP_PKEY *key) {
    char group[64];
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) return false;
    std::string_view name(group, len);
    return name == "prime256v1" || name == "P-256";
}

simdjson::dom::parser &json_parser() {
    thread_local simdjson::dom::parser parser = [] {
        simdjson::dom::parser p(JwtVerifier::kMaxTokenBytes);
        // Should this fail, every later parse fails too: tokens are refused, not trusted.
        simdjson::error_code sized = p.allocate(JwtVerifier::kMaxTokenBytes, kMaxJsonDepth);
        (void)sized;
        return p;
    }();
    return parser;
}

// Parses a decoded segment that must be a JSON object.
bool parse_object(const std::string &json, simdjson::dom::object *out) {
    element root;
    if (json_parser().parse(json).get(root) != simdjson::SUCCESS) return false;
    return root.get_object().get(*out) == simdjson::SUCCESS;
}

// Appends the unsigned big-endian `n` bytes at `in` as a DER INTEGER.
void append_der_integer(const unsigned char *in, std::size_t n, unsigned char *out,
                        std::size_t *len) {
    while (n > 1 && in[0] == 0) {
        ++in;
        --n;
    }
    const bool sign_pad = (in[0] & 0x80) != 0;  // keep it positive
    out[(*len)++] = 0x02;
    out[(*len)++] = static_cast<unsigned char>(n + sign_pad);
    if (sign_pad) out[(*len)++] = 0;
    std::memcpy(out + *len, in, n);
    *len += n;
}

bool all_zero(const unsigned char *p, std::size_t n) {
    unsigned char acc = 0;
    for (std::size_t i = 0; i < n; ++i) acc |= p[i];
    return acc == 0;
}

// NumericDate (RFC 7519 §2) as whole seconds; fractions and non-numbers are
// refused rather than rounded one way or the other.
bool numeric_date(element value, std::int64_t *out) {
    if (value.get_int64().get(*out) == simdjson::SUCCESS) return true;
    std::uint64_t big = 0;
    if (value.get_uint64().get(big) != simdjson::SUCCESS) return false;
    *out = std::numeric_limits<std::int64_t>::max();  // beyond int64: the far future
    return true;
}

// A string, or an array of strings, into *out; anything else is refused.
bool string_or_strings(element value, std::vector<std::string> *out) {
    std::string_view one;
    if (value.get_string().get(one) == simdjson::SUCCESS) {
        out->emplace_back(one);
        return true;
    }
    simdjson::dom::array many;
    if (value.get_array().get(many) != simdjson::SUCCESS) return false;
    for (element item : many) {
        if (item.get_string().get(one) != simdjson::SUCCESS) return false;
        out->emplace_back(one);
    }
    return true;
}

}  // namespace

struct JwtVerifier::Keys {
    bool hs256 = false;
    MacCtxPtr hmac;  // keyed with the secret once; each verify works on a copy
    bool rs256 = false;
    bool es256 = false;
    PkeyPtr public_key;  // RSA for RS256 or EC P-256 for ES256, never both
    std::size_t rsa_signature_bytes = 0;
    MdPtr sha256;
};

JwtVerifier::JwtVerifier(const JwtConfig &config)
    : issuer_(config.issuer), audience_(config.audience), workspace_claim_(config.workspace_claim) {
    auto keys = std::make_shared<Keys>();
    if (config.algorithms.empty()) refuse_config("no algorithms configured");
    for (const std::string &alg : config.algorithms) {
        if (alg == "HS256") {
            keys->hs256 = true;
        } else if (alg == "RS256") {
            keys->rs256 = true;
        } else if (alg == "ES256") {
            keys->es256 = true;
        } else {
            refuse_config("unsupported algorithm \"" + alg + "\" (expected HS256, RS256 or ES256)");
        }
    }
    if (workspace_claim_.empty()) refuse_config("workspace_claim is empty");
    keys->sha256.reset(EVP_MD_fetch(nullptr, "SHA2-256", nullptr));
    if (!keys->sha256) refuse_config("SHA-256 is not available");

    if (keys->hs256) {
        // An empty HMAC key would let anyone mint tokens (CVE-2026-44699).
        if (config.hs256_secret.empty()) refuse_config("HS256 needs a non-empty secret");
        MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
        if (mac) keys->hmac.reset(EVP_MAC_CTX_new(mac.get()));
        char digest[] = "SHA2-256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
        const auto *secret = reinterpret_cast<const unsigned char *>(config.hs256_secret.data());
        if (!keys->hmac ||
            EVP_MAC_init(keys->hmac.get(), secret, config.hs256_secret.size(), params) != 1)
            refuse_config("HMAC-SHA256 is not available");
    }

    if (keys->rs256 || keys->es256) {
        if (keys->rs256 && keys->es256)
            refuse_config("RS256 and ES256 both configured, but there is only one public key");
        if (config.public_key_pem.empty()) refuse_config("RS256/ES256 need a public key");
        keys->public_key = read_public_key(config.public_key_pem);
        EVP_PKEY *key = keys->public_key.get();
        if (keys->rs256) {
            if (!EVP_PKEY_is_a(key, "RSA")) refuse_config("RS256 needs an RSA public key");
            if (EVP_PKEY_get_bits(key) < kMinRsaBits)
                refuse_config("RSA public key is shorter than 2048 bits");
            keys->rsa_signature_bytes = static_cast<std::size_t>(EVP_PKEY_get_size(key));
        } else {
            if (!EVP_PKEY_is_a(key, "EC")) refuse_config("ES256 needs an EC public key");
            if (!is_p256(key)) refuse_config("ES256 needs a key on curve P-256");
        }
    } else if (!config.public_key_pem.empty()) {
        refuse_config("a public key is set but neither RS256 nor ES256 is configured");
    }
    keys_ = std::move(keys);
}

JwtVerifier::Result JwtVerifier::verify(std::string_view token,
                                        std::int64_t now_seconds) const noexcept {
    try {
        return verify_or_throw(token, now_seconds);
    } catch (...) {  // allocation failure: refuse, never throw into nginx's C frames
        Result result;
        result.error = "token not verified";
        return result;
    }
}

JwtVerifier::Result JwtVerifier::verify_or_throw(std::string_view token,
                                                 std::int64_t now_seconds) const {
    Result result;
    auto fail = [&result](const char *error) {
        result.error = error;
        return result;
    };
    if (token.size() > kMaxTokenBytes) return fail("token too large");
    const std::size_t dot1 = token.find('.');
    const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
        return fail("malformed token");
    const std::string_view header_text = token.substr(0, dot1);
    const std::string_view payload_text = token.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string_view signature_text = token.substr(dot2 + 1);
    // An empty signature is alg "none" in disguise; empty header/payload are not JSON.
    if (header_text.empty() || payload_text.empty() || signature_text.empty())
        return fail("malformed token");

    // The header only chooses among algorithms the operator allowed, each
    // bound to its own key (RFC 8725 §3.1).
    std::string json;
    simdjson::dom::object header;
    if (!base64url_decode(header_text, &json, simdjson::SIMDJSON_PADDING) ||
        !parse_object(json, &header))
        return fail("malformed header");
    std::string_view alg_name;
    bool has_alg = false;
    for (auto field : header) {
        if (field.key == "alg") {
            if (has_alg || field.value.get_string().get(alg_name) != simdjson::SUCCESS)
                return fail("malformed header");
            has_alg = true;
        } else if (field.key == "crit") {
            // Every extension it could name is one we do not understand (RFC 7515 §4.1.11).
            return fail("unsupported critical header");
        } else if (field.key == "jku" || field.key == "jwk" || field.key == "x5u" ||
                   field.key == "x5c") {
            // Keys come from the configuration only, never from the token.
            return fail("unsupported key header");
        }
    }
    if (!has_alg) return fail("missing algorithm");
    Alg alg;
    if (alg_name == "HS256" && keys_->hs256) {
        alg = Alg::kHS256;
    } else if (alg_name == "RS256" && keys_->rs256) {
        alg = Alg::kRS256;
    } else if (alg_name == "ES256" && keys_->es256) {
        alg = Alg::kES256;
    } else {
        return fail("algorithm not allowed");
    }

    std::string signature;
    if (!base64url_decode(signature_text, &signature)) return fail("malformed signature");
    const char *error = nullptr;
    if (!signature_matches(alg, token.substr(0, dot2), signature, &error)) return fail(error);

    // Only now is the payload the issuer's.
    if (!base64url_decode(payload_text, &json, simdjson::SIMDJSON_PADDING))
        return fail("malformed payload");
    if ((error = check_claims(json, now_seconds, &result.workspaces)) != nullptr) {
        result.workspaces.clear();
        return fail(error);
    }
    result.ok = true;
    return result;
}

bool JwtVerifier::signature_matches(Alg alg, std::string_view signing_input,
                                    const std::string &signature, const char **error) const {
    const auto *sig = reinterpret_cast<const unsigned char *>(signature.data());
    const auto *data = reinterpret_cast<const unsigned char *>(signing_input.data());
    *error = "malformed signature";
    if (alg == Alg::kHS256) {
        if (signature.size() != kHs256Bytes) return false;
        MacCtxPtr ctx(EVP_MAC_CTX_dup(keys_->hmac.get()));
        unsigned char mac[EVP_MAX_MD_SIZE];
        std::size_t mac_len = 0;
        *error = "signature mismatch";
        bool ok = ctx && EVP_MAC_update(ctx.get(), data, signing_input.size()) == 1 &&
                  EVP_MAC_final(ctx.get(), mac, &mac_len, sizeof mac) == 1 &&
                  mac_len == kHs256Bytes && CRYPTO_memcmp(mac, sig, kHs256Bytes) == 0;
        if (!ok) ERR_clear_error();
        return ok;
    }

    // RS256: exactly the modulus size (RFC 8017 §8.2.2). ES256: raw R||S
    // (RFC 7518 §3.4), re-encoded as the DER that OpenSSL verifies.
    unsigned char der[2 + 2 * (3 + kEs256CoordinateBytes)];
    std::size_t der_len = 0;
    if (alg == Alg::kRS256) {
        if (signature.size() != keys_->rsa_signature_bytes) return false;
    } else {
        if (signature.size() != 2 * kEs256CoordinateBytes) return false;
        const unsigned char *r = sig, *s = sig + kEs256CoordinateBytes;
        *error = "signature mismatch";
        // r = 0 or s = 0 verifies anything in a broken ECDSA (CVE-2022-21449).
        if (all_zero(r, kEs256CoordinateBytes) || all_zero(s, kEs256CoordinateBytes)) return false;
        der[0] = 0x30;
        der_len = 2;
        append_der_integer(r, kEs256CoordinateBytes, der, &der_len);
        append_der_integer(s, kEs256CoordinateBytes, der, &der_len);
        der[1] = static_cast<unsigned char>(der_len - 2);
        sig = der;
    }
    *error = "signature mismatch";
    MdCtxPtr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX *pctx = nullptr;
    bool ok = ctx &&
              EVP_DigestVerifyInit(ctx.get(), &pctx, keys_->sha256.get(), nullptr,
                                   keys_->public_key.get()) == 1 &&
              (alg != Alg::kRS256 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1) &&
              EVP_DigestVerify(ctx.get(), sig, alg == Alg::kRS256 ? signature.size() : der_len,
                               data, signing_input.size()) == 1;
    if (!ok) ERR_clear_error();
    return ok;
}

const char *JwtVerifier::check_claims(const std::string &payload, std::int64_t now,
                                      std::vector<std::string> *workspaces) const {
    simdjson::dom::object claims;
    if (!parse_object(payload, &claims)) return "malformed payload";

    // One pass; a claim we act on may appear once only, since parsers
    // disagree on which duplicate wins.
    enum { kExp, kNbf, kIat, kIss, kAud, kWorkspaces, kCount };
    const std::string_view names[kCount] = {"exp", "nbf", "iat", "iss", "aud", workspace_claim_};
    element found[kCount];
    bool present[kCount] = {};
    for (auto field : claims) {
        for (int i = 0; i < kCount; ++i) {
            if (field.key != names[i]) continue;
            if (present[i]) return "duplicate claim";
            present[i] = true;
            found[i] = field.value;
        }
    }

    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    const std::int64_t earliest = now > kMin + kLeewaySeconds ? now - kLeewaySeconds : kMin;
    const std::int64_t latest = now < kMax - kLeewaySeconds ? now + kLeewaySeconds : kMax;
    std::int64_t t = 0;
    if (!present[kExp]) return "missing exp claim";
    if (!numeric_date(found[kExp], &t)) return "invalid exp claim";
    if (t <= earliest) return "token expired";  // expired once now >= exp + leeway
    if (present[kNbf]) {
        if (!numeric_date(found[kNbf], &t)) return "invalid nbf claim";
        if (t > latest) return "token not yet valid";
    }
    if (present[kIat]) {
        if (!numeric_date(found[kIat], &t)) return "invalid iat claim";
        if (t > latest) return "token issued in the future";
    }

    std::string_view text;
    if (!issuer_.empty() &&
        (!present[kIss] || found[kIss].get_string().get(text) != simdjson::SUCCESS ||
         text != issuer_))
        return "issuer mismatch";
    if (!audience_.empty()) {
        std::vector<std::string> audiences;
        if (!present[kAud] || !string_or_strings(found[kAud], &audiences))
            return "audience mismatch";
        bool ours = false;
        for (const std::string &a : audiences) ours = ours || a == audience_;
        if (!ours) return "audience mismatch";
    }

    if (!present[kWorkspaces]) return "missing workspace claim";
    if (!string_or_strings(found[kWorkspaces], workspaces)) return "invalid workspace claim";
    return nullptr;
}

}  // namespace perpetuo
