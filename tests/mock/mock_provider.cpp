// mock_provider: a fast mock of the OpenAI and Anthropic HTTP APIs for PERPETUO.
//
// Two users shape the design:
//  * pytest integration tests: they need the real wire formats, a log of what the gateway sent
//    upstream, totals of the usage the mock reported, and injectable faults/latency.
//  * the wrk benchmark: the mock must not be the bottleneck, hence one epoll loop per thread,
//    non-blocking sockets, keep-alive, timers in the event loop (never sleep), and no per-request
//    threads.
//
// Every response is turned into a "plan": a list of pieces, each written with its own send()
// after an optional delay, plus an end action (keep-alive, close, RST, hang). Latency, chunk
// delay, split writes and faults are all expressed as plans, so the I/O code has one path.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using simdjson::SUCCESS;
using simdjson::dom::element;

constexpr size_t kMaxBody = 8u << 20;  // larger bodies get 413
constexpr size_t kMaxHead = 64u << 10;
// Raw input we buffer per connection; chunked framing may add overhead on top of the body.
constexpr size_t kMaxInput = 2 * kMaxBody + kMaxHead;
constexpr size_t kLogEntries = 200;
constexpr size_t kLogBodyMax = 1u << 20;  // keeps the request log bounded (200 x 1 MiB worst case)
constexpr int64_t kMaxTokens = 100000;    // streams are materialised up front; keep them bounded
constexpr int64_t kMaxDelayMs = 3600 * 1000;

// ---------------------------------------------------------------------------------------------
// Faults and run-time configuration

enum class Fault { kNone, k500, k429, k503, kReset, kCut, kHang, kMalformed };
constexpr const char *kFaultNames[] = {"none",  "500", "429",  "503",
                                       "reset", "cut", "hang", "malformed"};

std::optional<Fault> ParseFault(std::string_view s) {
    for (size_t i = 0; i < std::size(kFaultNames); ++i) {
        if (s == kFaultNames[i]) return static_cast<Fault>(i);
    }
    return std::nullopt;
}

// Instance defaults; POST /_mock/config changes them while loops read them, hence atomics.
struct RuntimeConfig {
    std::atomic<int> fault{0};
    std::atomic<int64_t> latency_ms{0};
    std::atomic<int64_t> chunk_delay_ms{0};
};
RuntimeConfig g_cfg;
std::atomic<uint64_t> g_seq{0};  // ids for chatcmpl-<n> / msg_<n>, unique across threads
int g_stop_fd = -1;              // eventfd written by the signal handler, watched by every loop

// ---------------------------------------------------------------------------------------------
// Shared state: request log and usage statistics. Touched once or twice per request, so a single
// mutex is cheap enough even with several loop threads.

struct Usage {
    int64_t prompt = 0, completion = 0, cached = 0, cache_creation = 0;
    bool Any() const { return prompt || completion || cached || cache_creation; }
};

// What to add to the stats once a piece of output has been fully handed to the kernel.
struct Delta {
    int status = 0;  // counts into by_status
    Usage usage;
    bool Any() const { return status != 0 || usage.Any(); }
};

struct LogEntry {
    std::string method, target, body;
    size_t body_size = 0;
    std::vector<std::pair<std::string, std::string>> headers;
};

struct Shared {
    std::mutex mu;
    uint64_t requests = 0;
    std::map<int, uint64_t> by_status;
    Usage usage;
    std::deque<LogEntry> log;
} g_shared;

void ApplyDelta(const Delta &d) {
    std::lock_guard<std::mutex> lock(g_shared.mu);
    if (d.status) ++g_shared.by_status[d.status];
    g_shared.usage.prompt += d.usage.prompt;
    g_shared.usage.completion += d.usage.completion;
    g_shared.usage.cached += d.usage.cached;
    g_shared.usage.cache_creation += d.usage.cache_creation;
}

// ---------------------------------------------------------------------------------------------
// String building helpers

struct JStr {  // a value to be emitted as a JSON string literal
    std::string_view s;
};

// Length of a valid UTF-8 sequence at p, or 0 if invalid (such bytes become U+FFFD so that the
// JSON we emit for logged headers/bodies is always parseable).
size_t Utf8SeqLen(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t k = 1; k < len; ++k) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return len;
}

void AppendJsonString(std::string &o, std::string_view s) {
    static const char kHex[] = "0123456789abcdef";
    const auto *p = reinterpret_cast<const unsigned char *>(s.data());
    const size_t n = s.size();
    o.push_back('"');
    size_t i = 0;
    while (i < n) {
        size_t j = i;  // copy runs of plain ASCII in one go
        while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\') ++j;
        o.append(s.data() + i, j - i);
        if (j == n) break;
        i = j;
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t len = Utf8SeqLen(p + i, n - i);
            if (len == 0) {
                o += "\\ufffd";
                ++i;
            } else {
                o.append(s.data() + i, len);
                i += len;
            }
            continue;
        }
        switch (c) {
            case '"':
                o += "\\\"";
                break;
            case '\\':
                o += "\\\\";
                break;
            case '\n':
                o += "\\n";
                break;
            case '\r':
                o += "\\r";
                break;
            case '\t':
                o += "\\t";
                break;
            default:
                o += "\\u00";
                o.push_back(kHex[c >> 4]);
                o.push_back(kHex[c & 15]);
        }
        ++i;
    }
    o.push_back('"');
}

inline void Put(std::string &o, std::string_view s) {
    o.append(s);
}
inline void Put(std::string &o, const char *s) {
    o.append(s);
}
inline void Put(std::string &o, const std::string &s) {
    o.append(s);
}
inline void Put(std::string &o, JStr j) {
    AppendJsonString(o, j.s);
}
template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
inline void Put(std::string &o, T v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    o.append(buf, r.ptr);
}
template <class... A>
void Cat(std::string &o, const A &...a) {
    (Put(o, a), ...);
}
template <class... A>
std::string Str(const A &...a) {
    std::string o;
    Cat(o, a...);
    return o;
}

bool IEquals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x | 0x20) == (y | 0x20);  // ASCII letters only; fine for header tokens
           });
}

bool IContains(std::string_view hay, std::string_view needle) {
    if (needle.size() > hay.size()) return false;
    for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
        if (IEquals(hay.substr(i, needle.size()), needle)) return true;
    }
    return false;
}

std::optional<int64_t> ParseNonNeg(std::string_view s) {
    int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v < 0) return std::nullopt;
    return v;
}

int64_t NowUs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

const char *Reason(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 413:
            return "Payload Too Large";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        default:
            return "Unknown";
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP request head

struct Head {
    std::string_view method, target, path;  // views into the connection's input buffer
    int minor = 1;
    std::vector<std::pair<std::string_view, std::string_view>> headers;  // names lowercased
    bool keep_alive = true, chunked = false, expect_continue = false;
    size_t content_length = 0;

    std::string_view Get(std::string_view name) const {
        for (const auto &[k, v] : headers) {
            if (k == name) return v;
        }
        return {};
    }
    std::optional<int64_t> GetInt(std::string_view name) const {
        std::string_view v = Get(name);
        return v.empty() ? std::nullopt : ParseNonNeg(v);
    }
};

bool IsTokenChar(char c) {
    return c > 0x20 && c < 0x7f && !std::strchr("\"(),/:;<=>?@[\\]{}", c);
}

// Parses request line + header lines in p[0, n) (n includes the last line's CRLF). Header names
// are lowercased in place. Returns 0 or an HTTP error status.
int ParseHead(char *p, size_t n, Head &h) {
    auto headers = std::move(h.headers);  // keep the vector's capacity across requests
    h = Head{};
    h.headers = std::move(headers);
    h.headers.clear();
    char *end = p + n;
    char *le = static_cast<char *>(memmem(p, n, "\r\n", 2));
    std::string_view line(p, le - p);
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == 0 || sp1 == line.npos || sp2 == sp1) return 400;
    h.method = line.substr(0, sp1);
    h.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (version == "HTTP/1.1") {
        h.minor = 1;
    } else if (version == "HTTP/1.0") {
        h.minor = 0;
    } else {
        return 400;
    }
    for (char c : h.method) {
        if (!IsTokenChar(c)) return 400;
    }
    if (h.target.empty() || h.target.find(' ') != h.target.npos) return 400;
    h.path = h.target.substr(0, h.target.find('?'));

    bool conn_close = false, conn_keep = false, have_cl = false;
    for (char *q = le + 2; q < end;) {
        char *e = static_cast<char *>(memmem(q, end - q, "\r\n", 2));
        char *colon = static_cast<char *>(memchr(q, ':', e - q));
        if (!colon || colon == q) return 400;
        for (char *c = q; c < colon; ++c) {
            if (!IsTokenChar(*c)) return 400;  // also rejects obs-fold and "name : value"
            if (*c >= 'A' && *c <= 'Z') *c += 'a' - 'A';
        }
        char *vb = colon + 1;
        char *ve = e;
        while (vb < ve && (*vb == ' ' || *vb == '\t')) ++vb;
        while (ve > vb && (ve[-1] == ' ' || ve[-1] == '\t')) --ve;
        std::string_view name(q, colon - q), value(vb, ve - vb);
        h.headers.emplace_back(name, value);
        q = e + 2;

        if (name == "content-length") {
            auto v = ParseNonNeg(value);
            if (!v || (have_cl && size_t(*v) != h.content_length)) return 400;
            have_cl = true;
            h.content_length = *v;
        } else if (name == "transfer-encoding") {
            // Only "chunked" (possibly after other codings we do not support) is acceptable.
            if (value.size() < 7 || !IEquals(value.substr(value.size() - 7), "chunked")) return 501;
            if (value.size() > 7) return 501;
            h.chunked = true;
        } else if (name == "connection") {
            conn_close |= IContains(value, "close");
            conn_keep |= IContains(value, "keep-alive");
        } else if (name == "expect") {
            h.expect_continue = IEquals(value, "100-continue");
        }
    }
    if (h.chunked) {
        h.content_length = 0;
        if (have_cl) conn_close = true;  // ambiguous framing (RFC 9112 6.3): don't reuse
    }
    if (h.content_length > kMaxBody) return 413;
    h.keep_alive = h.minor == 1 ? !conn_close : (conn_keep && !conn_close);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Responses

struct Event {
    std::string data;  // one complete SSE event
    Usage usage;       // usage reported by this event (counted once it is written)
};

struct Resp {
    int status = 200;
    const char *ctype = "application/json";
    std::string extra_headers;
    bool stream = false;
    std::string body;  // non-stream
    Usage usage;       // non-stream: counted once the whole body is written
    std::vector<Event> events;
    bool cut = false;
    size_t cut_events = 0;  // stream + cut: events sent before the RST
};

Resp ErrorResp(int status, bool anthropic, std::string_view msg, std::string_view type,
               const char *code = nullptr) {
    Resp r;
    r.status = status;
    if (anthropic) {
        Cat(r.body, "{\"type\":\"error\",\"error\":{\"type\":", JStr{type},
            ",\"message\":", JStr{msg}, "}}");
    } else {
        Cat(r.body, "{\"error\":{\"message\":", JStr{msg}, ",\"type\":", JStr{type},
            ",\"param\":null,\"code\":");
        if (code) {
            Cat(r.body, JStr{code});
        } else {
            r.body += "null";
        }
        r.body += "}}";
    }
    return r;
}

// Everything the generators need besides the parsed body.
struct Gen {
    uint64_t n;
    int64_t created;
    Fault fault;
    const Head *head;
};

int64_t Ceil4(size_t len) {
    return int64_t((len + 3) / 4);
}

// Byte length of a content value: a string, or an array of parts/blocks carrying "text".
size_t TextLen(element v) {
    std::string_view s;
    if (v.get_string().get(s) == SUCCESS) return s.size();
    simdjson::dom::array parts;
    size_t len = 0;
    if (v.get_array().get(parts) == SUCCESS) {
        for (element part : parts) {
            if (part["text"].get_string().get(s) == SUCCESS) len += s.size();
        }
    }
    return len;
}

int64_t MessagesTokens(element doc) {
    int64_t tokens = 0;
    simdjson::dom::array msgs;
    if (doc["messages"].get_array().get(msgs) != SUCCESS) return 0;
    for (element m : msgs) {
        element content;
        size_t len = m["content"].get(content) == SUCCESS ? TextLen(content) : 0;
        tokens += Ceil4(len) + 1;
    }
    return tokens;
}

std::string_view Model(element doc) {
    std::string_view m;
    return doc["model"].get_string().get(m) == SUCCESS ? m : std::string_view("mock-model");
}

bool GetBool(simdjson::simdjson_result<element> v) {
    bool b = false;
    return v.get_bool().get(b) == SUCCESS && b;
}

int64_t CompletionTokens(const Gen &g, element doc) {
    if (auto v = g.head->GetInt("x-mock-completion-tokens")) return std::min(*v, kMaxTokens);
    for (const char *key : {"max_tokens", "max_completion_tokens"}) {
        int64_t v;
        if (doc[key].get_int64().get(v) == SUCCESS && v >= 0 && v < 64) return v;
    }
    return 16;
}

std::string Words(int64_t n) {  // "tok tok tok"
    std::string s;
    s.reserve(n * 4);
    for (int64_t i = 0; i < n; ++i) s += i ? " tok" : "tok";
    return s;
}

std::string OpenAiUsage(const Usage &u) {
    return Str("{\"prompt_tokens\":", u.prompt, ",\"completion_tokens\":", u.completion,
               ",\"total_tokens\":", u.prompt + u.completion,
               ",\"prompt_tokens_details\":{\"cached_tokens\":", u.cached, "}}");
}

size_t CutPoint(size_t total, size_t cap) {
    return std::max<size_t>(1, std::min(total / 2, cap));
}

// OpenAI streams share one shape: a per-chunk prefix ending in "choices":[, a choice, a suffix.
struct OpenAiStream {
    Resp &r;
    std::string pre;
    bool include_usage;
    void Chunk(std::string_view choice) {
        r.events.push_back(
            {Str(pre, choice, include_usage ? "],\"usage\":null}\n\n" : "]}\n\n"), {}});
    }
    void Broken(std::string_view partial) { r.events.push_back({Str(pre, partial, "\n\n"), {}}); }
    void UsageChunk(const Usage &u) {
        r.events.push_back({Str(pre, "],\"usage\":", OpenAiUsage(u), "}\n\n"), u});
    }
    void Done() { r.events.push_back({"data: [DONE]\n\n", {}}); }
};

Resp ChatResp(const Gen &g, element doc) {
    Usage u;
    u.prompt = MessagesTokens(doc);
    u.completion = CompletionTokens(g, doc);
    u.cached = std::min(g.head->GetInt("x-mock-cached-tokens").value_or(0), u.prompt);
    std::string_view model = Model(doc);
    Resp r;
    if (!GetBool(doc["stream"])) {
        if (g.fault == Fault::kMalformed) {
            r.body = Str("{\"id\":\"chatcmpl-", g.n,
                         "\",\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":");
            return r;
        }
        r.body = Str(
            "{\"id\":\"chatcmpl-", g.n, "\",\"object\":\"chat.completion\",\"created\":", g.created,
            ",\"model\":", JStr{model},
            ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"",
            Words(u.completion),
            "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":", OpenAiUsage(u),
            ",\"system_fingerprint\":\"fp_mock\"}");
        r.usage = u;
        return r;
    }
    r.stream = true;
    r.ctype = "text/event-stream";
    OpenAiStream s{
        r,
        Str("data: {\"id\":\"chatcmpl-", g.n,
            "\",\"object\":\"chat.completion.chunk\",\"created\":", g.created,
            ",\"model\":", JStr{model}, ",\"system_fingerprint\":\"fp_mock\",\"choices\":["),
        GetBool(doc["stream_options"]["include_usage"])};
    const char *kTok =
        "{\"index\":0,\"delta\":{\"content\":\"tok \"},\"logprobs\":null,\"finish_reason\":null}";
    s.Chunk(
        "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
        "\"finish_reason\":null}");
    if (g.fault == Fault::kMalformed) {
        s.Chunk(kTok);
        s.Broken("{\"index\":0,\"delta\":{\"content\":\"tok");
        s.Done();
        return r;
    }
    for (int64_t i = 0; i < u.completion; ++i) s.Chunk(kTok);
    s.Chunk("{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}");
    if (s.include_usage) s.UsageChunk(u);
    s.Done();
    r.cut_events = CutPoint(r.events.size(), 1 + u.completion);  // never reaches finish/usage
    return r;
}

Resp CompletionsResp(const Gen &g, element doc) {
    Usage u;
    element prompt;
    if (doc["prompt"].get(prompt) == SUCCESS) {
        simdjson::dom::array arr;
        if (prompt.get_array().get(arr) == SUCCESS) {
            for (element p : arr) u.prompt += Ceil4(TextLen(p)) + 1;
        } else {
            u.prompt = Ceil4(TextLen(prompt)) + 1;
        }
    }
    u.completion = CompletionTokens(g, doc);
    u.cached = std::min(g.head->GetInt("x-mock-cached-tokens").value_or(0), u.prompt);
    std::string_view model = Model(doc);
    Resp r;
    if (!GetBool(doc["stream"])) {
        if (g.fault == Fault::kMalformed) {
            r.body = Str("{\"id\":\"cmpl-", g.n,
                         "\",\"object\":\"text_completion\",\"usage\":{\"prompt_tokens\":");
            return r;
        }
        r.body =
            Str("{\"id\":\"cmpl-", g.n, "\",\"object\":\"text_completion\",\"created\":", g.created,
                ",\"model\":", JStr{model}, ",\"choices\":[{\"text\":\"", Words(u.completion),
                "\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":",
                OpenAiUsage(u), ",\"system_fingerprint\":\"fp_mock\"}");
        r.usage = u;
        return r;
    }
    r.stream = true;
    r.ctype = "text/event-stream";
    OpenAiStream s{r,
                   Str("data: {\"id\":\"cmpl-", g.n,
                       "\",\"object\":\"text_completion\",\"created\":", g.created, ",\"model\":",
                       JStr{model}, ",\"system_fingerprint\":\"fp_mock\",\"choices\":["),
                   GetBool(doc["stream_options"]["include_usage"])};
    const char *kTok = "{\"text\":\"tok \",\"index\":0,\"logprobs\":null,\"finish_reason\":null}";
    if (g.fault == Fault::kMalformed) {
        s.Chunk(kTok);
        s.Chunk(kTok);
        s.Broken("{\"text\":\"tok");
        s.Done();
        return r;
    }
    for (int64_t i = 0; i < u.completion; ++i) s.Chunk(kTok);
    s.Chunk("{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}");
    if (s.include_usage) s.UsageChunk(u);
    s.Done();
    r.cut_events = CutPoint(r.events.size(), u.completion);
    return r;
}

Resp EmbeddingsResp(const Gen &g, element doc) {
    Usage u;
    size_t items = 1;
    element input;
    if (doc["input"].get(input) == SUCCESS) {
        simdjson::dom::array arr;
        if (input.get_array().get(arr) == SUCCESS) {
            items = arr.size();
            for (element in : arr) {
                simdjson::dom::array ids;
                if (in.is_number()) {
                    u.prompt += 1;  // pre-tokenised input: one token per id
                } else if (in.get_array().get(ids) == SUCCESS) {
                    u.prompt += int64_t(ids.size());
                } else {
                    u.prompt += Ceil4(TextLen(in));
                }
            }
        } else {
            u.prompt = Ceil4(TextLen(input));
        }
    }
    Resp r;
    if (g.fault == Fault::kMalformed) {
        r.body =
            "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":[0."
            "1,";
        return r;
    }
    r.body = "{\"object\":\"list\",\"data\":[";
    for (size_t i = 0; i < items; ++i) {
        Cat(r.body, i ? "," : "", "{\"object\":\"embedding\",\"index\":", i,
            ",\"embedding\":[0.1,0.2,0.3]}");
    }
    Cat(r.body, "],\"model\":", JStr{Model(doc)}, ",\"usage\":{\"prompt_tokens\":", u.prompt,
        ",\"total_tokens\":", u.prompt, "}}");
    r.usage = u;
    return r;
}

Resp MessagesResp(const Gen &g, element doc) {
    Usage u;  // prompt = input_tokens, cached = cache_read, cache_creation = cache_creation
    u.prompt = MessagesTokens(doc);
    element system;
    if (doc["system"].get(system) == SUCCESS) u.prompt += Ceil4(TextLen(system)) + 1;
    u.completion = CompletionTokens(g, doc);
    u.cached = g.head->GetInt("x-mock-cache-read-tokens").value_or(0);
    u.cache_creation = g.head->GetInt("x-mock-cache-creation-tokens").value_or(0);
    std::string_view model = Model(doc);
    std::string usage_in =
        Str("\"input_tokens\":", u.prompt, ",\"cache_creation_input_tokens\":", u.cache_creation,
            ",\"cache_read_input_tokens\":", u.cached);
    Resp r;
    if (!GetBool(doc["stream"])) {
        if (g.fault == Fault::kMalformed) {
            r.body =
                Str("{\"id\":\"msg_", g.n, "\",\"type\":\"message\",\"usage\":{\"input_tokens\":");
            return r;
        }
        r.body = Str("{\"id\":\"msg_", g.n,
                     "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", JStr{model},
                     ",\"content\":[{\"type\":\"text\",\"text\":\"", Words(u.completion),
                     "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{",
                     usage_in, ",\"output_tokens\":", u.completion, "}}");
        r.usage = u;
        return r;
    }
    r.stream = true;
    r.ctype = "text/event-stream";
    auto ev = [&r](const char *name, std::string_view data, Usage usage = {}) {
        r.events.push_back({Str("event: ", name, "\ndata: ", data, "\n\n"), usage});
    };
    Usage input = u;
    input.completion = 0;  // output is reported (and counted) by message_delta
    ev("message_start",
       Str("{\"type\":\"message_start\",\"message\":{\"id\":\"msg_", g.n,
           "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", JStr{model},
           ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{", usage_in,
           ",\"output_tokens\":1}}}"),
       input);
    ev("content_block_start",
       "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
       "\"text\":"
       "\"\"}}");
    ev("ping", "{\"type\": \"ping\"}");
    const char *kDelta =
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
        "\"tok \"}}";
    if (g.fault == Fault::kMalformed) {
        ev("content_block_delta", kDelta);
        ev("content_block_delta",
           "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
           "\"text\":"
           "\"tok");
        ev("message_stop", "{\"type\":\"message_stop\"}");
        return r;
    }
    for (int64_t i = 0; i < u.completion; ++i) ev("content_block_delta", kDelta);
    ev("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}");
    Usage output;
    output.completion = u.completion;
    ev("message_delta",
       Str("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":"
           "null},\"usage\":{\"output_tokens\":",
           u.completion, "}}"),
       output);
    ev("message_stop", "{\"type\":\"message_stop\"}");
    r.cut_events = CutPoint(r.events.size(), 3 + u.completion);  // never reaches message_delta
    return r;
}

// ---------------------------------------------------------------------------------------------
// Control endpoint payloads

std::string StatsJson() {
    std::lock_guard<std::mutex> lock(g_shared.mu);
    std::string o = Str("{\"requests\":", g_shared.requests, ",\"by_status\":{");
    bool first = true;
    for (const auto &[status, count] : g_shared.by_status) {
        Cat(o, first ? "\"" : ",\"", status, "\":", count);
        first = false;
    }
    const Usage &u = g_shared.usage;
    Cat(o, "},\"prompt_tokens\":", u.prompt, ",\"completion_tokens\":", u.completion,
        ",\"cached_tokens\":", u.cached, ",\"cache_creation_tokens\":", u.cache_creation, "}");
    return o;
}

std::string LogJson() {
    std::lock_guard<std::mutex> lock(g_shared.mu);
    std::string o = "[";
    for (const LogEntry &e : g_shared.log) {
        Cat(o, o.size() > 1 ? "," : "", "{\"method\":", JStr{e.method},
            ",\"path\":", JStr{e.target}, ",\"headers\":{");
        for (size_t i = 0; i < e.headers.size(); ++i) {
            Cat(o, i ? "," : "", JStr{e.headers[i].first}, ":", JStr{e.headers[i].second});
        }
        Cat(o, "},\"body\":", JStr{e.body}, ",\"body_size\":", e.body_size,
            ",\"body_truncated\":", e.body.size() < e.body_size ? "true" : "false", "}");
    }
    o += "]";
    return o;
}

std::string ConfigJson() {
    return Str("{\"fault\":\"", kFaultNames[g_cfg.fault.load()],
               "\",\"latency_ms\":", g_cfg.latency_ms.load(),
               ",\"chunk_delay_ms\":", g_cfg.chunk_delay_ms.load(), "}");
}

void RecordRequest(const Head &h, std::string_view body) {
    LogEntry e;
    e.method = h.method;
    e.target = h.target;
    e.body = body.substr(0, kLogBodyMax);
    e.body_size = body.size();
    for (const auto &hv : h.headers) {  // repeated headers are joined, as HTTP allows
        auto it = std::find_if(e.headers.begin(), e.headers.end(),
                               [&](const auto &p) { return p.first == hv.first; });
        if (it == e.headers.end()) {
            e.headers.emplace_back(hv.first, hv.second);
        } else {
            Cat(it->second, ", ", hv.second);
        }
    }
    std::lock_guard<std::mutex> lock(g_shared.mu);
    ++g_shared.requests;
    g_shared.log.push_back(std::move(e));
    if (g_shared.log.size() > kLogEntries) g_shared.log.pop_front();
}

// ---------------------------------------------------------------------------------------------
// Connections and the event loop

struct Piece {
    std::string data;  // written with its own send(); may be empty (pure delay)
    int64_t delay_ms = 0;
    Delta delta;
};

enum class End { kKeepAlive, kClose, kReset, kHang };

struct Overrides {
    int64_t latency_ms = 0, chunk_delay_ms = 0;
    Fault fault = Fault::kNone;
    size_t split = 0;
};

struct Conn {
    int fd = -1;
    uint64_t id = 0;
    uint32_t interest = 0;  // current epoll event mask

    std::string in;
    size_t in_off = 0;     // start of the next unparsed request
    size_t scan_from = 0;  // resume point of the search for the end of the head
    size_t chunk_pos = 0;  // chunked request body: start of the next chunk-size line (0 = none)
    std::string chunk_body;
    bool continue_sent = false;

    std::string out;
    size_t out_off = 0;
    Delta pending;  // applied once `out` is fully written

    std::vector<Piece> plan;
    size_t plan_idx = 0;
    bool plan_active = false;
    End end = End::kKeepAlive;
    bool waited = false;  // the delay of plan[plan_idx] has elapsed
    bool timer_armed = false;
    uint64_t timer_seq = 0;

    bool peer_eof = false, hang = false, dead = false, reset_on_close = false;
};

volatile sig_atomic_t g_signalled = 0;

void OnSignal(int) {
    g_signalled = 1;
    uint64_t one = 1;
    ssize_t r = write(g_stop_fd, &one, sizeof one);  // async-signal-safe wake-up of all loops
    (void)r;
}

class Loop {
  public:
    explicit Loop(int listen_fd) : lfd_(listen_fd) {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) {
            perror("epoll_create1");
            exit(1);
        }
        Watch(lfd_);
        Watch(g_stop_fd);  // level-triggered and never read: wakes every loop
    }

    ~Loop() {
        for (auto &c : conns_) {
            if (c) close(c->fd);
        }
        close(ep_);
        close(lfd_);
    }

    void Run() {
        std::vector<epoll_event> evs(256);
        bool stop = false;
        while (!stop) {
            int timeout = -1;
            if (!timers_.empty()) {
                int64_t d = timers_.top().when_us - NowUs();
                timeout = d <= 0 ? 0 : int((d + 999) / 1000);
            }
            int n = epoll_wait(ep_, evs.data(), int(evs.size()), timeout);
            if (n < 0 && errno != EINTR) {
                perror("epoll_wait");
                break;
            }
            for (int i = 0; i < n; ++i) {
                int fd = evs[i].data.fd;
                if (fd == lfd_) {
                    Accept();
                } else if (fd == g_stop_fd) {
                    stop = true;
                } else {
                    OnEvent(fd, evs[i].events);
                }
            }
            FireTimers();
        }
    }

  private:
    struct Timer {
        int64_t when_us;
        int fd;
        uint64_t conn_id, seq;
        bool operator>(const Timer &o) const { return when_us > o.when_us; }
    };

    void Watch(int fd) {
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.fd = fd;
        if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) < 0) perror("epoll_ctl");
    }

    void Accept() {
        for (;;) {
            int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno != EAGAIN) perror("accept4");
                return;
            }
            int one = 1;  // streams and split writes must leave immediately
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (conns_.size() <= size_t(fd)) conns_.resize(fd + 1);
            auto c = std::make_unique<Conn>();
            c->fd = fd;
            c->id = ++next_conn_id_;
            c->interest = EPOLLIN;
            Watch(fd);
            conns_[fd] = std::move(c);
        }
    }

    void OnEvent(int fd, uint32_t ev) {
        Conn *c = size_t(fd) < conns_.size() ? conns_[fd].get() : nullptr;
        if (!c) return;
        if (ev & (EPOLLERR | EPOLLHUP)) {  // RST or fully closed: nothing more can be delivered
            Close(*c, false);
            return;
        }
        if (ev & EPOLLIN) Read(*c);
        Pump(*c);
    }

    void Read(Conn &c) {
        ssize_t n = recv(c.fd, rbuf_, sizeof rbuf_, 0);
        if (n > 0) {
            if (c.hang) return;  // a hung request swallows everything that follows
            if (c.in_off > 0) {  // compact: drop requests already handled
                c.in.erase(0, c.in_off);
                c.scan_from = c.scan_from > c.in_off ? c.scan_from - c.in_off : 0;
                if (c.chunk_pos) c.chunk_pos -= c.in_off;
                c.in_off = 0;
            }
            c.in.append(rbuf_, n);
        } else if (n == 0) {
            c.peer_eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
            c.dead = true;
        }
    }

    void Flush(Conn &c) {
        while (c.out_off < c.out.size()) {
            ssize_t n =
                send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (n > 0) {
                c.out_off += n;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                if (n < 0 && errno != EAGAIN) c.dead = true;
                return;
            }
        }
        c.out.clear();
        c.out_off = 0;
    }

    // Drives a connection as far as possible: flush output, advance the plan, parse and handle
    // further (pipelined) requests. Returns false if the connection was closed.
    bool Pump(Conn &c) {
        while (!c.dead) {
            if (c.out_off < c.out.size()) {
                Flush(c);
                if (c.dead || c.out_off < c.out.size()) break;  // wait for EPOLLOUT
            }
            if (c.pending.Any()) {  // the previous piece is now fully written
                ApplyDelta(c.pending);
                c.pending = {};
            }
            if (c.plan_active) {
                if (c.plan_idx < c.plan.size()) {
                    Piece &p = c.plan[c.plan_idx];
                    if (p.delay_ms > 0 && !c.waited) {
                        if (!c.timer_armed) ArmTimer(c, p.delay_ms);
                        break;
                    }
                    c.waited = false;
                    c.out.swap(p.data);
                    c.out_off = 0;
                    c.pending = p.delta;
                    ++c.plan_idx;
                    continue;
                }
                c.plan_active = false;
                c.plan.clear();
                c.plan_idx = 0;
                if (c.end == End::kClose || c.end == End::kReset) {
                    c.dead = true;
                    c.reset_on_close = c.end == End::kReset;
                    break;
                }
                if (c.end == End::kHang) {
                    c.hang = true;
                    c.in.clear();
                    c.in_off = c.scan_from = c.chunk_pos = 0;
                    break;
                }
            }
            if (c.hang) break;
            if (!NextRequest(c) && c.out_off >= c.out.size()) break;  // (else: flush 100 Continue)
        }
        if (c.dead || (c.peer_eof && (c.hang || (!c.plan_active && c.out_off >= c.out.size())))) {
            Close(c, c.reset_on_close);
            return false;
        }
        UpdateInterest(c);
        return true;
    }

    void UpdateInterest(Conn &c) {
        uint32_t want = 0;
        // Keep reading while a response is pending (to notice EOF and buffer pipelined requests),
        // but stop at the input cap so memory stays bounded.
        if (!c.peer_eof && (c.hang || c.in.size() - c.in_off < kMaxInput)) want |= EPOLLIN;
        if (c.out_off < c.out.size()) want |= EPOLLOUT;
        if (want == c.interest) return;
        epoll_event e{};
        e.events = want;
        e.data.fd = c.fd;
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &e);
        c.interest = want;
    }

    void Close(Conn &c, bool reset) {
        if (reset) {  // SO_LINGER {1,0}: close() sends RST instead of FIN
            linger lg{1, 0};
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        int fd = c.fd;
        close(fd);  // also removes it from the epoll set
        conns_[fd].reset();
    }

    void ArmTimer(Conn &c, int64_t ms) {
        c.timer_armed = true;
        timers_.push({NowUs() + ms * 1000, c.fd, c.id, ++c.timer_seq});
    }

    void FireTimers() {
        int64_t now = NowUs();
        while (!timers_.empty() && timers_.top().when_us <= now) {
            Timer t = timers_.top();
            timers_.pop();
            Conn *c = size_t(t.fd) < conns_.size() ? conns_[t.fd].get() : nullptr;
            if (!c || c->id != t.conn_id || c->timer_seq != t.seq) continue;  // stale
            c->timer_armed = false;
            c->waited = true;
            Pump(*c);
        }
    }

    // Tries to take one complete request off c.in and turn it into a plan. Returns false if more
    // input is needed.
    bool NextRequest(Conn &c) {
        std::string &in = c.in;
        // Tolerate stray CRLFs between requests (RFC 9112 2.2).
        while (c.in_off + 1 < in.size() && in[c.in_off] == '\r' && in[c.in_off + 1] == '\n') {
            c.in_off += 2;
        }
        const size_t start = c.in_off;
        if (start >= in.size()) return false;
        size_t he = in.find("\r\n\r\n", std::max(c.scan_from, start));
        if (he == in.npos) {
            if (in.size() - start > kMaxHead)
                return Fail(c, 431, "request header section too large");
            c.scan_from = std::max(start, in.size() - std::min<size_t>(in.size(), 3));
            return false;
        }
        if (he + 4 - start > kMaxHead) return Fail(c, 431, "request header section too large");
        c.scan_from = he;
        Head &h = head_;
        if (int err = ParseHead(&in[start], he + 2 - start, h)) {
            return Fail(c, err, err == 413 ? "request body too large" : "malformed HTTP request");
        }
        const size_t body_start = he + 4;
        std::string_view body;
        size_t end;
        if (h.chunked) {
            int r = DecodeChunked(c, body_start, &end);
            if (r == 0) return NeedBody(c, h);
            if (r != 1) return Fail(c, r, r == 413 ? "request body too large" : "bad chunked body");
            body = c.chunk_body;
        } else {
            if (in.size() - body_start < h.content_length) return NeedBody(c, h);
            body = std::string_view(in).substr(body_start, h.content_length);
            end = body_start + h.content_length;
        }
        if (h.path.substr(0, 7) == "/_mock/") {
            HandleControl(c, h, body);
        } else {
            HandleProvider(c, h, body);
        }
        c.in_off = c.scan_from = end;
        c.chunk_pos = 0;
        c.chunk_body.clear();
        c.continue_sent = false;
        return true;
    }

    bool NeedBody(Conn &c, const Head &h) {
        if (c.in.size() - c.in_off >= kMaxInput) return Fail(c, 413, "request body too large");
        if (h.expect_continue && !c.continue_sent) {
            c.out = "HTTP/1.1 100 Continue\r\n\r\n";
            c.out_off = 0;
            c.continue_sent = true;
        }
        return false;
    }

    // Incremental: decoded data accumulates in c.chunk_body, c.chunk_pos remembers where to resume.
    // Returns 1 when complete (*end = offset after the body), 0 if more input is needed, else an
    // HTTP error status.
    int DecodeChunked(Conn &c, size_t body_start, size_t *end) {
        const std::string &in = c.in;
        size_t p = c.chunk_pos ? c.chunk_pos : body_start;
        for (;;) {
            c.chunk_pos = p;
            size_t le = in.find("\r\n", p);
            if (le == in.npos) return in.size() - p > 1024 ? 400 : 0;
            size_t size = 0, i = p;
            for (; i < le; ++i) {
                char ch = in[i];
                int d = ch >= '0' && ch <= '9'   ? ch - '0'
                        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                 : -1;
                if (d < 0) break;
                size = size * 16 + d;
                if (size > kMaxBody) return 413;
            }
            if (i == p || (i < le && in[i] != ';' && in[i] != ' ' && in[i] != '\t')) return 400;
            if (size == 0) {  // last chunk, then optional trailers up to an empty line
                for (size_t q = le + 2;;) {
                    size_t te = in.find("\r\n", q);
                    if (te == in.npos) return 0;
                    if (te == q) {
                        *end = te + 2;
                        return 1;
                    }
                    q = te + 2;
                }
            }
            if (c.chunk_body.size() + size > kMaxBody) return 413;
            if (in.size() < le + 2 + size + 2) return 0;
            if (in[le + 2 + size] != '\r' || in[le + 3 + size] != '\n') return 400;
            c.chunk_body.append(in, le + 2, size);
            p = le + 2 + size + 2;
        }
    }

    bool Fail(Conn &c, int status, std::string_view msg) {
        Resp r = ErrorResp(status, false, msg, "invalid_request_error");
        Emit(c, r, Overrides{}, false, false);
        return true;
    }

    void StartPlan(Conn &c, End end) {
        c.plan.clear();
        c.plan_idx = 0;
        c.plan_active = true;
        c.waited = false;
        c.end = end;
    }

    // Appends a piece, cut into <= split-byte writes 1 ms apart when x-mock-split asks for it.
    static void AddPiece(Conn &c, std::string data, int64_t delay, const Delta &d, size_t split) {
        if (split == 0 || data.size() <= split) {
            c.plan.push_back({std::move(data), delay, d});
            return;
        }
        for (size_t off = 0; off < data.size(); off += split) {
            bool last = off + split >= data.size();
            c.plan.push_back({data.substr(off, split), off == 0 ? delay : 1, last ? d : Delta{}});
        }
    }

    void Emit(Conn &c, Resp &r, const Overrides &o, bool keep_alive, bool count_status) {
        if (r.cut) keep_alive = false;
        std::string hdr = Str("HTTP/1.1 ", r.status, " ", Reason(r.status),
                              "\r\nContent-Type: ", r.ctype, "\r\n");
        if (r.stream) {
            hdr += "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n";
        } else {
            Cat(hdr, "Content-Length: ", r.body.size(), "\r\n");
        }
        hdr += r.extra_headers;
        hdr += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
        Delta first;
        if (count_status) first.status = r.status;

        if (!r.stream) {
            StartPlan(c, keep_alive ? End::kKeepAlive : End::kClose);
            if (r.cut) {  // full Content-Length, half the body, then FIN
                hdr.append(r.body, 0, r.body.size() / 2);
            } else {
                hdr += r.body;
                first.usage = r.usage;
            }
            AddPiece(c, std::move(hdr), o.latency_ms, first, o.split);
            return;
        }
        StartPlan(c, r.cut ? End::kReset : keep_alive ? End::kKeepAlive : End::kClose);
        size_t n = r.cut ? std::min(r.cut_events, r.events.size()) : r.events.size();
        for (size_t i = 0; i < n; ++i) {
            std::string data = i == 0 ? std::move(hdr) : std::string();
            const std::string &ev = r.events[i].data;
            char len[20];
            int m = snprintf(len, sizeof len, "%zx\r\n", ev.size());
            data.reserve(data.size() + m + ev.size() + 7);
            Cat(data, std::string_view(len, m), ev, "\r\n");
            if (!r.cut && i + 1 == n) data += "0\r\n\r\n";
            Delta d;
            d.status = i == 0 ? first.status : 0;
            d.usage = r.events[i].usage;
            AddPiece(c, std::move(data), i == 0 ? o.latency_ms : o.chunk_delay_ms, d, o.split);
        }
    }

    void EmitJson(Conn &c, const Head &h, int status, std::string body) {
        Resp r;
        r.status = status;
        r.body = std::move(body);
        Emit(c, r, Overrides{}, h.keep_alive, false);
    }

    void HandleControl(Conn &c, const Head &h, std::string_view body) {
        std::string_view p = h.path, m = h.method;
        if (p == "/_mock/requests" && m == "GET") return EmitJson(c, h, 200, LogJson());
        if (p == "/_mock/requests" && m == "DELETE") {
            std::lock_guard<std::mutex> lock(g_shared.mu);
            g_shared.log.clear();
        } else if (p == "/_mock/stats" && m == "GET") {
            return EmitJson(c, h, 200, StatsJson());
        } else if (p == "/_mock/stats" && m == "DELETE") {
            std::lock_guard<std::mutex> lock(g_shared.mu);
            g_shared.requests = 0;
            g_shared.by_status.clear();
            g_shared.usage = {};
        } else if (p == "/_mock/config" && m == "GET") {
            return EmitJson(c, h, 200, ConfigJson());
        } else if (p == "/_mock/config" && m == "POST") {
            return UpdateConfig(c, h, body);
        } else if (p == "/_mock/health" && m == "GET") {
        } else {
            Resp r = ErrorResp(404, false, Str("unknown control endpoint ", m, " ", p),
                               "invalid_request_error");
            return Emit(c, r, Overrides{}, h.keep_alive, false);
        }
        EmitJson(c, h, 200, "{\"ok\":true}");
    }

    void UpdateConfig(Conn &c, const Head &h, std::string_view body) {
        auto bad = [&](std::string_view msg) {
            Resp r = ErrorResp(400, false, msg, "invalid_request_error");
            Emit(c, r, Overrides{}, h.keep_alive, false);
        };
        element doc;
        simdjson::dom::object obj;
        if (parser_.parse(body.data(), body.size()).get(doc) != SUCCESS ||
            doc.get_object().get(obj) != SUCCESS) {
            return bad("config must be a JSON object");
        }
        std::optional<Fault> fault;
        std::optional<int64_t> latency, chunk_delay;
        for (auto field : obj) {
            int64_t v;
            std::string_view s;
            if (field.key == "fault") {
                if (field.value.get_string().get(s) != SUCCESS || !(fault = ParseFault(s))) {
                    return bad("fault must be one of none|500|429|503|reset|cut|hang|malformed");
                }
            } else if (field.key == "latency_ms" || field.key == "chunk_delay_ms") {
                if (field.value.get_int64().get(v) != SUCCESS || v < 0 || v > kMaxDelayMs) {
                    return bad(Str(field.key, " must be an integer in [0, 3600000]"));
                }
                (field.key == "latency_ms" ? latency : chunk_delay) = v;
            }
        }
        if (fault) g_cfg.fault = int(*fault);
        if (latency) g_cfg.latency_ms = *latency;
        if (chunk_delay) g_cfg.chunk_delay_ms = *chunk_delay;
        EmitJson(c, h, 200, ConfigJson());
    }

    static Overrides ReadOverrides(const Head &h) {
        Overrides o;
        o.latency_ms =
            std::min(h.GetInt("x-mock-latency-ms").value_or(g_cfg.latency_ms), kMaxDelayMs);
        o.chunk_delay_ms =
            std::min(h.GetInt("x-mock-chunk-delay-ms").value_or(g_cfg.chunk_delay_ms), kMaxDelayMs);
        o.fault = static_cast<Fault>(g_cfg.fault.load());
        if (std::string_view f = h.Get("x-mock-fault"); !f.empty())
            o.fault = ParseFault(f).value_or(o.fault);
        o.split = size_t(h.GetInt("x-mock-split").value_or(0));
        return o;
    }

    void HandleProvider(Conn &c, const Head &h, std::string_view body) {
        RecordRequest(h, body);
        const Overrides o = ReadOverrides(h);
        enum class Api { kNone, kChat, kCompletions, kEmbeddings, kMessages } api = Api::kNone;
        if (h.path == "/v1/chat/completions") api = Api::kChat;
        if (h.path == "/v1/completions") api = Api::kCompletions;
        if (h.path == "/v1/embeddings") api = Api::kEmbeddings;
        if (h.path == "/v1/messages") api = Api::kMessages;
        const bool anthropic = api == Api::kMessages;
        Resp r;
        if (api == Api::kNone) {
            r = ErrorResp(404, false,
                          Str("Unknown request URL: ", h.method, " ", h.path,
                              ". Please check the URL for typos."),
                          "invalid_request_error", "unknown_url");
            return Emit(c, r, o, h.keep_alive, true);
        }
        if (h.method != "POST") {
            r = ErrorResp(405, anthropic, Str("Method ", h.method, " not allowed; use POST"),
                          "invalid_request_error");
            r.extra_headers = "Allow: POST\r\n";
            return Emit(c, r, o, h.keep_alive, true);
        }
        switch (o.fault) {
            case Fault::k500:
            case Fault::k503:
                r = ErrorResp(o.fault == Fault::k500 ? 500 : 503, anthropic, "mock server error",
                              anthropic ? "api_error" : "server_error");
                return Emit(c, r, o, h.keep_alive, true);
            case Fault::k429:
                r = ErrorResp(429, anthropic, "mock rate limit exceeded", "rate_limit_error",
                              "rate_limit_exceeded");
                r.extra_headers = "Retry-After: 1\r\n";
                return Emit(c, r, o, h.keep_alive, true);
            case Fault::kReset:
                StartPlan(c, End::kReset);
                c.plan.push_back({std::string(), o.latency_ms, {}});
                return;
            case Fault::kHang:
                StartPlan(c, End::kHang);
                return;
            default:
                break;
        }
        element doc;
        if (parser_.parse(body.data(), body.size()).get(doc) != SUCCESS || !doc.is_object()) {
            r = ErrorResp(400, anthropic,
                          "We could not parse the JSON body of your request. (HINT: This likely "
                          "means you aren't using your HTTP library correctly.)",
                          "invalid_request_error");
            return Emit(c, r, o, h.keep_alive, true);
        }
        Gen g{++g_seq, int64_t(time(nullptr)), o.fault, &h};
        switch (api) {
            case Api::kChat:
                r = ChatResp(g, doc);
                break;
            case Api::kCompletions:
                r = CompletionsResp(g, doc);
                break;
            case Api::kEmbeddings:
                r = EmbeddingsResp(g, doc);
                break;
            default:
                r = MessagesResp(g, doc);
                break;
        }
        r.cut = o.fault == Fault::kCut;
        Emit(c, r, o, h.keep_alive, true);
    }

    int ep_ = -1, lfd_ = -1;
    uint64_t next_conn_id_ = 0;
    std::vector<std::unique_ptr<Conn>> conns_;  // indexed by fd
    std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
    simdjson::dom::parser parser_;
    Head head_;  // reused to keep the per-request header vector allocation-free
    char rbuf_[64 * 1024];
};

// ---------------------------------------------------------------------------------------------
// Startup

[[noreturn]] void Usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--host 127.0.0.1] --port N [--threads N] [--latency-ms N]\n"
            "          [--chunk-delay-ms N] [--fault none|500|429|503|reset|cut|hang|malformed]\n",
            argv0);
    exit(2);
}

int Listen(const addrinfo *ai, int port, bool reuseport) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_storage ss{};
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port = htons(port);
    } else {
        reinterpret_cast<sockaddr_in *>(&ss)->sin_port = htons(port);
    }
    if (bind(fd, reinterpret_cast<sockaddr *>(&ss), ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

int main(int argc, char **argv) {
    std::string host = "127.0.0.1";
    int64_t port = -1, threads = 1;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i], val;
        if (arg == "-h" || arg == "--help") Usage(argv[0]);
        if (size_t eq = arg.find('='); eq != arg.npos) {
            val = arg.substr(eq + 1);
            arg.resize(eq);
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            Usage(argv[0]);
        }
        auto num = [&](int64_t max) {
            auto v = ParseNonNeg(val);
            if (!v || *v > max) {
                fprintf(stderr, "invalid value for %s: %s\n", arg.c_str(), val.c_str());
                exit(2);
            }
            return *v;
        };
        if (arg == "--host") {
            host = val;
        } else if (arg == "--port") {
            port = num(65535);
        } else if (arg == "--threads") {
            threads = std::max<int64_t>(1, num(256));
        } else if (arg == "--latency-ms") {
            g_cfg.latency_ms = num(kMaxDelayMs);
        } else if (arg == "--chunk-delay-ms") {
            g_cfg.chunk_delay_ms = num(kMaxDelayMs);
        } else if (arg == "--fault") {
            auto f = ParseFault(val);
            if (!f) Usage(argv[0]);
            g_cfg.fault = int(*f);
        } else {
            fprintf(stderr, "unknown option %s\n", arg.c_str());
            Usage(argv[0]);
        }
    }
    if (port < 0) Usage(argv[0]);

    g_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);

    addrinfo hints{}, *ai = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &ai); rc != 0 || !ai) {
        fprintf(stderr, "cannot resolve %s: %s\n", host.c_str(), gai_strerror(rc));
        return 1;
    }
    // One listening socket per loop; SO_REUSEPORT lets the kernel spread connections over them.
    // With --port 0 the first bind picks the port and the others join it.
    std::vector<int> fds;
    for (int64_t t = 0; t < threads; ++t) {
        int fd = Listen(ai, int(port), threads > 1);
        if (fd < 0) {
            fprintf(stderr, "cannot listen on %s:%lld: %s\n", host.c_str(), (long long)port,
                    strerror(errno));
            return 1;
        }
        if (port == 0) {
            sockaddr_storage ss{};
            socklen_t len = sizeof ss;
            getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len);
            port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
                                                  : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
        }
        fds.push_back(fd);
    }
    freeaddrinfo(ai);
    printf("PORT %lld\n", (long long)port);
    fflush(stdout);

    std::vector<std::thread> workers;
    for (size_t t = 1; t < fds.size(); ++t) {
        workers.emplace_back([fd = fds[t]] { std::make_unique<Loop>(fd)->Run(); });
    }
    std::make_unique<Loop>(fds[0])->Run();  // heap: the loop holds a 64 KiB read buffer
    for (auto &w : workers) w.join();
    return 0;
}
