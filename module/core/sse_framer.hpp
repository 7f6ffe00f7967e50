// Incremental Server-Sent Events framing (WHATWG rules): LF, CRLF and CR line
// ends, split at any byte; only the unfinished line and event are kept
// between chunks, and both are capped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace perpetuo {

struct SseEvent {
    std::string_view type;  // "message" when the event had no "event:" line
    std::string_view data;  // "data:" lines joined by '\n'
    std::size_t data_capacity = 0;  // bytes readable past data.data() (for padded parsers)
};

class SseSink {
public:
    virtual ~SseSink() = default;
    // Returns false to ask that the event's raw bytes be dropped (rewrite mode).
    virtual bool on_event(const SseEvent &event) = 0;
};

class SseFramer {
public:
    explicit SseFramer(std::size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

    // Frames `chunk`. In rewrite mode (`out` not null) appends to *out every
    // byte up to the last event boundary except those of dropped events, and
    // keeps the rest until a later chunk completes it.
    void feed(std::string_view chunk, SseSink &sink, std::string *out);

    // End of stream: an unterminated event is not dispatched (per the spec);
    // in rewrite mode its raw bytes are passed on as the provider sent them.
    void finish(std::string *out);

    std::uint64_t oversized_events() const { return oversized_events_; }
    // Bytes held between chunks right now (the unfinished tail), for tests.
    std::size_t held_bytes() const { return line_.size() + data_.size() + raw_.size(); }

private:
    void line_complete(std::string_view line, SseSink &sink, std::string *out);
    void take_line_bytes(std::string_view bytes);

    std::size_t max_event_bytes_;
    std::string line_;  // unfinished line carried across chunks
    std::string data_;
    std::string type_;
    std::string raw_;  // rewrite mode: raw bytes since the last event boundary
    bool after_cr_ = false;
    // What the last completed line was, for an LF that arrives after its CR.
    enum class Boundary { kNone, kKept, kDropped } boundary_ = Boundary::kNone;
    bool has_data_ = false;
    bool oversized_ = false;
    bool line_oversized_ = false;
    std::uint64_t oversized_events_ = 0;
};

}  // namespace perpetuo
