#include "response_meter.hpp"

#include <algorithm>

#include "request_body.hpp"
#include "usage_json.hpp"

namespace perpetuo {

namespace {

constexpr std::size_t kPadding = 64;

}  // namespace

ResponseMeter::ResponseMeter(WireFormat format, bool event_stream, bool drop_usage_chunk,
                             const MeterLimits &limits)
    : format_(format),
      event_stream_(event_stream),
      drop_usage_chunk_(drop_usage_chunk && format == WireFormat::kOpenAI),
      limits_(limits),
      framer_(limits.max_sse_event) {}

void ResponseMeter::feed(std::string_view bytes, std::string *out) {
    if (finished_) return;
    bytes_seen_ += bytes.size();
    if (event_stream_) {
        framer_.feed(bytes, *this, rewrites() ? out : nullptr);
        return;
    }
    if (body_overflow_) return;
    if (body_.size() + bytes.size() > limits_.max_json_body) {
        body_overflow_ = true;
        body_.clear();
        body_.shrink_to_fit();
        return;
    }
    body_.append(bytes);
}

void ResponseMeter::finish(std::string *out) {
    if (finished_) return;
    finished_ = true;
    if (event_stream_) {
        framer_.finish(rewrites() ? out : nullptr);
    } else if (!body_overflow_ && !body_.empty()) {
        read_json_body();
    }
}

void ResponseMeter::read_json_body() {
    body_.reserve(body_.size() + kPadding);
    UsageReading reading =
        format_ == WireFormat::kOpenAI
            ? read_openai_json(body_, body_.capacity())
            : read_anthropic_json(body_, body_.capacity(), AnthropicPart::kBody);
    if (!reading.ok) {
        malformed_ = true;
        text_bytes_ = static_cast<std::int64_t>(body_.size());
    } else {
        text_bytes_ = reading.text_bytes;
        if (reading.has_usage) {
            usage_ = reading.usage;
            output_final_ = true;
        }
    }
    body_.clear();
    body_.shrink_to_fit();
}

bool ResponseMeter::on_event(const SseEvent &event) {
    if (format_ == WireFormat::kOpenAI) {
        if (event.data == "[DONE]") return true;
        UsageReading reading = read_openai_json(event.data, event.data_capacity);
        if (!reading.ok) {
            malformed_ = true;
            return true;
        }
        text_bytes_ += reading.text_bytes;
        if (reading.has_usage) {
            usage_ = reading.usage;
            output_final_ = true;
        }
        return !(drop_usage_chunk_ && reading.usage_only);
    }
    AnthropicPart part = anthropic_part(event.type);
    if (part == AnthropicPart::kOther) return true;
    UsageReading reading = read_anthropic_json(event.data, event.data_capacity, part);
    if (!reading.ok) {
        malformed_ = true;
        return true;
    }
    text_bytes_ += reading.text_bytes;
    if (!reading.has_usage) return true;
    if (part == AnthropicPart::kMessageStart) {
        usage_ = reading.usage;
    } else {
        // message_delta counts are cumulative: take the latest, never add.
        usage_.output_tokens = reading.usage.output_tokens;
        usage_.uncached_input_tokens =
            std::max(usage_.uncached_input_tokens, reading.usage.uncached_input_tokens);
        usage_.cache_read_tokens =
            std::max(usage_.cache_read_tokens, reading.usage.cache_read_tokens);
        usage_.cache_write_tokens =
            std::max(usage_.cache_write_tokens, reading.usage.cache_write_tokens);
        usage_.reported = true;
        output_final_ = true;
    }
    return true;
}

Usage ResponseMeter::final_usage(std::int64_t prompt_bytes) const {
    Usage usage = usage_;
    if (output_final_) return usage;
    // The final counts never came: keep what was reported, estimate the rest.
    usage.estimated = true;
    if (usage.input_tokens() == 0) usage.uncached_input_tokens = estimate_tokens(prompt_bytes);
    usage.output_tokens = std::max(usage.output_tokens, estimate_tokens(text_bytes_));
    return usage;
}

}  // namespace perpetuo
