#include "request_body.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace perpetuo {
namespace {

RequestFacts parse_ok(std::string_view body) {
    RequestError error;
    std::optional<RequestFacts> facts = parse_request(body, &error);
    EXPECT_TRUE(facts.has_value()) << error.message << "\n" << body;
    return facts.value_or(RequestFacts{});
}

struct FactsCase {
    std::string name;
    std::string body;
    std::string model;
    bool stream = false;
    bool include_usage = false;
    std::int64_t max_output_tokens = -1;
    std::int64_t prompt_bytes = 0;
};

void PrintTo(const FactsCase &c, std::ostream *os) {
    *os << c.name;
}

class ParseRequestFactsTest : public ::testing::TestWithParam<FactsCase> {};

TEST_P(ParseRequestFactsTest, ReadsWhatTheGatewayNeeds) {
    const FactsCase &c = GetParam();
    RequestFacts facts = parse_ok(c.body);
    EXPECT_EQ(facts.model, c.model);
    EXPECT_EQ(facts.stream, c.stream);
    EXPECT_EQ(facts.include_usage, c.include_usage);
    EXPECT_EQ(facts.max_output_tokens, c.max_output_tokens);
    EXPECT_EQ(facts.prompt_bytes, c.prompt_bytes);
}

// prompt_bytes is a rough size of what the model reads: every string value
// under messages/prompt/system/input counts (roles and part types included),
// images do not.
const FactsCase kFacts[] = {
    {"OnlyModel", R"({"model":"gpt-4o"})", "gpt-4o"},
    {"EscapedModel", R"({"model":"my\"org\\gpt\u002d4o"})", "my\"org\\gpt-4o"},
    {"StreamTrue", R"({"model":"m","stream":true})", "m", true},
    {"StreamFalse", R"({"model":"m","stream":false})", "m", false},
    {"StreamNull", R"({"model":"m","stream":null})", "m", false},
    {"IncludeUsageTrue", R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})",
     "m", true, true},
    {"IncludeUsageFalse", R"({"model":"m","stream":true,"stream_options":{"include_usage":false}})",
     "m", true, false},
    {"StreamOptionsNull", R"({"model":"m","stream":true,"stream_options":null})", "m", true},
    {"MaxTokens", R"({"model":"m","max_tokens":256})", "m", false, false, 256},
    {"MaxCompletionTokensWins", R"({"model":"m","max_tokens":256,"max_completion_tokens":1024})",
     "m", false, false, 1024},
    {"NegativeMaxCompletionTokensIgnored",
     R"({"model":"m","max_completion_tokens":-1,"max_tokens":100})", "m", false, false, 100},
    {"NegativeMaxTokensIgnored", R"({"model":"m","max_tokens":-5})", "m", false, false, -1},
    {"FractionalMaxTokensIgnored", R"({"model":"m","max_tokens":1.5})", "m", false, false, -1},
    {"TextMaxTokensIgnored", R"({"model":"m","max_tokens":"100"})", "m", false, false, -1},
    // "system" 6 + "Be brief." 9 + "user" 4 + "Hello" 5
    {"MessagesWithStringContent",
     R"({"model":"m","messages":[{"role":"system","content":"Be brief."},)"
     R"({"role":"user","content":"Hello"}]})",
     "m", false, false, -1, 24},
    // "user" 4 + "text" 4 + "What is this?" 13 + "image_url" 9; the URL is skipped.
    {"MessagesWithParts",
     R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},)"
     R"({"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}}]}]})",
     "m", false, false, -1, 30},
    // Numbers and booleans are not text.
    {"ToolCallArguments",
     R"({"model":"m","messages":[{"role":"tool","tool_call_id":"c1","content":"42","n":7,"ok":true}]})",
     "m", false, false, -1, 8},
    // "café" is 5 bytes of UTF-8 once the escape is decoded.
    {"UnicodeEscapesCountDecoded",
     R"({"model":"m","messages":[{"role":"user","content":"caf\u00e9"}]})", "m", false, false, -1,
     9},
    {"PromptString", R"({"model":"m","prompt":"Once upon a time"})", "m", false, false, -1, 16},
    {"PromptList", R"({"model":"m","prompt":["ab","cde"]})", "m", false, false, -1, 5},
    // "You are terse." 14 + "user" 4 + "image" 5; the base64 source is skipped.
    {"AnthropicSystemAndImage",
     R"({"model":"m","max_tokens":1024,"system":"You are terse.","messages":[{"role":"user",)"
     R"("content":[{"type":"image","source":{"type":"base64","media_type":"image/png",)"
     R"("data":"iVBORw0KGgo="}}]}]})",
     "m", false, false, 1024, 23},
    {"EmbeddingsInput", R"({"model":"text-embedding-3-small","input":["first","second"]})",
     "text-embedding-3-small", false, false, -1, 11},
    {"OtherFieldsNotCounted", R"({"model":"m","user":"alice","metadata":{"k":"value"}})", "m"},
    {"PrettyPrinted",
     "{\r\n\t\"model\" : \"m\" ,\r\n\t\"stream\" : true ,\r\n\t\"prompt\" : \"abc\"\r\n}\r\n", "m",
     true, false, -1, 3},
};

INSTANTIATE_TEST_SUITE_P(Bodies, ParseRequestFactsTest, ::testing::ValuesIn(kFacts),
                         [](const auto &info) { return info.param.name; });

struct RefusalCase {
    std::string name;
    std::string body;
    std::string message;  // a fragment of RequestError::message
};

void PrintTo(const RefusalCase &c, std::ostream *os) {
    *os << c.name;
}

class ParseRequestRefusalTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(ParseRequestRefusalTest, SaysWhy) {
    const RefusalCase &c = GetParam();
    RequestError error;
    EXPECT_FALSE(parse_request(c.body, &error).has_value()) << c.body;
    EXPECT_NE(error.message.find(c.message), std::string::npos) << error.message;
}

const std::string kNotJson = "request body is not valid JSON";

const RefusalCase kRefusals[] = {
    {"Empty", "", kNotJson},
    {"NotJson", "model=gpt-4o", kNotJson},
    {"UnquotedKeys", "{model: \"gpt-4o\"}", kNotJson},
    {"Truncated", R"({"model":"gpt-4o","messages":[{"role":"user","content":"Hi)", kNotJson},
    {"TruncatedAfterValue", R"({"model":"gpt-4o",)", kNotJson},
    {"TrailingGarbage", R"({"model":"gpt-4o"} {"model":"x"})", kNotJson},
    {"TrailingComma", R"({"model":"gpt-4o",})", kNotJson},
    {"Array", R"([{"model":"gpt-4o"}])", "must be a JSON object"},
    {"IncludeUsageNotABool", R"({"model":"m","stream":true,"stream_options":{"include_usage":"yes"}})",
     "must be one boolean"},
    {"IncludeUsageAnObject", R"({"model":"i","stream_options":{"include_usage":{}}})",
     "must be one boolean"},
    {"IncludeUsageTwice",
     R"({"model":"m","stream_options":{"include_usage":true,"include_usage":false}})",
     "must be one boolean"},
    {"String", R"("gpt-4o")", "must be a JSON object"},
    {"Number", "42", "must be a JSON object"},
    {"Null", "null", "must be a JSON object"},
    {"NoModel", R"({"messages":[]})", "has no \"model\""},
    {"ModelNestedOnly", R"({"options":{"model":"gpt-4o"}})", "has no \"model\""},
    {"EmptyModel", R"({"model":""})", "\"model\" must be a non-empty string"},
    {"NumericModel", R"({"model":4})", "\"model\" must be a non-empty string"},
    {"NullModel", R"({"model":null})", "\"model\" must be a non-empty string"},
    {"ListModel", R"({"model":["gpt-4o"]})", "\"model\" must be a non-empty string"},
    {"StreamAsString", R"({"model":"m","stream":"true"})", "\"stream\" must be a boolean"},
    {"StreamAsNumber", R"({"model":"m","stream":1})", "\"stream\" must be a boolean"},
};

INSTANTIATE_TEST_SUITE_P(Bodies, ParseRequestRefusalTest, ::testing::ValuesIn(kRefusals),
                         [](const auto &info) { return info.param.name; });

// The gateway routes and bills by the model it reads, while providers keep
// the last of duplicate keys: {"model":"cheap","model":"premium"} would be
// billed as "cheap" and served as "premium" whenever the body is passed on
// unrewritten. Such bodies must not get through.
TEST(ParseRequest, DuplicateModelKeyIsRefused) {
    RequestError error;
    EXPECT_FALSE(parse_request(R"({"model":"gpt-4o-mini","messages":[],"model":"gpt-4o"})", &error))
        << "a provider would serve gpt-4o for a request metered as gpt-4o-mini";
}

TEST(ParseRequest, DuplicateStreamKeyIsRefused) {
    RequestError error;
    EXPECT_FALSE(parse_request(R"({"model":"m","stream":true,"stream":false})", &error))
        << "a JSON body metered as a stream has no events: its output is billed as 0 tokens";
}

struct RewriteCase {
    std::string name;
    std::string body;
    std::string model;
    bool add_include_usage;
    std::string expected;
};

void PrintTo(const RewriteCase &c, std::ostream *os) {
    *os << c.name;
}

class RewriteRequestTest : public ::testing::TestWithParam<RewriteCase> {};

TEST_P(RewriteRequestTest, SplicesOnlyWhatItMust) {
    const RewriteCase &c = GetParam();
    Rewrite rewrite;
    rewrite.model = c.model;
    rewrite.add_include_usage = c.add_include_usage;
    EXPECT_EQ(rewrite_request(c.body, rewrite), c.expected);
}

const RewriteCase kRewrites[] = {
    {"NothingToDo", R"({"model":"gpt-4o","messages":[]})", "", false,
     R"({"model":"gpt-4o","messages":[]})"},
    {"ModelReplaced", R"({"model":"gpt-4o","messages":[]})", "gpt-4o-2024-08-06", false,
     R"({"model":"gpt-4o-2024-08-06","messages":[]})"},
    {"ModelQuotesAndBackslashesEscaped", R"({"messages":[],"model":"gpt-4o"})", R"(org/"x"\y)",
     false, R"({"messages":[],"model":"org/\"x\"\\y"})"},
    {"EscapedModelReplacedWhole", R"({"model":"gpt\u002d4o" ,"n":1})", "gpt-4o", false,
     R"({"model":"gpt-4o" ,"n":1})"},
    {"IncludeUsageAddedWhenAbsent", R"({"model":"m","stream":true})", "", true,
     R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})"},
    {"IncludeUsageAddedToBodyWithOnlyModel", R"({"model":"m"})", "", true,
     R"({"model":"m","stream_options":{"include_usage":true}})"},
    {"IncludeUsageAddedToEmptyOptions", R"({"model":"m","stream_options":{},"stream":true})", "",
     true, R"({"model":"m","stream_options":{"include_usage":true},"stream":true})"},
    {"IncludeUsageAddedToBlankOptions", R"({"model":"m","stream_options":{ },"stream":true})", "",
     true, R"({"model":"m","stream_options":{ "include_usage":true},"stream":true})"},
    {"OtherStreamOptionsKept",
     R"({"model":"m","stream_options":{"continuous_usage_stats":true},"stream":true})", "", true,
     R"({"model":"m","stream_options":{"continuous_usage_stats":true,"include_usage":true},"stream":true})"},
    {"NullOptionsReplaced", R"({"model":"m","stream_options":null,"stream":true})", "", true,
     R"({"model":"m","stream_options":{"include_usage":true},"stream":true})"},
    {"NullOptionsBeforeModelBothRewritten", R"({"stream_options" : null , "model" : "m"})", "x",
     true, R"({"stream_options" : {"include_usage":true} , "model" : "x"})"},
    {"PrettyPrintedBody", "{\n  \"model\": \"m\",\n  \"stream\": true\n}\n", "x", true,
     "{\n  \"model\": \"x\",\n  \"stream\": true\n,\"stream_options\":{\"include_usage\":true}}"
     "\n"},
};

INSTANTIATE_TEST_SUITE_P(Bodies, RewriteRequestTest, ::testing::ValuesIn(kRewrites),
                         [](const auto &info) { return info.param.name; });

// The provider model id comes from the YAML, which only requires it to be
// non-empty; whatever it holds must come out as one valid JSON string.
TEST(RewriteRequest, ModelWithControlCharactersStaysValidJson) {
    Rewrite rewrite;
    rewrite.model = "gpt\t4o\n";
    std::string out = rewrite_request(R"({"model":"m"})", rewrite);
    EXPECT_EQ(parse_ok(out).model, "gpt\t4o\n") << out;
}

// A stream_options that is neither an object nor null is refused, as the
// providers refuse it, rather than silently replaced.
class NonObjectStreamOptionsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NonObjectStreamOptionsTest, IsRefused) {
    std::string body = R"({"model":"m","stream_options":)" + GetParam() + R"(,"stream":true})";
    RequestError error;
    EXPECT_FALSE(parse_request(body, &error)) << body;
    EXPECT_NE(error.message.find("stream_options"), std::string::npos) << error.message;
}

INSTANTIATE_TEST_SUITE_P(Values, NonObjectStreamOptionsTest,
                         ::testing::Values("true", "\"usage\"", "42", "[]", "[1, 2]",
                                           R"([{"include_usage":true}])"));

TEST(RewriteRequest, NullStreamOptionsAreReplacedByAnObjectAskingForUsage) {
    std::string body = R"({"model":"m","stream_options":null,"stream":true})";
    parse_ok(body);
    Rewrite rewrite;
    rewrite.add_include_usage = true;
    EXPECT_EQ(rewrite_request(body, rewrite),
              R"({"model":"m","stream_options":{"include_usage":true},"stream":true})");
}

TEST(RewriteRequest, IncludeUsageFalseIsSetInPlaceNotDuplicated) {
    std::string body = R"({"model":"m","stream_options":{"include_usage":false,"x":1},"stream":true})";
    parse_ok(body);
    Rewrite rewrite;
    rewrite.add_include_usage = true;
    EXPECT_EQ(rewrite_request(body, rewrite),
              R"({"model":"m","stream_options":{"include_usage":true,"x":1},"stream":true})");
}

// Property check over generated bodies: the rewrite touches only the model
// value and the stream_options value (or the insertion point before the
// closing brace), and the result reads back with the new values.

struct Layout {
    const char *name;
    const char *open;   // before the first key
    const char *colon;  // between a key and its value
    const char *comma;  // between members
    const char *close;  // after the last value
};

const Layout kLayouts[] = {
    {"compact", "{", ":", ",", "}"},
    {"spaced", "{ ", " : ", " , ", " }"},
    {"pretty", "{\n  ", ": ", ",\n  ", "\n}\n"},
    {"crlf_tabs", "\r\n{\r\n\t", ":\t", ",\r\n\t", "\r\n}\r\n"},
};

const char *const kOptionValues[] = {
    nullptr,  // absent
    "{}",
    "{ }",
    "null",
    R"({"continuous_usage_stats":true})",
    "{\n    \"continuous_usage_stats\": true,\n    \"x\": [1, {\"y\": \"}\"}]\n  }",
};

const char *const kOriginalModels[] = {R"("gpt-4o")", R"("gpt\u002d4o")"};

struct Span {
    std::size_t begin, end;
    std::optional<std::string> replacement;  // nullopt: any text, checked by reading back
};

struct GeneratedBody {
    std::string text;
    Span model{0, 0, std::nullopt};
    Span options{0, 0, std::nullopt};
    bool has_options = false;
};

// Members in the given order; "model" and "stream_options" spans are recorded.
GeneratedBody generate(const Layout &layout, const std::vector<std::string> &order,
                       const char *model_value, const char *options_value) {
    GeneratedBody body;
    body.text = layout.open;
    bool first = true;
    for (const std::string &key : order) {
        std::string value;
        if (key == "model") {
            value = model_value;
        } else if (key == "stream_options") {
            if (options_value == nullptr) continue;
            value = options_value;
        } else if (key == "messages") {
            value = R"([{"role":"user","content":"caf\u00e9 \ud83d\ude00 \"q\" {not: a brace}"}])";
        } else if (key == "metadata") {
            value = R"({"note":"\u00e9t\u00e9","tags":["a","}"]})";
        } else if (key == "stream") {
            value = "true";
        } else {
            value = "256";
        }
        if (!first) body.text += layout.comma;
        first = false;
        body.text += "\"" + key + "\"" + layout.colon;
        Span span{body.text.size(), body.text.size() + value.size(), std::nullopt};
        body.text += value;
        if (key == "model") body.model = span;
        if (key == "stream_options") {
            body.options = span;
            body.has_options = true;
        }
    }
    body.text += layout.close;
    if (!body.has_options) {
        std::size_t close = body.text.rfind('}');
        body.options = {close, close, std::nullopt};
    }
    return body;
}

std::string json_quoted(const std::string &text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    return out + "\"";
}

std::string_view slice(std::string_view s, std::size_t pos, std::size_t len) {
    pos = std::min(pos, s.size());
    return s.substr(pos, len);
}

// Checks that `out` is `in` with each span replaced (known replacements
// verbatim) and returns the text that replaced the one span whose
// replacement is not known in advance.
std::string expect_only_spans_changed(std::string_view in, std::string_view out,
                                      std::vector<Span> spans) {
    std::sort(spans.begin(), spans.end(),
              [](const Span &a, const Span &b) { return a.begin < b.begin; });
    std::size_t in_front = 0, out_front = 0, i = 0;
    auto keep_front = [&](std::size_t until) {
        std::string_view kept = in.substr(in_front, until - in_front);
        EXPECT_EQ(slice(out, out_front, kept.size()), kept)
            << "changed bytes before offset " << until;
        out_front += kept.size();
    };
    for (; i < spans.size() && spans[i].replacement; ++i) {
        keep_front(spans[i].begin);
        EXPECT_EQ(slice(out, out_front, spans[i].replacement->size()), *spans[i].replacement);
        out_front += spans[i].replacement->size();
        in_front = spans[i].end;
    }
    std::size_t in_back = in.size(), out_back = out.size(), j = spans.size();
    auto keep_back = [&](std::size_t from) {
        std::string_view kept = in.substr(from, in_back - from);
        EXPECT_GE(out_back, kept.size());
        out_back -= std::min(out_back, kept.size());
        EXPECT_EQ(slice(out, out_back, kept.size()), kept) << "changed bytes after offset " << from;
    };
    for (; j > i && spans[j - 1].replacement; --j) {
        keep_back(spans[j - 1].end);
        out_back -= std::min(out_back, spans[j - 1].replacement->size());
        EXPECT_EQ(slice(out, out_back, spans[j - 1].replacement->size()),
                  *spans[j - 1].replacement);
        in_back = spans[j - 1].begin;
    }
    if (i == j) {
        EXPECT_EQ(slice(out, out_front, out_back - out_front),
                  in.substr(in_front, in_back - in_front));
        return "";
    }
    keep_front(spans[i].begin);
    keep_back(spans[i].end);
    return std::string(slice(out, out_front, out_back - std::min(out_back, out_front)));
}

struct RewriteChoice {
    std::string model;
    bool add_include_usage;
};

const RewriteChoice kRewriteChoices[] = {
    {"gpt-4o-2024-08-06", true},
    {R"(org/"quoted"\name)", true},
    {"", true},
    {"claude-3-5-haiku-20241022", false},
    {"", false},
};

const std::vector<std::vector<std::string>> kMemberOrders = {
    {"model", "messages", "stream", "stream_options", "max_tokens", "metadata"},
    {"messages", "stream_options", "metadata", "stream", "max_tokens", "model"},
    {"stream_options", "model", "stream", "messages"},
};

void expect_rewrite_confined(GeneratedBody body, const char *options, const RewriteChoice &choice) {
    RequestFacts before = parse_ok(body.text);
    Rewrite rewrite;
    rewrite.model = choice.model;
    rewrite.add_include_usage = choice.add_include_usage;
    std::string out = rewrite_request(body.text, rewrite);

    std::vector<Span> spans;
    if (!choice.model.empty()) {
        body.model.replacement = json_quoted(choice.model);
        spans.push_back(body.model);
    }
    if (choice.add_include_usage) spans.push_back(body.options);
    std::string options_text = expect_only_spans_changed(body.text, out, spans);

    // The client's other stream options travel verbatim.
    if (choice.add_include_usage && options != nullptr && options[0] == '{') {
        std::string_view inner(options + 1, std::strlen(options) - 2);
        inner.remove_suffix(inner.size() - (inner.find_last_not_of(" \n") + 1));
        EXPECT_NE(options_text.find(inner), std::string::npos) << options_text;
    }

    RequestFacts after = parse_ok(out);
    EXPECT_EQ(after.model, choice.model.empty() ? before.model : choice.model);
    EXPECT_EQ(after.stream, before.stream);
    EXPECT_EQ(after.include_usage, choice.add_include_usage);
    EXPECT_EQ(after.max_output_tokens, before.max_output_tokens);
    EXPECT_EQ(after.prompt_bytes, before.prompt_bytes);
}

TEST(RewriteRequest, ChangesNothingButTheRewrittenSpans) {
    int checked = 0;
    for (const Layout &layout : kLayouts)
        for (const auto &order : kMemberOrders)
            for (const char *model_value : kOriginalModels)
                for (const char *options : kOptionValues)
                    for (const RewriteChoice &choice : kRewriteChoices) {
                        GeneratedBody body = generate(layout, order, model_value, options);
                        SCOPED_TRACE(std::string(layout.name) + " model=" + choice.model +
                                     " add=" + std::to_string(choice.add_include_usage) +
                                     "\nbody: " + body.text);
                        expect_rewrite_confined(body, options, choice);
                        ++checked;
                    }
    EXPECT_EQ(checked, 4 * 3 * 2 * 6 * 5);
}

TEST(EstimateTokens, RoughlyFourBytesPerTokenRoundedUp) {
    EXPECT_EQ(estimate_tokens(-10), 0);
    EXPECT_EQ(estimate_tokens(0), 0);
    EXPECT_EQ(estimate_tokens(1), 1);
    EXPECT_EQ(estimate_tokens(4), 1);
    EXPECT_EQ(estimate_tokens(5), 2);
    EXPECT_EQ(estimate_tokens(4000), 1000);
}

}  // namespace
}  // namespace perpetuo
