#include "metrics_table.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <cstring>
#include <limits>
#include <map>
#include <tuple>

namespace perpetuo {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

void copy_bounded(char *dst, std::size_t size, const std::string &src) {
    std::size_t n = std::min(src.size(), size - 1);
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

std::uint64_t fnv1a(std::uint64_t h, const void *data, std::size_t len) {
    const auto *p = static_cast<const unsigned char *>(data);
    for (std::size_t i = 0; i < len; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

bool same_key(const SeriesKey &a, const SeriesKey &b) {
    return a.status == b.status && std::strcmp(a.workspace, b.workspace) == 0 &&
           std::strcmp(a.provider, b.provider) == 0 && std::strcmp(a.model, b.model) == 0;
}

std::vector<ClientMetric::Label> labels(const SeriesKey &k, bool with_status) {
    std::vector<ClientMetric::Label> l;
    if (k.workspace[0]) l.push_back({"workspace", k.workspace});
    l.push_back({"provider", k.provider});
    l.push_back({"model", k.model});
    if (with_status) l.push_back({"status", std::to_string(k.status)});
    return l;
}

template <std::size_t N>
ClientMetric histogram(const Histogram<N> &h, const std::array<double, N> &bounds,
                       std::vector<ClientMetric::Label> l) {
    ClientMetric m;
    m.label = std::move(l);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < N; ++i) {
        cumulative += static_cast<std::uint64_t>(h.buckets[i]);
        m.histogram.bucket.push_back({cumulative, bounds[i]});
    }
    cumulative += static_cast<std::uint64_t>(h.buckets[N]);
    m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    m.histogram.sample_count = static_cast<std::uint64_t>(h.count);
    m.histogram.sample_sum = h.sum;
    return m;
}

template <std::size_t N>
void merge(Histogram<N> &into, const Histogram<N> &from) {
    for (std::size_t i = 0; i <= N; ++i) into.buckets[i] += from.buckets[i];
    into.count += from.count;
    into.sum += from.sum;
}

ClientMetric value(std::vector<ClientMetric::Label> l, double v, MetricType type) {
    ClientMetric m;
    m.label = std::move(l);
    (type == MetricType::Counter ? m.counter.value : m.gauge.value) = v;
    return m;
}

MetricFamily family(const char *name, const char *help, MetricType type) {
    MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
}

}  // namespace

SeriesKey series_key(const CallObservation &call) {
    SeriesKey k;
    copy_bounded(k.workspace, sizeof(k.workspace), call.workspace);
    copy_bounded(k.provider, sizeof(k.provider), call.provider);
    copy_bounded(k.model, sizeof(k.model), call.model);
    k.status = call.status;
    return k;
}

std::uint64_t series_hash(const SeriesKey &k) {
    std::uint64_t h = 14695981039346656037ull;
    h = fnv1a(h, k.workspace, std::strlen(k.workspace) + 1);
    h = fnv1a(h, k.provider, std::strlen(k.provider) + 1);
    h = fnv1a(h, k.model, std::strlen(k.model) + 1);
    h = fnv1a(h, &k.status, sizeof(k.status));
    return h ? h : 1;
}

MetricSeries *find_series(MetricSeries *table, std::size_t slots, const SeriesKey &key,
                          std::uint64_t hash) {
    for (std::size_t probe = 0; probe < slots; ++probe) {
        MetricSeries &s = table[(hash + probe) % slots];
        if (s.hash == 0) {
            s = MetricSeries{};
            s.hash = hash;
            s.key = key;
            return &s;
        }
        if (s.hash == hash && same_key(s.key, key)) return &s;
    }
    return nullptr;
}

void observe_call(MetricSeries &s, const CallObservation &c) {
    ++s.requests;
    s.cost_micros += c.cost_micros;
    s.input_tokens += c.input_tokens;
    s.output_tokens += c.output_tokens;
    s.cached_tokens += c.cached_tokens;
    s.duration.observe(c.duration_seconds, kDurationBoundsSeconds);
    if (c.ttft_seconds >= 0) s.ttft.observe(c.ttft_seconds, kDurationBoundsSeconds);
    if (c.status >= 200 && c.status < 300) {
        s.input_usage.observe(static_cast<double>(c.input_tokens), kTokenBounds);
        s.output_usage.observe(static_cast<double>(c.output_tokens), kTokenBounds);
    }
}

std::string render_metrics(const MetricsSnapshot &snap) {
    MetricFamily requests = family("perpetuo_requests_total",
                                   "LLM calls through the gateway, by the status the client got",
                                   MetricType::Counter);
    MetricFamily cost = family("perpetuo_cost_usd_total", "Cost of LLM calls in USD",
                               MetricType::Counter);
    MetricFamily tokens = family("perpetuo_tokens_total", "Tokens by type (input includes cached)",
                                 MetricType::Counter);
    MetricFamily usage = family("gen_ai_client_token_usage", "Tokens used per call",
                                MetricType::Histogram);
    MetricFamily duration = family("gen_ai_client_operation_duration_seconds",
                                   "Duration of LLM calls as the client saw them",
                                   MetricType::Histogram);
    MetricFamily ttft = family("gen_ai_server_time_to_first_token_seconds",
                               "Time from the call to the provider's first byte, for streams",
                               MetricType::Histogram);

    // Status is a label of the request counter only; the other series are
    // merged across statuses.
    struct Merged {
        SeriesKey key;
        std::int64_t cost = 0, input = 0, output = 0, cached = 0;
        Histogram<kDurationBoundsSeconds.size()> duration, ttft;
        Histogram<kTokenBounds.size()> input_usage, output_usage;
    };
    std::map<std::tuple<std::string, std::string, std::string>, Merged> merged;
    for (const MetricSeries &s : snap.series) {
        requests.metric.push_back(
            value(labels(s.key, true), static_cast<double>(s.requests), MetricType::Counter));
        Merged &m = merged[{s.key.workspace, s.key.provider, s.key.model}];
        m.key = s.key;
        m.cost += s.cost_micros;
        m.input += s.input_tokens;
        m.output += s.output_tokens;
        m.cached += s.cached_tokens;
        merge(m.duration, s.duration);
        merge(m.ttft, s.ttft);
        merge(m.input_usage, s.input_usage);
        merge(m.output_usage, s.output_usage);
    }
    for (const auto &entry : merged) {
        const Merged &m = entry.second;
        auto l = labels(m.key, false);
        cost.metric.push_back(value(l, static_cast<double>(m.cost) / 1e6, MetricType::Counter));
        for (auto [type, n] : {std::pair<const char *, std::int64_t>{"input", m.input},
                               {"output", m.output},
                               {"cached", m.cached}}) {
            auto tl = l;
            tl.push_back({"type", type});
            tokens.metric.push_back(value(tl, static_cast<double>(n), MetricType::Counter));
        }
        auto in = l, out = l;
        in.push_back({"gen_ai_token_type", "input"});
        out.push_back({"gen_ai_token_type", "output"});
        usage.metric.push_back(histogram(m.input_usage, kTokenBounds, in));
        usage.metric.push_back(histogram(m.output_usage, kTokenBounds, out));
        duration.metric.push_back(histogram(m.duration, kDurationBoundsSeconds, l));
        if (m.ttft.count > 0) ttft.metric.push_back(histogram(m.ttft, kDurationBoundsSeconds, l));
    }

    MetricFamily errors = family("perpetuo_provider_errors_total",
                                 "Failed provider calls by class (429 counts as 4xx)",
                                 MetricType::Counter);
    MetricFamily failovers = family("perpetuo_failovers_total",
                                    "Failed attempts that were retried on another provider",
                                    MetricType::Counter);
    MetricFamily state = family("perpetuo_circuit_breaker_state",
                                "Circuit breaker: 0 closed, 1 open, 2 half-open",
                                MetricType::Gauge);
    MetricFamily opens = family("perpetuo_circuit_breaker_opens_total",
                                "Times the provider's circuit breaker opened", MetricType::Counter);
    MetricFamily in_flight = family("perpetuo_provider_in_flight", "Calls in flight",
                                    MetricType::Gauge);
    for (const ProviderSnapshot &p : snap.providers) {
        std::vector<ClientMetric::Label> l = {{"provider", p.name}};
        for (auto [cls, n] : {std::pair<const char *, std::int64_t>{"4xx", p.metrics.errors_4xx},
                              {"5xx", p.metrics.errors_5xx},
                              {"timeout", p.metrics.errors_timeout}}) {
            auto cl = l;
            cl.push_back({"class", cls});
            errors.metric.push_back(value(cl, static_cast<double>(n), MetricType::Counter));
        }
        failovers.metric.push_back(
            value(l, static_cast<double>(p.metrics.failovers), MetricType::Counter));
        state.metric.push_back(
            value(l, static_cast<double>(static_cast<int>(p.health.state)), MetricType::Gauge));
        opens.metric.push_back(
            value(l, static_cast<double>(p.health.opened_total), MetricType::Counter));
        in_flight.metric.push_back(
            value(l, static_cast<double>(p.health.in_flight), MetricType::Gauge));
    }

    const GlobalMetrics &g = snap.global;
    MetricFamily overhead = family("perpetuo_gateway_overhead_seconds",
                                   "Time spent in the module per call (parsing, routing, metering)",
                                   MetricType::Histogram);
    overhead.metric.push_back(histogram(g.overhead, kOverheadBoundsSeconds, {}));
    MetricFamily dropped = family("perpetuo_redis_dropped_records_total",
                                  "Accounting records that could not be queued for Redis",
                                  MetricType::Counter);
    dropped.metric.push_back(
        value({}, static_cast<double>(g.redis_dropped_records), MetricType::Counter));
    MetricFamily queue = family("perpetuo_redis_queue_records",
                                "Accounting records waiting for Redis, per worker",
                                MetricType::Gauge);
    MetricFamily connected = family("perpetuo_redis_connected",
                                    "Whether the worker's Redis link is up", MetricType::Gauge);
    for (std::int32_t w = 0; w < g.workers && w < static_cast<std::int32_t>(kMaxWorkers); ++w) {
        std::vector<ClientMetric::Label> l = {{"worker", std::to_string(w)}};
        queue.metric.push_back(
            value(l, static_cast<double>(g.redis_queue_records[w]), MetricType::Gauge));
        connected.metric.push_back(
            value(l, static_cast<double>(g.redis_connected[w]), MetricType::Gauge));
    }
    MetricFamily overflow = family("perpetuo_metrics_series_overflow_total",
                                   "Calls not counted in per-series metrics because the series "
                                   "table of perpetuo_zone is full",
                                   MetricType::Counter);
    overflow.metric.push_back(
        value({}, static_cast<double>(g.series_overflow), MetricType::Counter));

    std::vector<MetricFamily> families = {requests, cost,      tokens,    usage,   duration,
                                          ttft,     errors,    failovers, state,   opens,
                                          in_flight, overhead, dropped,   queue,   connected,
                                          overflow};
    return prometheus::TextSerializer().Serialize(families);
}

}  // namespace perpetuo
