#include "provider_url.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace perpetuo {
namespace {

struct AcceptedUrl {
    std::string name;
    std::string url;
    bool tls;
    std::string host;
    int port;
    std::string path;
    std::string host_header;
};

void PrintTo(const AcceptedUrl &c, std::ostream *os) {
    *os << c.name;
}

class AcceptedUrlTest : public ::testing::TestWithParam<AcceptedUrl> {};

TEST_P(AcceptedUrlTest, SplitsIntoSchemeHostPortAndBasePath) {
    const AcceptedUrl &c = GetParam();
    std::string error;
    std::optional<ProviderUrl> url = parse_provider_url(c.url, &error);
    ASSERT_TRUE(url.has_value()) << c.url << ": " << error;
    EXPECT_EQ(url->tls, c.tls);
    EXPECT_EQ(url->host, c.host);
    EXPECT_EQ(url->port, c.port);
    EXPECT_EQ(url->path, c.path);
    EXPECT_EQ(host_header(*url), c.host_header);
}

const AcceptedUrl kAccepted[] = {
    {"HttpsDefaultPort", "https://api.openai.com", true, "api.openai.com", 443, "",
     "api.openai.com"},
    {"HttpDefaultPort", "http://localhost", false, "localhost", 80, "", "localhost"},
    {"TrailingV1Stripped", "https://api.openai.com/v1", true, "api.openai.com", 443, "",
     "api.openai.com"},
    {"TrailingSlashStripped", "https://api.anthropic.com/", true, "api.anthropic.com", 443, "",
     "api.anthropic.com"},
    {"TrailingV1AndSlashStripped", "https://api.openai.com/v1/", true, "api.openai.com", 443, "",
     "api.openai.com"},
    {"SeveralTrailingSlashes", "https://api.openai.com/v1//", true, "api.openai.com", 443, "",
     "api.openai.com"},
    {"ExplicitPort", "http://localhost:8000/v1", false, "localhost", 8000, "", "localhost:8000"},
    {"ExplicitDefaultPortOmittedFromHost", "https://api.openai.com:443/v1", true, "api.openai.com",
     443, "", "api.openai.com"},
    {"HttpOnPort443KeepsThePort", "http://proxy.internal:443", false, "proxy.internal", 443, "",
     "proxy.internal:443"},
    {"HttpsOnPort80KeepsThePort", "https://proxy.internal:80", true, "proxy.internal", 80, "",
     "proxy.internal:80"},
    {"HighestPort", "http://h:65535", false, "h", 65535, "", "h:65535"},
    {"LeadingZerosInPort", "http://h:0080", false, "h", 80, "", "h"},
    {"BasePathKept", "https://gateway.example.com/openai/v1", true, "gateway.example.com", 443,
     "/openai", "gateway.example.com"},
    // Only a trailing /v1 is the SDK habit; one inside the base path is the provider's.
    {"InnerV1Kept", "https://gateway.ai.cloudflare.com/v1/acct/gw/openai", true,
     "gateway.ai.cloudflare.com", 443, "/v1/acct/gw/openai", "gateway.ai.cloudflare.com"},
    {"V1SuffixWithoutSlashKept", "https://h.example/apiv1", true, "h.example", 443, "/apiv1",
     "h.example"},
    {"V10Kept", "https://h.example/v10", true, "h.example", 443, "/v10", "h.example"},
    {"Ipv4Literal", "http://10.0.0.7:11434/v1", false, "10.0.0.7", 11434, "", "10.0.0.7:11434"},
    {"Ipv6LiteralWithPort", "http://[::1]:11434/v1", false, "::1", 11434, "", "[::1]:11434"},
    {"Ipv6LiteralDefaultPort", "https://[2001:db8::1]/base/", true, "2001:db8::1", 443, "/base",
     "[2001:db8::1]"},
    {"Ipv4MappedIpv6", "http://[::ffff:192.0.2.1]:8080", false, "::ffff:192.0.2.1", 8080, "",
     "[::ffff:192.0.2.1]:8080"},
    {"UnderscoreAndDashInHost", "http://my_llm-box.lan:8080", false, "my_llm-box.lan", 8080, "",
     "my_llm-box.lan:8080"},
};

INSTANTIATE_TEST_SUITE_P(ProviderUrls, AcceptedUrlTest, ::testing::ValuesIn(kAccepted),
                         [](const auto &info) { return info.param.name; });

struct RefusedUrl {
    std::string name;
    std::string url;
    std::string reason;
};

void PrintTo(const RefusedUrl &c, std::ostream *os) {
    *os << c.name;
}

class RefusedUrlTest : public ::testing::TestWithParam<RefusedUrl> {};

TEST_P(RefusedUrlTest, SaysWhy) {
    const RefusedUrl &c = GetParam();
    std::string error;
    EXPECT_FALSE(parse_provider_url(c.url, &error).has_value()) << c.url;
    EXPECT_EQ(error, c.reason) << c.url;
}

const std::string kScheme = "must start with http:// or https://";
const std::string kExtras = "must not hold a query, fragment or credentials";
const std::string kBadPort = "has an invalid port";

const RefusedUrl kRefused[] = {
    {"Empty", "", kScheme},
    {"NoScheme", "api.openai.com/v1", kScheme},
    {"OtherScheme", "ftp://files.example.com", kScheme},
    {"WebSocketScheme", "wss://api.example.com", kScheme},
    {"UppercaseScheme", "HTTPS://api.openai.com", kScheme},
    {"LeadingSpace", " https://api.openai.com", kScheme},
    {"SchemeWithoutSlashes", "https:api.openai.com", kScheme},
    {"Credentials", "https://user:secret@api.openai.com", kExtras},
    {"Query", "https://api.openai.com/v1?api-version=2024-06-01", kExtras},
    {"Fragment", "https://api.openai.com/v1#x", kExtras},
    {"NoHost", "https://", "has no host"},
    {"NoHostButPath", "https:///v1", "has no host"},
    {"NoHostButPort", "http://:8080", "has no host"},
    {"EmptyIpv6Literal", "http://[]:8080", "has no host"},
    {"EmptyPort", "http://localhost:", "has an empty port"},
    {"EmptyPortBeforePath", "http://localhost:/v1", "has an empty port"},
    {"PortZero", "http://localhost:0", kBadPort},
    {"PortTooLarge", "http://localhost:65536", kBadPort},
    {"PortOverflowingInt", "http://localhost:99999999999999999999", kBadPort},
    {"PortWithLetters", "http://localhost:80a", kBadPort},
    {"NegativePort", "http://localhost:-1", kBadPort},
    {"SpaceInHost", "http://my host", "has an invalid host name"},
    {"TwoPorts", "http://localhost:80:90", "has an invalid host name"},
    {"BareIpv6", "http://::1:8080", "has an invalid host name"},
    {"PercentInHost", "http://ho%73t", "has an invalid host name"},
    {"UnterminatedIpv6", "http://[::1:8080/v1", "has an unterminated IPv6 literal"},
    {"JunkAfterIpv6", "http://[::1]x:8080", "has junk after the IPv6 literal"},
    {"EmptyPortAfterIpv6", "http://[::1]:", "has an empty port"},
    {"BadPortAfterIpv6", "http://[::1]:70000", kBadPort},
    {"Ipv6ZoneId", "http://[fe80::1%25eth0]", "has an invalid IPv6 literal"},
    {"Ipv6WithLetters", "http://[::g1]", "has an invalid IPv6 literal"},
};

INSTANTIATE_TEST_SUITE_P(ProviderUrls, RefusedUrlTest, ::testing::ValuesIn(kRefused),
                         [](const auto &info) { return info.param.name; });

}  // namespace
}  // namespace perpetuo
