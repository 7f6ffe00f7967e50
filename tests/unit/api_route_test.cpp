#include "api_route.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace perpetuo {
namespace {

struct RouteCase {
    std::string name;
    std::string path;
    Api api;
};

void PrintTo(const RouteCase &c, std::ostream *os) {
    *os << c.name;
}

class ApiFromPathTest : public ::testing::TestWithParam<RouteCase> {};

TEST_P(ApiFromPathTest, MatchesTheTrailingSegments) {
    EXPECT_EQ(api_from_path(GetParam().path), GetParam().api) << GetParam().path;
}

const RouteCase kRoutes[] = {
    {"Chat", "/v1/chat/completions", Api::kChatCompletions},
    {"ChatUnderPrefix", "/team-a/v1/chat/completions", Api::kChatCompletions},
    {"ChatUnderDeepPrefix", "/llm/eu/team-a/v1/chat/completions", Api::kChatCompletions},
    {"ChatTrailingSlash", "/v1/chat/completions/", Api::kChatCompletions},
    {"ChatSeveralTrailingSlashes", "/v1/chat/completions//", Api::kChatCompletions},
    {"ChatWithoutVersion", "/chat/completions", Api::kChatCompletions},
    {"ChatWithoutLeadingSlash", "chat/completions", Api::kChatCompletions},
    {"Completions", "/v1/completions", Api::kCompletions},
    {"CompletionsUnderPrefix", "/team-a/v1/completions", Api::kCompletions},
    {"Embeddings", "/v1/embeddings", Api::kEmbeddings},
    {"EmbeddingsUnderPrefix", "/team-a/v1/embeddings/", Api::kEmbeddings},
    {"Messages", "/v1/messages", Api::kMessages},
    {"MessagesUnderPrefix", "/anthropic/v1/messages", Api::kMessages},
    {"Models", "/v1/models", Api::kUnknown},
    {"Root", "/", Api::kUnknown},
    {"Empty", "", Api::kUnknown},
    {"SuffixGlued", "/v1/chat/completionsx", Api::kUnknown},
    {"MessagesGluedToPrefix", "/v1/xmessages", Api::kUnknown},
    {"EmbeddingsGluedToPrefix", "/v1/my-embeddings", Api::kUnknown},
    {"CountTokens", "/v1/messages/count_tokens", Api::kUnknown},
    {"CaseMatters", "/v1/Chat/Completions", Api::kUnknown},
};

INSTANTIATE_TEST_SUITE_P(Paths, ApiFromPathTest, ::testing::ValuesIn(kRoutes),
                         [](const auto &info) { return info.param.name; });

// "chat/completions" must match whole segments only.
TEST(ApiFromPath, GluedChatSegmentIsNotChat) {
    EXPECT_NE(api_from_path("/v1/xchat/completions"), Api::kChatCompletions);
    EXPECT_NE(api_from_path("/team-a/v1/mychat/completions/"), Api::kChatCompletions);
}

const Api kKnownApis[] = {Api::kChatCompletions, Api::kCompletions, Api::kEmbeddings,
                          Api::kMessages};

TEST(CanonicalPath, ProviderSidePaths) {
    EXPECT_EQ(canonical_path(Api::kChatCompletions), "/v1/chat/completions");
    EXPECT_EQ(canonical_path(Api::kCompletions), "/v1/completions");
    EXPECT_EQ(canonical_path(Api::kEmbeddings), "/v1/embeddings");
    EXPECT_EQ(canonical_path(Api::kMessages), "/v1/messages");
    EXPECT_EQ(canonical_path(Api::kUnknown), "");
}

TEST(CanonicalPath, RoutesBackToItsApi) {
    for (Api api : kKnownApis) EXPECT_EQ(api_from_path(canonical_path(api)), api);
}

}  // namespace
}  // namespace perpetuo
