#include "usage_json.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <ostream>
#include <string>

#include "test_support.hpp"

namespace perpetuo {
namespace {

using testing_support::describe;
using testing_support::make_usage;

// simdjson reads past the end of its input; padded_string provides the room.
struct Padded {
    explicit Padded(std::string_view json) : text(json) {}
    std::string_view view() const { return std::string_view(text.data(), text.size()); }
    std::size_t capacity() const { return text.size() + simdjson::SIMDJSON_PADDING; }
    simdjson::padded_string text;
};

UsageReading read_openai(std::string_view json) {
    Padded padded(json);
    return read_openai_json(padded.view(), padded.capacity());
}

UsageReading read_anthropic(std::string_view json, AnthropicPart part) {
    Padded padded(json);
    return read_anthropic_json(padded.view(), padded.capacity(), part);
}

struct ReadingCase {
    std::string name;
    std::string json;
    AnthropicPart part;  // ignored for OpenAI
    bool ok;
    bool has_usage;
    Usage usage;  // compared when has_usage
    std::int64_t text_bytes = 0;
    bool usage_only = false;
};

void PrintTo(const ReadingCase &c, std::ostream *os) {
    *os << c.name;
}

void expect_reading(const UsageReading &reading, const ReadingCase &c) {
    EXPECT_EQ(reading.ok, c.ok);
    EXPECT_EQ(reading.has_usage, c.has_usage);
    if (c.has_usage) {
        EXPECT_EQ(describe(reading.usage), describe(c.usage));
    }
    EXPECT_EQ(reading.text_bytes, c.text_bytes);
    EXPECT_EQ(reading.usage_only, c.usage_only);
}

// OpenAI's prompt_tokens includes the cached ones: uncached = prompt - cached.
Usage openai_usage(std::int64_t uncached, std::int64_t cached, std::int64_t output) {
    return make_usage(uncached, cached, 0, output, true, false);
}

const Usage kNoUsage;
constexpr AnthropicPart kAnyPart = AnthropicPart::kBody;

class OpenAiReadingTest : public ::testing::TestWithParam<ReadingCase> {};

TEST_P(OpenAiReadingTest, Reads) {
    expect_reading(read_openai(GetParam().json), GetParam());
}

const ReadingCase kOpenAiReadings[] = {
    {"ChatBodyWithCachedTokens",
     R"({"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06",)"
     R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hi there!","refusal":null},)"
     R"("logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1500,)"
     R"("completion_tokens":40,"total_tokens":1540,"prompt_tokens_details":{"cached_tokens":1280,)"
     R"("audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},)"
     R"("system_fingerprint":"fp_1"})",
     kAnyPart, true, true, openai_usage(220, 1280, 40), 9},
    {"ChatBodyWithoutDetails",
     R"({"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":10,"completion_tokens":2}})",
     kAnyPart, true, true, openai_usage(10, 0, 2), 2},
    {"UsageBeforeChoices",
     R"({"usage":{"completion_tokens":2,"prompt_tokens":10},"choices":[{"message":{"content":"ok"}}]})",
     kAnyPart, true, true, openai_usage(10, 0, 2), 2},
    {"CachedClampedToPrompt",
     R"({"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":1,)"
     R"("prompt_tokens_details":{"cached_tokens":50}}})",
     kAnyPart, true, true, openai_usage(0, 10, 1), 0, true},
    {"NegativeCountsAreZero",
     R"({"choices":[{"message":{"content":null}}],"usage":{"prompt_tokens":-3,"completion_tokens":-1}})",
     kAnyPart, true, true, openai_usage(0, 0, 0)},
    {"StreamChunkWithNullUsage",
     R"({"id":"c","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null})",
     kAnyPart, true, false, kNoUsage, 5},
    {"UsageOnlyChunk",
     R"({"id":"c","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":9,)"
     R"("prompt_tokens_details":{"cached_tokens":1024}}})",
     kAnyPart, true, true, openai_usage(176, 1024, 9), 0, true},
    // Servers that report usage on every chunk: the chunk still carries text.
    {"ChunkWithTextAndUsage",
     R"({"choices":[{"delta":{"content":"Hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}})",
     kAnyPart, true, true, openai_usage(5, 0, 1), 2},
    {"LegacyCompletionText",
     R"({"object":"text_completion","choices":[{"text":"Once upon","index":0},{"text":" a time"}],)"
     R"("usage":{"prompt_tokens":3,"completion_tokens":4}})",
     kAnyPart, true, true, openai_usage(3, 0, 4), 16},
    {"Embeddings",
     R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0091]}],)"
     R"("model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})",
     kAnyPart, true, true, openai_usage(8, 0, 0)},
    {"ResponsesApiNames",
     R"({"usage":{"input_tokens":300,"output_tokens":20,"input_tokens_details":{"cached_tokens":100}}})",
     kAnyPart, true, true, openai_usage(200, 100, 20)},
    {"ToolCallDeltaHasNoText",
     R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]})",
     kAnyPart, true, false, kNoUsage},
    {"EscapedTextCountsDecodedBytes", R"({"choices":[{"delta":{"content":"caf\u00e9\n"}}]})",
     kAnyPart, true, false, kNoUsage, 6},
    {"Truncated", R"({"choices":[],"usage":{"prompt_tokens":1)", kAnyPart, false, false, kNoUsage},
    {"NotJson", "[DONE]", kAnyPart, false, false, kNoUsage},
    {"Empty", "", kAnyPart, false, false, kNoUsage},
    {"NotAnObject", R"([{"usage":{"prompt_tokens":1}}])", kAnyPart, false, false, kNoUsage},
};

INSTANTIATE_TEST_SUITE_P(Documents, OpenAiReadingTest, ::testing::ValuesIn(kOpenAiReadings),
                         [](const auto &info) { return info.param.name; });

class AnthropicReadingTest : public ::testing::TestWithParam<ReadingCase> {};

TEST_P(AnthropicReadingTest, Reads) {
    expect_reading(read_anthropic(GetParam().json, GetParam().part), GetParam());
}

// Anthropic's input_tokens excludes cache reads and writes: no subtraction.
Usage anthropic_usage(std::int64_t input, std::int64_t cache_read, std::int64_t cache_write,
                      std::int64_t output) {
    return make_usage(input, cache_read, cache_write, output, true, false);
}

const ReadingCase kAnthropicReadings[] = {
    {"BodyWithCache",
     R"({"id":"msg_01","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022",)"
     R"("content":[{"type":"text","text":"Hi there"},{"type":"tool_use","id":"t","name":"f",)"
     R"("input":{"q":"x"}}],"stop_reason":"end_turn","stop_sequence":null,)"
     R"("usage":{"input_tokens":100,"cache_creation_input_tokens":2000,)"
     R"("cache_read_input_tokens":10000,"output_tokens":50}})",
     AnthropicPart::kBody, true, true, anthropic_usage(100, 10000, 2000, 50), 8},
    {"MessageStart",
     R"({"type":"message_start","message":{"id":"msg_01","content":[],"usage":{"input_tokens":472,)"
     R"("cache_creation_input_tokens":256,"cache_read_input_tokens":2048,"output_tokens":2}}})",
     AnthropicPart::kMessageStart, true, true, anthropic_usage(472, 2048, 256, 2)},
    {"MessageStartWithoutUsage", R"({"type":"message_start","message":{"id":"msg_01"}})",
     AnthropicPart::kMessageStart, true, false, kNoUsage},
    {"MessageDelta",
     R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":12}})",
     AnthropicPart::kMessageDelta, true, true, anthropic_usage(0, 0, 0, 12)},
    {"MessageDeltaWithoutUsage", R"({"type":"message_delta","delta":{"stop_reason":null}})",
     AnthropicPart::kMessageDelta, true, false, kNoUsage},
    {"TextDelta",
     R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})",
     AnthropicPart::kContentDelta, true, false, kNoUsage, 5},
    {"ToolInputDeltaHasNoText",
     R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"q\""}})",
     AnthropicPart::kContentDelta, true, false, kNoUsage},
    // A usage object where the part does not carry one is not read.
    {"UsageIgnoredInContentDelta",
     R"({"type":"content_block_delta","delta":{"text":"a"},"usage":{"output_tokens":99}})",
     AnthropicPart::kContentDelta, true, false, kNoUsage, 1},
    {"PingIsNothing", R"({"type": "ping"})", AnthropicPart::kOther, true, false, kNoUsage},
    {"Truncated", R"({"type":"message_delta","usage":{"output_tokens":1)",
     AnthropicPart::kMessageDelta, false, false, kNoUsage},
    {"NotAnObject", "42", AnthropicPart::kBody, false, false, kNoUsage},
};

INSTANTIATE_TEST_SUITE_P(Documents, AnthropicReadingTest, ::testing::ValuesIn(kAnthropicReadings),
                         [](const auto &info) { return info.param.name; });

TEST(AnthropicPart, NamedByEventType) {
    EXPECT_EQ(anthropic_part("message_start"), AnthropicPart::kMessageStart);
    EXPECT_EQ(anthropic_part("message_delta"), AnthropicPart::kMessageDelta);
    EXPECT_EQ(anthropic_part("content_block_delta"), AnthropicPart::kContentDelta);
    for (const char *other : {"message_stop", "content_block_start", "content_block_stop", "ping",
                              "error", "message", ""})
        EXPECT_EQ(anthropic_part(other), AnthropicPart::kOther) << other;
}

}  // namespace
}  // namespace perpetuo
