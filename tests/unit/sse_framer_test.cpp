#include "sse_framer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "test_support.hpp"

namespace perpetuo {
namespace {

using testing_support::Chunks;
using testing_support::Cuts;
using testing_support::differs;
using testing_support::expect_every_chunking;
using testing_support::kLineEnds;
using testing_support::LineEnd;
using testing_support::read_fixture;
using testing_support::sse_blocks;
using testing_support::test_name;
using testing_support::with_line_ends;

struct Dispatched {
    std::string type;
    std::string data;
    bool operator==(const Dispatched &other) const {
        return type == other.type && data == other.data;
    }
};

void PrintTo(const Dispatched &e, std::ostream *os) {
    *os << "{" << ::testing::PrintToString(e.type) << ", " << ::testing::PrintToString(e.data)
        << "}";
}

constexpr std::size_t kSimdjsonPadding = 64;
constexpr std::size_t kDefaultCap = 1 << 20;

// Records every event; in rewrite mode drops those whose data holds `drop`.
class Recorder : public SseSink {
  public:
    explicit Recorder(std::string drop) : drop_(std::move(drop)) {}

    bool on_event(const SseEvent &event) override {
        // Usage parsers read the data in place with simdjson.
        EXPECT_GE(event.data_capacity, event.data.size() + kSimdjsonPadding);
        events.push_back({std::string(event.type), std::string(event.data)});
        return drop_.empty() || event.data.find(drop_) == std::string_view::npos;
    }

    std::vector<Dispatched> events;

  private:
    std::string drop_;
};

struct FrameOptions {
    std::size_t max_event_bytes = kDefaultCap;
    bool rewrite = false;
    std::string drop;  // data marker of events to drop (rewrite mode)
};

struct Framed {
    std::vector<Dispatched> events;
    std::string out;
    std::uint64_t oversized = 0;
    std::size_t max_held = 0;  // largest held_bytes() seen between chunks
};

Framed frame(const Chunks &chunks, const FrameOptions &options = {}) {
    SseFramer framer(options.max_event_bytes);
    Recorder sink(options.drop);
    Framed result;
    std::string *out = options.rewrite ? &result.out : nullptr;
    for (std::string_view chunk : chunks) {
        framer.feed(chunk, sink, out);
        result.max_held = std::max(result.max_held, framer.held_bytes());
    }
    framer.finish(out);
    EXPECT_EQ(framer.held_bytes(), 0u) << "finish() must release the tail";
    result.events = std::move(sink.events);
    result.oversized = framer.oversized_events();
    return result;
}

void expect_split_invariant(std::string_view text, const FrameOptions &options = {},
                            Cuts cuts = Cuts::kTwoChunks) {
    Framed whole = frame({text}, options);
    expect_every_chunking(
        text,
        [&](const Chunks &chunks) {
            Framed split = frame(chunks, options);
            return differs("events", split.events, whole.events) +
                   differs("oversized", split.oversized, whole.oversized) +
                   (options.rewrite ? differs("out", split.out, whole.out) : "");
        },
        cuts);
}

const std::string kStreamFixtures[] = {
    "openai_chat_usage.sse",           "openai_chat_no_usage.sse", "anthropic_messages.sse",
    "anthropic_cumulative_deltas.sse", "sse_fields.sse",
};

// Size of the largest event of an LF stream once converted to `eol`.
std::size_t largest_block(const std::vector<std::string> &lf_blocks, const char *eol) {
    std::size_t n = 0;
    for (const std::string &b : lf_blocks) n = std::max(n, with_line_ends(b, eol).size());
    return n;
}

class FixtureFramingTest : public ::testing::TestWithParam<std::tuple<std::string, LineEnd>> {
  protected:
    std::string lf_text() const { return read_fixture(std::get<0>(GetParam())); }
    std::string text() const { return with_line_ends(lf_text(), std::get<1>(GetParam()).eol); }
};

TEST_P(FixtureFramingTest, LineEndsDoNotChangeTheEvents) {
    Framed lf = frame({lf_text()});
    ASSERT_FALSE(lf.events.empty());
    EXPECT_EQ(frame({text()}).events, lf.events);
}

TEST_P(FixtureFramingTest, EverySplitFramesTheSame) {
    expect_split_invariant(text());
}

// nginx buffers are often empty (flush, last_buf); whether or not the caller
// skips them, an empty chunk between any two bytes must not change framing.
TEST_P(FixtureFramingTest, EmptyChunksChangeNothing) {
    expect_split_invariant(text(), {}, Cuts::kWithEmptyChunksBetween);
}

// Observe mode keeps only the unfinished line and the event's data so far.
TEST_P(FixtureFramingTest, HeldBytesStayWithinOneEvent) {
    std::string input = text();
    std::size_t bound = largest_block(sse_blocks(lf_text()), std::get<1>(GetParam()).eol);
    expect_every_chunking(input, [&](const Chunks &chunks) {
        std::size_t held = frame(chunks).max_held;
        return held <= bound ? "" : "held " + std::to_string(held) + " > " + std::to_string(bound);
    });
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureFramingTest,
                         ::testing::Combine(::testing::ValuesIn(kStreamFixtures),
                                            ::testing::ValuesIn(kLineEnds)),
                         [](const auto &info) {
                             return test_name(std::get<0>(info.param)) + "_" +
                                    std::get<1>(info.param).name;
                         });

TEST(SseFramer, FieldsFixtureEvents) {
    std::vector<Dispatched> expected = {
        {"update", "first line\nsecond line\nthird line without space\n two spaces keep one"},
        {"message", "\nafter an empty data line"},
        {"message", R"({"done":true})"},
    };
    EXPECT_EQ(frame({read_fixture("sse_fields.sse")}).events, expected);
}

TEST(SseFramer, OpenAiFixtureEvents) {
    std::vector<Dispatched> events = frame({read_fixture("openai_chat_usage.sse")}).events;
    ASSERT_EQ(events.size(), 7u);
    for (const Dispatched &e : events) EXPECT_EQ(e.type, "message");
    EXPECT_NE(events[5].data.find(R"("choices":[],"usage":{"prompt_tokens":1200)"),
              std::string::npos);
    EXPECT_EQ(events[6].data, "[DONE]");
}

TEST(SseFramer, AnthropicFixtureEventTypes) {
    std::vector<std::string> types;
    for (const Dispatched &e : frame({read_fixture("anthropic_messages.sse")}).events)
        types.push_back(e.type);
    EXPECT_EQ(types,
              (std::vector<std::string>{"message_start", "content_block_start", "ping",
                                        "content_block_delta", "content_block_delta",
                                        "content_block_stop", "message_delta", "message_stop"}));
}

struct FieldCase {
    std::string name;
    std::string input;
    std::vector<Dispatched> events;
};

void PrintTo(const FieldCase &c, std::ostream *os) {
    *os << c.name;
}

class SseFieldTest : public ::testing::TestWithParam<FieldCase> {};

TEST_P(SseFieldTest, FollowsTheWhatwgRules) {
    EXPECT_EQ(frame({GetParam().input}).events, GetParam().events);
    expect_split_invariant(GetParam().input);
}

const FieldCase kFieldCases[] = {
    {"DataWithSpace", "data: x\n\n", {{"message", "x"}}},
    {"DataWithoutSpace", "data:x\n\n", {{"message", "x"}}},
    {"OnlyOneSpaceStripped", "data:  x \n\n", {{"message", " x "}}},
    {"ColonsInValue", "data: {\"a\":\"b:c\"}\n\n", {{"message", "{\"a\":\"b:c\"}"}}},
    {"LinesJoinedWithLf", "data: a\ndata: b\n\n", {{"message", "a\nb"}}},
    {"DataWithoutColonIsAnEmptyLine", "data\ndata: b\n\n", {{"message", "\nb"}}},
    {"EmptyDataStillDispatches", "data:\n\n", {{"message", ""}}},
    {"EventType", "event: delta\ndata: x\n\n", {{"delta", "x"}}},
    {"EventTypeResetAfterDispatch",
     "event: a\ndata: 1\n\ndata: 2\n\n",
     {{"a", "1"}, {"message", "2"}}},
    {"EventWithoutDataNotDispatched", "event: ping\n\ndata: x\n\n", {{"message", "x"}}},
    {"EmptyEventTypeIsMessage", "event:\ndata: x\n\n", {{"message", "x"}}},
    {"CommentsIgnored", ": hi\ndata: x\n:\n: there\n\n", {{"message", "x"}}},
    {"IdAndRetryIgnored", "id: 7\nretry: 100\ndata: x\n\n", {{"message", "x"}}},
    {"UnknownFieldIgnored", "foo: bar\ndata: x\n\n", {{"message", "x"}}},
    {"FieldNamesAreCaseSensitive", "Data: x\nEVENT: y\n\n", {}},
    {"BlankLinesAlone", "\n\n\r\n\r\r", {}},
    {"MixedLineEnds", "data: a\r\ndata: b\rdata: c\n\r\n", {{"message", "a\nb\nc"}}},
    {"CrlfBlankLineAfterCr", "data: a\r\r\ndata: b\r\n\r\n", {{"message", "a"}, {"message", "b"}}},
};

INSTANTIATE_TEST_SUITE_P(Fields, SseFieldTest, ::testing::ValuesIn(kFieldCases),
                         [](const auto &info) { return info.param.name; });

// Rewrite mode: the output must be the input minus exactly the raw bytes of
// the dropped events, whatever the chunking.

struct DropCase {
    const char *fixture;
    const char *marker;  // appears only in the data of the events to drop
};

void PrintTo(const DropCase &d, std::ostream *os) {
    *os << d.fixture << " dropping " << d.marker;
}

const DropCase kDropCases[] = {
    {"openai_chat_usage.sse", R"("prompt_tokens")"},
    {"openai_chat_usage.sse", R"("content":"! How")"},
    {"anthropic_messages.sse", R"("type": "ping")"},
    {"sse_fields.sse", "second line"},
};

class RewriteFramingTest : public ::testing::TestWithParam<std::tuple<DropCase, LineEnd>> {};

TEST_P(RewriteFramingTest, OutputIsInputMinusDroppedEvents) {
    const DropCase &drop = std::get<0>(GetParam());
    const char *eol = std::get<1>(GetParam()).eol;
    std::string lf_text = read_fixture(drop.fixture);
    std::vector<std::string> blocks = sse_blocks(lf_text);
    std::string expected;
    int dropped = 0;
    for (const std::string &block : blocks) {
        if (block.find(drop.marker) != std::string::npos) {
            ++dropped;
            continue;
        }
        expected += with_line_ends(block, eol);
    }
    ASSERT_GE(dropped, 1);
    std::string input = with_line_ends(lf_text, eol);
    // Raw bytes of the current event, plus its decoded data, at most.
    std::size_t held_bound = 2 * largest_block(blocks, eol);

    FrameOptions options;
    options.rewrite = true;
    options.drop = drop.marker;
    std::vector<Dispatched> observed = frame({input}).events;
    expect_every_chunking(input, [&](const Chunks &chunks) {
        Framed framed = frame(chunks, options);
        return differs("out", framed.out, expected) + differs("events", framed.events, observed) +
               (framed.max_held <= held_bound ? "" : "held too much\n");
    });
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RewriteFramingTest,
                         ::testing::Combine(::testing::ValuesIn(kDropCases),
                                            ::testing::ValuesIn(kLineEnds)),
                         [](const auto &info) {
                             const DropCase &d = std::get<0>(info.param);
                             return test_name(d.fixture) + "_drop_" + test_name(d.marker) + "_" +
                                    std::get<1>(info.param).name;
                         });

TEST(SseFramer, RewriteWithoutDropsPassesEveryByte) {
    std::string input = read_fixture("anthropic_messages.sse");
    FrameOptions options;
    options.rewrite = true;
    expect_every_chunking(input, [&](const Chunks &chunks) {
        return differs("out", frame(chunks, options).out, input);
    });
}

// End of stream.

TEST(SseFramerFinish, UnterminatedEventIsNotDispatchedButPassedOn) {
    for (std::string tail : {"data: b\n", "data: b", "data: b\r\n", "event: x\ndata: b\n"}) {
        std::string input = "data: a\n\n" + tail;
        SCOPED_TRACE(input);
        FrameOptions options;
        options.rewrite = true;
        options.drop = "b";  // would be dropped, were it complete
        std::vector<Dispatched> expected = {{"message", "a"}};
        expect_every_chunking(input, [&](const Chunks &chunks) {
            Framed framed = frame(chunks, options);
            return differs("events", framed.events, expected) + differs("out", framed.out, input);
        });
    }
}

TEST(SseFramerFinish, ObserveModeWritesNothing) {
    SseFramer framer(kDefaultCap);
    Recorder sink("");
    framer.feed("data: a\n\ndata: b\n", sink, nullptr);
    framer.finish(nullptr);
    EXPECT_EQ(framer.held_bytes(), 0u);
    EXPECT_EQ(sink.events.size(), 1u);
}

// Oversized events.

const std::string kSmallEvent = "data: small1\n\n";
const std::string kLongLineEvent = "data: " + std::string(200, 'x') + "\n\n";
const std::string kManyLinesEvent =
    "data: " + std::string(40, 'y') + "\ndata: " + std::string(40, 'y') + "\n\n";
const std::string kTypedSmallEvent = "event: done\ndata: small2\n\n";
const std::string kOversizedStream =
    kSmallEvent + kLongLineEvent + kManyLinesEvent + kTypedSmallEvent;

TEST(SseFramerOversized, SkippedCountedAndFramingRecovers) {
    FrameOptions options;
    options.max_event_bytes = 64;
    Framed framed = frame({kOversizedStream}, options);
    EXPECT_EQ(framed.events, (std::vector<Dispatched>{{"message", "small1"}, {"done", "small2"}}));
    EXPECT_EQ(framed.oversized, 2u);  // one long line, one too many lines
    expect_split_invariant(kOversizedStream, options);
}

TEST(SseFramerOversized, RewriteModePassesSkippedEventsOn) {
    FrameOptions options;
    options.max_event_bytes = 64;
    options.rewrite = true;
    options.drop = "small";
    std::string expected = kLongLineEvent + kManyLinesEvent;
    expect_every_chunking(kOversizedStream, [&](const Chunks &chunks) {
        return differs("out", frame(chunks, options).out, expected);
    });
}

// A provider that never ends its line must not make the framer grow.
TEST(SseFramerOversized, EndlessLineStaysBounded) {
    constexpr std::size_t kCap = 1024;
    for (bool rewrite : {false, true}) {
        SCOPED_TRACE(rewrite ? "rewrite" : "observe");
        SseFramer framer(kCap);
        Recorder sink("");
        std::string out;
        std::string *out_ptr = rewrite ? &out : nullptr;
        std::string chunk(4096, 'z');
        framer.feed("data: ", sink, out_ptr);
        std::size_t fed = 6;
        for (int i = 0; i < 256; ++i) {
            framer.feed(chunk, sink, out_ptr);
            fed += chunk.size();
            EXPECT_LE(framer.held_bytes(), rewrite ? 3 * kCap + kSimdjsonPadding : kCap);
        }
        framer.feed("\n\ndata: after\n\n", sink, out_ptr);
        framer.finish(out_ptr);
        EXPECT_EQ(sink.events, (std::vector<Dispatched>{{"message", "after"}}));
        EXPECT_EQ(framer.oversized_events(), 1u);
        if (rewrite) {
            EXPECT_EQ(out.size(), fed + 15);
        }
    }
}

// Whether an event fits must not depend on where the network cut it: the
// same bytes in one chunk are dispatched.
TEST(SseFramerOversized, EventJustUnderTheCapFramesTheSameWhereverSplit) {
    FrameOptions options;
    options.max_event_bytes = 64;
    std::string input = "data: " + std::string(60, 'x') + "\n\ndata: next\n\n";
    ASSERT_EQ(frame({input}, options).events.size(), 2u);
    expect_split_invariant(input, options);
}

TEST(SseFramerOversized, LongCommentSplitAcrossChunksKeepsTheEvent) {
    FrameOptions options;
    options.max_event_bytes = 64;
    std::string input = ": " + std::string(100, 'c') + "\ndata: hi\n\n";
    ASSERT_EQ(frame({input}, options).events, (std::vector<Dispatched>{{"message", "hi"}}));
    expect_split_invariant(input, options);
}

}  // namespace
}  // namespace perpetuo
