// Verifies the Bearer JWTs of the analytics endpoints, strictly (RFC 8725):
// the algorithm comes from the operator's allow-list and each key serves one
// algorithm only, so the token's header can never pick how it is checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace perpetuo {

class JwtVerifier {
  public:
    // Checked before any decoding, so a hostile token costs no more than this.
    static constexpr std::size_t kMaxTokenBytes = 8192;
    // Clock skew allowed on exp, nbf and iat, each on its own.
    static constexpr std::int64_t kLeewaySeconds = 60;

    // Loads every key once. Throws std::runtime_error for a configuration that
    // cannot be verified against: an unknown or missing algorithm, an empty
    // HS256 secret, a bad PEM, an RSA key under 2048 bits, an EC key not on
    // P-256, or a public key whose type does not match the configured
    // RS256/ES256 (each configured algorithm must have its key).
    explicit JwtVerifier(const JwtConfig &config);

    struct Result {
        bool ok = false;
        std::string error;  // short, fixed text, safe to show a client; never echoes the token
        std::vector<std::string> workspaces;
    };

    // `now_seconds` is Unix time. exp is required; exp, nbf and iat must be
    // integers (RFC 7519 NumericDate without fractions); a token is expired
    // from exp + leeway on. The workspace claim is a string or an array of strings.
    Result verify(std::string_view token, std::int64_t now_seconds) const noexcept;

  private:
    enum class Alg { kHS256, kRS256, kES256 };
    struct Keys;  // OpenSSL objects, loaded once and shared by copies of the verifier

    Result verify_or_throw(std::string_view token, std::int64_t now_seconds) const;
    bool signature_matches(Alg alg, std::string_view signing_input, const std::string &signature,
                           const char **error) const;
    const char *check_claims(const std::string &payload, std::int64_t now_seconds,
                             std::vector<std::string> *workspaces) const;

    std::shared_ptr<const Keys> keys_;
    std::string issuer_;
    std::string audience_;
    std::string workspace_claim_;
};

}  // namespace perpetuo
