#include "digest.hpp"

#include <openssl/evp.h>

namespace perpetuo {

namespace {

std::string digest_hex(std::string_view data, const EVP_MD *md) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), digest, &len, md, nullptr);
    static const char kHex[] = "0123456789abcdef";
    std::string out(len * 2, '0');
    for (unsigned int i = 0; i < len; ++i) {
        out[2 * i] = kHex[digest[i] >> 4];
        out[2 * i + 1] = kHex[digest[i] & 0xf];
    }
    return out;
}

// Fetched once: OpenSSL 3 otherwise looks the algorithm up in its provider
// store, under a lock, on every digest (every gateway call hashes its key).
const EVP_MD *fetched(const char *name) { return EVP_MD_fetch(nullptr, name, nullptr); }

}  // namespace

std::string sha256_hex(std::string_view data) {
    static const EVP_MD *md = fetched("SHA256");
    return digest_hex(data, md ? md : EVP_sha256());
}

std::string sha1_hex(std::string_view data) {
    static const EVP_MD *md = fetched("SHA1");
    return digest_hex(data, md ? md : EVP_sha1());
}

}  // namespace perpetuo
