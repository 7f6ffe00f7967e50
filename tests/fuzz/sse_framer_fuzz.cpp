// SseFramer on arbitrary streams cut at arbitrary points. Input: byte 0
// picks the event cap, bytes 1-8 the chunk sizes (cycled), the rest is the
// stream. Framing must not depend on where chunks end; rewrite mode with a
// sink that keeps every event must pass the stream on byte for byte.
#include <utility>
#include <vector>

#include "fuzz_support.hpp"
#include "sse_framer.hpp"

namespace {

using perpetuo::SseEvent;
using perpetuo::SseFramer;
using perpetuo::fuzz::check;

constexpr std::size_t kHeader = 9;

struct Recorder : perpetuo::SseSink {
    explicit Recorder(std::uint8_t drop_mask) : drop_mask(drop_mask) {}

    bool on_event(const SseEvent &event) override {
        check(event.data_capacity >= event.data.size() + perpetuo::fuzz::kJsonPadding,
              "event data is padded for simdjson");
        volatile char last_readable = event.data.data()[event.data_capacity - 1];
        (void)last_readable;
        events.emplace_back(event.type, event.data);
        return ((drop_mask >> (events.size() % 8)) & 1) == 0;
    }

    std::uint8_t drop_mask;  // bit i set: drop every event whose index is i mod 8
    std::vector<std::pair<std::string, std::string>> events;
};

struct Run {
    std::vector<std::pair<std::string, std::string>> events;
    std::string out;
    std::uint64_t oversized = 0;
};

Run frame(std::string_view stream, std::size_t cap, const std::uint8_t *chunk_sizes, bool rewrite,
          std::uint8_t drop_mask) {
    SseFramer framer(cap);
    Recorder sink(drop_mask);
    Run run;
    std::string *out = rewrite ? &run.out : nullptr;
    for (std::size_t pos = 0, i = 0; pos < stream.size(); ++i) {
        std::size_t n = chunk_sizes ? 1 + chunk_sizes[i % 8] : stream.size();
        framer.feed(stream.substr(pos, n), sink, out);
        pos += n;
    }
    framer.finish(out);
    run.events = std::move(sink.events);
    run.oversized = framer.oversized_events();
    return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size < kHeader) return 0;
    const std::size_t cap = 8 + static_cast<std::size_t>(data[0]) * 4;
    const std::uint8_t *chunk_sizes = data + 1;
    std::string_view stream = perpetuo::fuzz::as_text(data + kHeader, size - kHeader);

    Run whole = frame(stream, cap, nullptr, true, 0);
    check(whole.out == stream, "rewrite mode keeping every event passes the stream unchanged");

    Run chunked = frame(stream, cap, chunk_sizes, true, 0);
    check(chunked.out == stream, "chunked rewrite keeping every event passes the stream unchanged");
    check(chunked.events == whole.events, "the same events wherever the stream is split");
    check(chunked.oversized == whole.oversized, "the same oversized count wherever split");

    Run observed = frame(stream, cap, chunk_sizes, false, 0);
    check(observed.events == whole.events, "observe mode sees the events rewrite mode sees");

    Run dropping = frame(stream, cap, chunk_sizes, true, data[1]);
    check(dropping.out.size() <= stream.size(), "dropping events never adds bytes");
    return 0;
}
