#include <gtest/gtest.h>

#include "config_yaml.hpp"
#include "request_body.hpp"

namespace perpetuo {
namespace {

TEST(RequestDepthLimit, DeeperThanTheLimitIsRefused) {
    std::string body = R"({"model":"m","messages":[[[[[[[[1]]]]]]]]})";
    RequestError error;
    EXPECT_TRUE(parse_request(body, &error, 64));
    EXPECT_FALSE(parse_request(body, &error, 8));
    EXPECT_NE(error.message.find("deep"), std::string::npos) << error.message;
    EXPECT_TRUE(parse_request(body, &error, 64)) << "the limit is per call, not sticky";
}

const char *kBase = R"(
providers:
  p: { kind: openai_compatible, base_url: http://127.0.0.1:1 }
models:
  m: [ { provider: p, model: m, price: { input_per_mtok: 1, output_per_mtok: 1 } } ]
)";

Config load(const std::string &extra) {
    return load_config_text(kBase + extra, "perpetuo.yaml",
                            [](const std::string &) { return std::nullopt; });
}

TEST(LimitsConfig, DefaultsAreSafe) {
    LimitsConfig limits = load("").limits;
    EXPECT_EQ(limits.max_json_depth, 64u);
    EXPECT_EQ(limits.max_sse_event, 1u << 20);
    EXPECT_EQ(limits.max_response_json, 8u << 20);
}

TEST(LimitsConfig, SizesInNginxNotation) {
    LimitsConfig limits =
        load("limits: { max_json_depth: 32, max_sse_event: 256k, max_response_json: 2m }").limits;
    EXPECT_EQ(limits.max_json_depth, 32u);
    EXPECT_EQ(limits.max_sse_event, 256u * 1024);
    EXPECT_EQ(limits.max_response_json, 2u << 20);
}

TEST(LimitsConfig, MistakesAreLocated) {
    for (const char *bad : {"limits: { max_sse_event: 1g }", "limits: { max_json_depth: 2 }",
                            "limits: { max_response_json: 12 }", "limits: { max_body: 1m }"}) {
        try {
            load(bad);
            ADD_FAILURE() << bad;
        } catch (const ConfigError &e) {
            EXPECT_EQ(e.line(), 6) << bad;
            EXPECT_EQ(e.key().rfind("limits.", 0), 0u) << e.what();
        }
    }
}

}  // namespace
}  // namespace perpetuo
