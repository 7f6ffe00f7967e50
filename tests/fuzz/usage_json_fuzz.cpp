// The usage readers and ResponseMeter on arbitrary provider bodies and
// streams. Byte 0 picks the meter's setup and where the body is cut in two;
// the rest is the body. Readers get padded copies, as the meter gives them.
#include "fuzz_support.hpp"
#include "response_meter.hpp"
#include "usage_json.hpp"

namespace {

using perpetuo::AnthropicPart;
using perpetuo::fuzz::check;

void check_usage(const perpetuo::Usage &u) {
    check(u.uncached_input_tokens >= 0 && u.cache_read_tokens >= 0 && u.cache_write_tokens >= 0 &&
              u.output_tokens >= 0,
          "token counts are never negative");
}

void read_alone(std::string_view text) {
    const std::string json = perpetuo::fuzz::padded_copy(text);
    perpetuo::UsageReading r = perpetuo::read_openai_json(json, json.capacity());
    check_usage(r.usage);
    for (AnthropicPart part :
         {AnthropicPart::kBody, AnthropicPart::kMessageStart, AnthropicPart::kMessageDelta,
          AnthropicPart::kContentDelta, AnthropicPart::kOther}) {
        r = perpetuo::read_anthropic_json(json, json.capacity(), part);
        check_usage(r.usage);
    }
}

void meter(std::string_view body, std::uint8_t setup) {
    const auto format =
        (setup & 1) ? perpetuo::WireFormat::kAnthropic : perpetuo::WireFormat::kOpenAI;
    const bool stream = (setup & 2) != 0;
    const bool drop_usage_chunk = (setup & 4) != 0;
    perpetuo::MeterLimits limits;
    limits.max_sse_event = (setup & 8) ? 64 : 1 << 20;
    limits.max_json_body = (setup & 8) ? 64 : 8 << 20;
    perpetuo::ResponseMeter m(format, stream, drop_usage_chunk, limits);
    std::string out;
    std::size_t cut = body.size() * (setup >> 4) / 16;
    m.feed(body.substr(0, cut), m.rewrites() ? &out : nullptr);
    m.feed(body.substr(cut), m.rewrites() ? &out : nullptr);
    m.finish(m.rewrites() ? &out : nullptr);
    check_usage(m.final_usage(static_cast<std::int64_t>(body.size())));
    check(out.size() <= body.size(), "the meter only ever removes bytes");
    check(m.bytes_seen() == body.size(), "every byte is counted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size < 1) return 0;
    std::string_view body = perpetuo::fuzz::as_text(data + 1, size - 1);
    read_alone(body);
    meter(body, data[0]);
    return 0;
}
