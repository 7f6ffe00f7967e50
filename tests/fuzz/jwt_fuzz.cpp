// JwtVerifier::verify on arbitrary bytes. A fuzzer cannot forge signatures,
// so besides raw tokens (mode '0') it may hand over a signing input ('1') or
// the header and payload JSON separated by a newline ('2'), which are then
// validly HS256-signed here: that reaches the header and claim checks.
#include <openssl/evp.h>

#include <fstream>
#include <sstream>

#include "base64url.hpp"
#include "fuzz_support.hpp"
#include "jwt.hpp"

namespace {

using perpetuo::JwtConfig;
using perpetuo::JwtVerifier;
using perpetuo::fuzz::check;

constexpr char kSecret[] = "fuzz-hs256-secret-of-32-bytes-ok";
constexpr std::int64_t kNow = 1700000000;

std::string read_key(const char *name) {
    std::ifstream in(std::string(PERPETUO_JWT_FIXTURES) + "/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

const JwtVerifier &verifier() {
    static const JwtVerifier v([] {
        JwtConfig c;
        c.algorithms = {"HS256", "RS256"};
        c.hs256_secret = kSecret;
        c.public_key_pem = read_key("rsa_public.pem");
        c.issuer = "https://idp.example.com";
        c.audience = "perpetuo";
        return c;
    }());
    return v;
}

std::string hs256_signed(const std::string &signing_input) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    std::size_t len = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, kSecret, sizeof kSecret - 1,
              reinterpret_cast<const unsigned char *>(signing_input.data()), signing_input.size(),
              mac, sizeof mac, &len);
    return signing_input + "." +
           perpetuo::base64url_encode(std::string_view(reinterpret_cast<char *>(mac), len));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view input = perpetuo::fuzz::as_text(data, size);
    if (input.empty()) return 0;
    const char mode = input[0];
    input.remove_prefix(1);
    std::string token;
    if (mode == '1') {
        token = hs256_signed(std::string(input));
    } else if (mode == '2') {
        std::size_t newline = input.find('\n');
        if (newline == std::string_view::npos) return 0;
        token = hs256_signed(perpetuo::base64url_encode(input.substr(0, newline)) + "." +
                             perpetuo::base64url_encode(input.substr(newline + 1)));
    } else {
        token = std::string(input);
    }
    JwtVerifier::Result r = verifier().verify(token, kNow);
    check(r.ok == r.error.empty(), "an error exactly when refused");
    check(r.ok || r.workspaces.empty(), "no workspaces from a refused token");
    check(!r.ok || token.size() <= JwtVerifier::kMaxTokenBytes, "size limit");
    check(r.error.size() < 64, "errors are short and never echo the token");
    return 0;
}
