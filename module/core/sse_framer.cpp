#include "sse_framer.hpp"

#include <algorithm>
#include <cstring>

namespace perpetuo {

namespace {

constexpr std::size_t kPadding = 64;  // simdjson's SIMDJSON_PADDING
constexpr std::size_t kLineSlack = 64;
constexpr std::size_t kFieldPrefix = 16;

}  // namespace

void SseFramer::take_line_bytes(std::string_view bytes) {
    if (line_oversized_) return;
    // Room for a field name beside a value as large as an event may be, so
    // where a chunk splits a line never changes whether it fits.
    if (line_.size() + bytes.size() > max_event_bytes_ + kLineSlack) {
        line_oversized_ = true;
        line_.append(bytes.substr(0, kFieldPrefix));
        line_.resize(std::min(line_.size(), kFieldPrefix));  // enough to tell the field
        return;
    }
    line_.append(bytes);
}

void SseFramer::feed(std::string_view chunk, SseSink &sink, std::string *out) {
    if (chunk.empty()) return;  // must not forget a CR waiting for its LF
    std::size_t pos = 0;
    if (after_cr_ && chunk[0] == '\n') {
        // The LF of a CRLF split across chunks goes where its CR went.
        if (out) {
            if (boundary_ == Boundary::kKept)
                out->push_back('\n');
            else if (boundary_ == Boundary::kNone)
                raw_.push_back('\n');
        }
        pos = 1;
    }
    after_cr_ = false;
    while (pos < chunk.size()) {
        const char *begin = chunk.data() + pos;
        std::size_t rest = chunk.size() - pos;
        const void *lf = std::memchr(begin, '\n', rest);
        const void *cr = std::memchr(begin, '\r', lf ? static_cast<const char *>(lf) - begin : rest);
        const char *end = static_cast<const char *>(cr ? cr : lf);
        if (end == nullptr) {
            take_line_bytes(std::string_view(begin, rest));
            if (out) raw_.append(begin, rest);
            break;
        }
        std::size_t terminator = 1;
        if (*end == '\r') {
            if (end + 1 < chunk.data() + chunk.size()) {
                if (end[1] == '\n') terminator = 2;
            } else {
                after_cr_ = true;  // an LF at the start of the next chunk belongs to this line
            }
        }
        std::string_view piece(begin, static_cast<std::size_t>(end - begin));
        if (out) raw_.append(begin, piece.size() + terminator);
        pos += piece.size() + terminator;
        if (line_.empty() && !line_oversized_) {
            if (piece.size() > max_event_bytes_ + kLineSlack) {
                // The same cap as for a line that spans chunks.
                line_oversized_ = true;
                piece = piece.substr(0, kFieldPrefix);
            }
            line_complete(piece, sink, out);
        } else {
            take_line_bytes(piece);
            std::string line;
            line.swap(line_);
            line_complete(line, sink, out);
        }
        line_oversized_ = false;
    }
    // A provider that never ends its lines must not grow raw_ without bound.
    if (out && raw_.size() > max_event_bytes_ * 2 + kPadding) {
        out->append(raw_);
        raw_.clear();
    }
}

void SseFramer::line_complete(std::string_view line, SseSink &sink, std::string *out) {
    boundary_ = Boundary::kNone;
    if (line_oversized_) {
        // Only an oversized data line spoils its event; a long comment or
        // unknown field is just skipped.
        if (line.rfind("data", 0) == 0 && (line.size() == 4 || line[4] == ':')) oversized_ = true;
        return;
    }
    if (line.empty()) {
        bool keep = true;
        if (has_data_ && !oversized_) {
            if (!data_.empty() && data_.back() == '\n') data_.pop_back();
            data_.reserve(data_.size() + kPadding);
            SseEvent event;
            event.type = type_.empty() ? std::string_view("message") : std::string_view(type_);
            event.data = data_;
            event.data_capacity = data_.capacity();
            keep = sink.on_event(event);
        }
        if (oversized_) ++oversized_events_;
        if (out) {
            if (keep) out->append(raw_);
            raw_.clear();
        }
        boundary_ = keep ? Boundary::kKept : Boundary::kDropped;
        data_.clear();
        type_.clear();
        has_data_ = false;
        oversized_ = false;
        return;
    }
    if (line[0] == ':') return;  // comment / keep-alive
    std::string_view field = line, value;
    std::size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
        if (data_.size() + value.size() + 1 > max_event_bytes_) {
            oversized_ = true;
            data_.clear();
            return;
        }
        data_.append(value);
        data_.push_back('\n');
        has_data_ = true;
    } else if (field == "event") {
        type_.assign(value.substr(0, 64));
    }
}

void SseFramer::finish(std::string *out) {
    if (out) {
        out->append(raw_);
        raw_.clear();
    }
    line_.clear();
    data_.clear();
    type_.clear();
    has_data_ = false;
    after_cr_ = false;
}

}  // namespace perpetuo
