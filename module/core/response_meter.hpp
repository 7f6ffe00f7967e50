// Follows one provider response as it streams past and works out its token
// usage, without ever holding more than the unfinished tail of a stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sse_framer.hpp"
#include "usage.hpp"

namespace perpetuo {

enum class WireFormat { kOpenAI, kAnthropic };

struct MeterLimits {
    std::size_t max_json_body = 8 << 20;  // a non-stream body beyond this is not parsed
    std::size_t max_sse_event = 1 << 20;
};

class ResponseMeter : private SseSink {
public:
    // `drop_usage_chunk`: the gateway asked for OpenAI's usage chunk on the
    // client's behalf, so that chunk is metered and removed (rewrite mode).
    ResponseMeter(WireFormat format, bool event_stream, bool drop_usage_chunk,
                  const MeterLimits &limits);

    // Rewrite mode needs `out`: the bytes to send on. Observe mode passes null
    // and forwards the provider's bytes itself, untouched.
    bool rewrites() const { return event_stream_ && drop_usage_chunk_; }
    bool event_stream() const { return event_stream_; }
    void feed(std::string_view bytes, std::string *out);
    void finish(std::string *out);

    // The usage to bill. When the provider reported nothing usable (stream
    // cut, malformed body), tokens are estimated from the prompt size and the
    // text seen, and marked as estimated.
    Usage final_usage(std::int64_t prompt_bytes) const;

    bool malformed() const { return malformed_; }
    // The whole response went past (the end-of-body marker was seen).
    bool finished() const { return finished_; }
    std::uint64_t bytes_seen() const { return bytes_seen_; }
    std::uint64_t oversized_events() const { return framer_.oversized_events(); }

private:
    bool on_event(const SseEvent &event) override;
    void read_json_body();

    WireFormat format_;
    bool event_stream_;
    bool drop_usage_chunk_;
    MeterLimits limits_;
    SseFramer framer_;
    std::string body_;  // non-stream only, capped
    bool body_overflow_ = false;
    bool finished_ = false;
    bool malformed_ = false;
    bool output_final_ = false;  // OpenAI usage chunk or Anthropic message_delta seen
    Usage usage_;
    std::int64_t text_bytes_ = 0;
    std::uint64_t bytes_seen_ = 0;
};

}  // namespace perpetuo
