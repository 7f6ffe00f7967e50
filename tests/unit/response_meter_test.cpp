#include "response_meter.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <tuple>

#include "request_body.hpp"
#include "test_support.hpp"

namespace perpetuo {
namespace {

using testing_support::Chunks;
using testing_support::cut_before;
using testing_support::describe;
using testing_support::differs;
using testing_support::expect_every_chunking;
using testing_support::kLineEnds;
using testing_support::LineEnd;
using testing_support::make_usage;
using testing_support::read_fixture;
using testing_support::sse_blocks;
using testing_support::with_line_ends;

const Price kGpt4o{2500000, 10000000, 1250000, 2500000};
const Price kClaudeSonnet{3000000, 15000000, 300000, 3750000};

struct MeterSetup {
    WireFormat format = WireFormat::kOpenAI;
    bool event_stream = false;
    bool drop_usage_chunk = false;
    MeterLimits limits;
    std::int64_t prompt_bytes = 0;
};

struct Metered {
    Usage usage;
    std::string out;  // rewrite mode only
    bool rewrites = false;
    bool malformed = false;
    bool finished = false;
    std::uint64_t bytes_seen = 0;
    std::uint64_t oversized = 0;
};

Metered run_meter(const MeterSetup &setup, const Chunks &chunks) {
    ResponseMeter meter(setup.format, setup.event_stream, setup.drop_usage_chunk, setup.limits);
    Metered m;
    m.rewrites = meter.rewrites();
    std::string *out = m.rewrites ? &m.out : nullptr;
    for (std::string_view chunk : chunks) meter.feed(chunk, out);
    EXPECT_FALSE(meter.finished());
    meter.finish(out);
    m.usage = meter.final_usage(setup.prompt_bytes);
    m.malformed = meter.malformed();
    m.finished = meter.finished();
    m.bytes_seen = meter.bytes_seen();
    m.oversized = meter.oversized_events();
    return m;
}

Metered run_meter(const MeterSetup &setup, std::string_view whole) {
    return run_meter(setup, Chunks{whole});
}

// However the body or stream is cut, the bill is the same.
void expect_usage_whatever_the_chunking(const MeterSetup &setup, std::string_view input,
                                        const Usage &expected) {
    expect_every_chunking(input, [&](const Chunks &chunks) {
        return differs("usage", describe(run_meter(setup, chunks).usage), describe(expected));
    });
}

MeterSetup json_body(WireFormat format, std::int64_t prompt_bytes = 0) {
    MeterSetup setup;
    setup.format = format;
    setup.prompt_bytes = prompt_bytes;
    return setup;
}

MeterSetup event_stream(WireFormat format, std::int64_t prompt_bytes = 0) {
    MeterSetup setup = json_body(format, prompt_bytes);
    setup.event_stream = true;
    return setup;
}

const std::string kOpenAiBody =
    R"({"id":"chatcmpl-B1","object":"chat.completion","created":1729155022,)"
    R"("model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant",)"
    R"("content":"Paris.","refusal":null},"logprobs":null,"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":1500,"completion_tokens":40,"total_tokens":1540,)"
    R"("prompt_tokens_details":{"cached_tokens":1280,"audio_tokens":0},)"
    R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},)"
    R"("system_fingerprint":"fp_a7d06e42a7"})";

TEST(ResponseMeterJson, OpenAiBodyWithCachedTokens) {
    MeterSetup setup = json_body(WireFormat::kOpenAI, 9999);
    Metered m = run_meter(setup, kOpenAiBody);
    Usage expected = make_usage(220, 1280, 0, 40, true, false);
    EXPECT_EQ(describe(m.usage), describe(expected));
    EXPECT_FALSE(m.rewrites);
    EXPECT_FALSE(m.malformed);
    EXPECT_TRUE(m.finished);
    EXPECT_EQ(m.bytes_seen, kOpenAiBody.size());
    // 220 * 2.50 + 1280 * 1.25 + 40 * 10 = 550 + 1600 + 400
    EXPECT_EQ(cost_micros(m.usage, kGpt4o), 2550);
    expect_usage_whatever_the_chunking(setup, kOpenAiBody, expected);
}

TEST(ResponseMeterJson, AnthropicBodyWithCacheReadAndWrite) {
    const std::string body =
        R"({"id":"msg_01","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022",)"
        R"("content":[{"type":"text","text":"Paris."}],"stop_reason":"end_turn",)"
        R"("stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":2000,)"
        R"("cache_read_input_tokens":10000,"output_tokens":50}})";
    MeterSetup setup = json_body(WireFormat::kAnthropic, 9999);
    Usage expected = make_usage(100, 10000, 2000, 50, true, false);
    Metered m = run_meter(setup, body);
    EXPECT_EQ(describe(m.usage), describe(expected));
    // 100 * 3 + 10000 * 0.30 + 2000 * 3.75 + 50 * 15 = 300 + 3000 + 7500 + 750
    EXPECT_EQ(cost_micros(m.usage, kClaudeSonnet), 11550);
    expect_usage_whatever_the_chunking(setup, body, expected);
}

TEST(ResponseMeterJson, EmbeddingsUsage) {
    const std::string body =
        R"({"object":"list","data":[{"object":"embedding","index":0,)"
        R"("embedding":[0.0023064255,-0.009327292,0.015797347]}],)"
        R"("model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})";
    Metered m = run_meter(json_body(WireFormat::kOpenAI, 9999), body);
    EXPECT_EQ(describe(m.usage), describe(make_usage(8, 0, 0, 0, true, false)));
}

TEST(ResponseMeterJson, BodyWithoutUsageIsEstimatedFromItsText) {
    const std::string body = R"({"choices":[{"message":{"content":"Hello world!"}}]})";
    Metered m = run_meter(json_body(WireFormat::kOpenAI, 40), body);
    // 40 prompt bytes -> 10 tokens; "Hello world!" is 12 bytes -> 3 tokens.
    EXPECT_EQ(describe(m.usage), describe(make_usage(10, 0, 0, 3, false, true)));
    EXPECT_FALSE(m.malformed);
}

TEST(ResponseMeterJson, MalformedBodyIsEstimated) {
    const std::string body = R"({"id":"chatcmpl-1","choices":[{"message":{"content":"Hi the)";
    Metered m = run_meter(json_body(WireFormat::kOpenAI, 40), body);
    EXPECT_TRUE(m.malformed);
    EXPECT_TRUE(m.finished);
    Usage expected = make_usage(10, 0, 0, estimate_tokens(body.size()), false, true);
    EXPECT_EQ(describe(m.usage), describe(expected));
}

TEST(ResponseMeterJson, BodyOverTheLimitIsNotParsed) {
    MeterSetup setup = json_body(WireFormat::kOpenAI, 400);
    setup.limits.max_json_body = kOpenAiBody.size();
    EXPECT_EQ(describe(run_meter(setup, kOpenAiBody).usage),
              describe(make_usage(220, 1280, 0, 40, true, false)))
        << "a body of exactly max_json_body is still read";

    setup.limits.max_json_body = kOpenAiBody.size() - 1;
    expect_every_chunking(kOpenAiBody, [&](const Chunks &chunks) {
        Metered m = run_meter(setup, chunks);
        return differs("usage", describe(m.usage),
                       describe(make_usage(100, 0, 0, 0, false, true))) +
               differs("malformed", m.malformed, false) +
               differs("bytes_seen", m.bytes_seen, std::uint64_t{kOpenAiBody.size()});
    });
}

TEST(ResponseMeterJson, FeedAfterFinishIsIgnored) {
    ResponseMeter meter(WireFormat::kOpenAI, false, false, MeterLimits{});
    meter.feed(kOpenAiBody, nullptr);
    meter.finish(nullptr);
    meter.feed("garbage", nullptr);
    meter.finish(nullptr);
    EXPECT_EQ(meter.bytes_seen(), kOpenAiBody.size());
    EXPECT_FALSE(meter.malformed());
    EXPECT_EQ(meter.final_usage(0).output_tokens, 40);
}

// Streams, from fixtures, in every line-end variant and cut every way.

struct StreamCase {
    std::string name;
    const char *fixture;
    const char *cut_before;  // the provider hung up just before this text; null: complete
    WireFormat format;
    Usage expected;
};

void PrintTo(const StreamCase &c, std::ostream *os) {
    *os << c.name;
}

constexpr std::int64_t kPromptBytes = 400;  // estimated as 100 tokens

// Text in the fixtures' deltas: "Hello" + "! How" + " can I help you today?"
// = 32 bytes (8 tokens) for OpenAI; "Hello" + "! How can I help?" = 22 bytes
// (6 tokens) for Anthropic.
const StreamCase kStreamCases[] = {
    {"OpenAiWithUsageChunk", "openai_chat_usage.sse", nullptr, WireFormat::kOpenAI,
     make_usage(176, 1024, 0, 9, true, false)},
    {"OpenAiWithoutUsageChunk", "openai_chat_no_usage.sse", nullptr, WireFormat::kOpenAI,
     make_usage(100, 0, 0, 8, false, true)},
    {"OpenAiCutInsideTheUsageChunk", "openai_chat_usage.sse", R"("choices":[],)",
     WireFormat::kOpenAI, make_usage(100, 0, 0, 8, false, true)},
    {"Anthropic", "anthropic_messages.sse", nullptr, WireFormat::kAnthropic,
     make_usage(472, 2048, 256, 12, true, false)},
    // Two message_delta events report 7 then 12 output tokens in total: 12, not 19.
    {"AnthropicCumulativeDeltas", "anthropic_cumulative_deltas.sse", nullptr,
     WireFormat::kAnthropic, make_usage(31, 0, 0, 12, true, false)},
    // message_start said 2 output tokens; the text seen since says 6.
    {"AnthropicCutAfterText", "anthropic_messages.sse", "event: content_block_stop",
     WireFormat::kAnthropic, make_usage(472, 2048, 256, 6, true, true)},
    {"AnthropicCutRightAfterMessageStart", "anthropic_messages.sse", "event: content_block_start",
     WireFormat::kAnthropic, make_usage(472, 2048, 256, 2, true, true)},
};

class StreamMeterTest : public ::testing::TestWithParam<std::tuple<StreamCase, LineEnd>> {
  protected:
    const StreamCase &stream_case() const { return std::get<0>(GetParam()); }
    std::string input() const {
        std::string lf = read_fixture(stream_case().fixture);
        if (stream_case().cut_before != nullptr) lf = cut_before(lf, stream_case().cut_before);
        return with_line_ends(lf, std::get<1>(GetParam()).eol);
    }
};

TEST_P(StreamMeterTest, FinalUsage) {
    std::string text = input();
    Metered m = run_meter(event_stream(stream_case().format, kPromptBytes), text);
    EXPECT_EQ(describe(m.usage), describe(stream_case().expected));
    EXPECT_FALSE(m.malformed);
    EXPECT_TRUE(m.finished);
    EXPECT_EQ(m.bytes_seen, text.size());
    EXPECT_EQ(m.oversized, 0u);
}

TEST_P(StreamMeterTest, SameUsageWhateverTheChunking) {
    expect_usage_whatever_the_chunking(event_stream(stream_case().format, kPromptBytes), input(),
                                       stream_case().expected);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, StreamMeterTest,
                         ::testing::Combine(::testing::ValuesIn(kStreamCases),
                                            ::testing::ValuesIn(kLineEnds)),
                         [](const auto &info) {
                             return std::get<0>(info.param).name + "_" +
                                    std::get<1>(info.param).name;
                         });

TEST(ResponseMeterStream, CostOfCachedOpenAiStream) {
    Metered m = run_meter(event_stream(WireFormat::kOpenAI), read_fixture("openai_chat_usage.sse"));
    // 176 * 2.50 + 1024 * 1.25 + 9 * 10 = 440 + 1280 + 90
    EXPECT_EQ(cost_micros(m.usage, kGpt4o), 1810);
}

TEST(ResponseMeterStream, CostOfAnthropicCacheStream) {
    Metered m =
        run_meter(event_stream(WireFormat::kAnthropic), read_fixture("anthropic_messages.sse"));
    // 472 * 3 + 2048 * 0.30 + 256 * 3.75 + 12 * 15 = 1416 + 614.4 + 960 + 180, rounded once
    EXPECT_EQ(cost_micros(m.usage, kClaudeSonnet), 3170);
}

// The gateway asked for the usage chunk on the client's behalf: exactly that
// chunk disappears, every other byte goes on.
TEST(ResponseMeterStream, InjectedUsageChunkIsRemovedAndNothingElse) {
    std::string input = read_fixture("openai_chat_usage.sse");
    std::string expected;
    int usage_chunks = 0;
    for (const std::string &block : sse_blocks(input)) {
        if (block.find(R"("choices":[],"usage":{)") == std::string::npos) {
            expected += block;
        } else {
            ++usage_chunks;
        }
    }
    ASSERT_EQ(usage_chunks, 1);

    MeterSetup setup = event_stream(WireFormat::kOpenAI);
    setup.drop_usage_chunk = true;
    Usage usage = make_usage(176, 1024, 0, 9, true, false);
    expect_every_chunking(input, [&](const Chunks &chunks) {
        Metered m = run_meter(setup, chunks);
        return differs("rewrites", m.rewrites, true) + differs("out", m.out, expected) +
               differs("usage", describe(m.usage), describe(usage));
    });
}

TEST(ResponseMeterStream, UsageChunkTheClientAskedForIsKept) {
    MeterSetup setup = event_stream(WireFormat::kOpenAI);
    setup.drop_usage_chunk = false;
    Metered m = run_meter(setup, read_fixture("openai_chat_usage.sse"));
    EXPECT_FALSE(m.rewrites);  // observe mode: the caller forwards the bytes untouched
    EXPECT_EQ(describe(m.usage), describe(make_usage(176, 1024, 0, 9, true, false)));
}

TEST(ResponseMeterStream, OnlyOpenAiStreamsAreRewritten) {
    MeterSetup anthropic = event_stream(WireFormat::kAnthropic);
    anthropic.drop_usage_chunk = true;
    EXPECT_FALSE(run_meter(anthropic, read_fixture("anthropic_messages.sse")).rewrites);
    MeterSetup body = json_body(WireFormat::kOpenAI);
    body.drop_usage_chunk = true;
    EXPECT_FALSE(run_meter(body, kOpenAiBody).rewrites);
}

TEST(ResponseMeterStream, MalformedEventIsFlagged) {
    Metered m = run_meter(event_stream(WireFormat::kOpenAI, kPromptBytes),
                          "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
                          "data: {oops\n\ndata: [DONE]\n\n");
    EXPECT_TRUE(m.malformed);
    EXPECT_EQ(describe(m.usage), describe(make_usage(100, 0, 0, 1, false, true)));
}

TEST(ResponseMeterStream, OversizedEventsAreCountedAndSkipped) {
    MeterSetup setup = event_stream(WireFormat::kOpenAI, kPromptBytes);
    setup.limits.max_sse_event = 512;  // above every fixture event
    std::string huge =
        R"(data: {"choices":[{"delta":{"content":")" + std::string(1000, 'x') + "\"}}]}\n\n";
    Metered m = run_meter(setup, huge + read_fixture("openai_chat_usage.sse"));
    EXPECT_EQ(m.oversized, 1u);
    EXPECT_EQ(describe(m.usage), describe(make_usage(176, 1024, 0, 9, true, false)));
}

}  // namespace
}  // namespace perpetuo
