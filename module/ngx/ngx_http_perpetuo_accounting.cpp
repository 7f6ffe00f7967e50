// Works out each proxied call's usage, cost, status and latency once, at the
// end of the request, whichever asks first: the access log's variables or
// this module's log-phase handler.
#include "ngx_perpetuo.hpp"

#include <algorithm>

#include "ngx_perpetuo_redis_link.hpp"

void ngx_http_perpetuo_account(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx) {
    if (ctx->accounted || ctx->candidate == nullptr) return;
    ctx->accounted = true;
    ngx_uint_t status = r->err_status ? r->err_status : r->headers_out.status;
    bool streamed_out = r->header_sent && status >= 200 && status < 300;
    if (r->connection->error && streamed_out && ctx->meter && !ctx->meter->finished())
        status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
    ctx->status = status;
    ngx_time_t *now = ngx_timeofday();
    ngx_msec_int_t elapsed = static_cast<ngx_msec_int_t>((now->sec - r->start_sec) * 1000 +
                                                         (now->msec - r->start_msec));
    ctx->latency_ms = static_cast<ngx_msec_t>(ngx_max(elapsed, 0));
    if (ctx->meter) {
        ctx->meter->finish(nullptr);
        ctx->usage = ctx->meter->final_usage(ctx->facts.prompt_bytes);
        if (ctx->meter->malformed())
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "perpetuo: provider \"%s\" sent malformed JSON; usage of request %s is "
                          "estimated",
                          ctx->provider->name.c_str(), ctx->request_id.c_str());
    } else if (streamed_out) {
        // A 2xx the meter could not read (unexpected type or encoding).
        perpetuo::Usage usage;
        usage.estimated = true;
        usage.uncached_input_tokens = perpetuo::estimate_tokens(ctx->facts.prompt_bytes);
        ctx->usage = usage;
    }
    ctx->cost_micros = perpetuo::cost_micros(ctx->usage, ctx->candidate->price);
}

namespace {

std::int64_t now_ms() {
    ngx_time_t *now = ngx_timeofday();
    return static_cast<std::int64_t>(now->sec) * 1000 + now->msec;
}

perpetuo::UsageRecord record_of(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx) {
    perpetuo::UsageRecord rec;
    rec.request_id = ctx->request_id;
    rec.workspace = ctx->workspace->id;
    rec.provider = ctx->provider->name;
    rec.model = ctx->facts.model;
    rec.usage = ctx->usage;
    rec.cost_micros = ctx->cost_micros;
    rec.status = static_cast<int>(ctx->status);
    rec.latency_ms = static_cast<std::int64_t>(ctx->latency_ms);
    rec.created_ms = static_cast<std::int64_t>(r->start_sec) * 1000 + r->start_msec;
    rec.stream = ctx->facts.stream;
    if (ctx->first_byte_msec != 0)
        rec.ttfb_ms = static_cast<std::int64_t>(ctx->first_byte_msec - ctx->attempt_start_msec);
    return rec;
}

bool provider_failure(ngx_uint_t status) {
    return status == NGX_HTTP_TOO_MANY_REQUESTS || (status >= 500 && status != 501);
}

const char *error_class_name(int status) {
    switch (perpetuo::error_class(status)) {
        case perpetuo::ErrorClass::kClient4xx:
            return "4xx";
        case perpetuo::ErrorClass::kServer5xx:
            return "5xx";
        case perpetuo::ErrorClass::kTimeout:
            return "timeout";
        case perpetuo::ErrorClass::kNone:
            break;
    }
    return "";
}

// One call into the shared metrics: the request counter, tokens, cost and
// latency histograms, and the provider's error and failover counters.
void observe(ngx_http_perpetuo_ctx_t *ctx, std::size_t provider, const perpetuo::UsageRecord &rec,
             bool failover, double overhead_seconds) {
    perpetuo::CallObservation call;
    if (ctx->config->metrics.workspace_label) call.workspace = rec.workspace;
    call.provider = rec.provider;
    call.model = rec.model;
    call.status = rec.status;
    call.cost_micros = rec.cost_micros;
    call.input_tokens = rec.usage.input_tokens();
    call.output_tokens = rec.usage.output_tokens;
    call.cached_tokens = rec.usage.cache_read_tokens;
    call.duration_seconds = static_cast<double>(rec.latency_ms) / 1000.0;
    if (rec.stream && rec.ttfb_ms >= 0) call.ttft_seconds = static_cast<double>(rec.ttfb_ms) / 1000.0;
    ngx_http_perpetuo_metrics_observe(call, provider, overhead_seconds,
                                      error_class_name(rec.status), failover);
}

}  // namespace

void ngx_http_perpetuo_finish_attempt(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx,
                                      bool failed) {
    perpetuo::ProviderHealth *h = ngx_http_perpetuo_health(ctx->candidate->provider);
    if (h == nullptr) return;
    std::int64_t latency = static_cast<std::int64_t>(ngx_current_msec - ctx->attempt_start_msec);
    std::int64_t ttft = ctx->first_byte_msec
                            ? static_cast<std::int64_t>(ctx->first_byte_msec - ctx->attempt_start_msec)
                            : -1;
    ngx_http_perpetuo_health_lock();
    perpetuo::record_attempt(*h, now_ms(), failed, ctx->facts.stream, latency, ttft,
                             ctx->config->routing.breaker);
    ngx_http_perpetuo_health_unlock();
}

void ngx_http_perpetuo_record_failed_attempt(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx,
                                             const perpetuo::Provider *provider,
                                             const std::string &request_id, ngx_uint_t status) {
    perpetuo::UsageRecord rec;
    rec.request_id = request_id;
    rec.workspace = ctx->workspace->id;
    rec.provider = provider->name;
    rec.model = ctx->facts.model;
    rec.status = static_cast<int>(status);
    rec.latency_ms = static_cast<std::int64_t>(ngx_current_msec - ctx->attempt_start_msec);
    rec.created_ms = now_ms() - rec.latency_ms;
    rec.stream = ctx->facts.stream;
    bool failover = request_id != ctx->request_id;  // a suffixed id: another attempt follows
    // The call's overhead is observed once, with its last attempt.
    observe(ctx, static_cast<std::size_t>(provider - ctx->config->providers.data()), rec, failover,
            failover ? -1 : static_cast<double>(ctx->overhead_ns) / 1e9);
    ngx_http_perpetuo_writer_push(std::move(rec));
}

ngx_int_t ngx_http_perpetuo_log_handler(ngx_http_request_t *r) {
    ngx_http_perpetuo_ctx_t *ctx = r == r->main ? ngx_http_perpetuo_get_ctx(r) : nullptr;
    if (ctx == nullptr) return NGX_DECLINED;
    try {
        if (ctx->first_byte_timer.timer_set) ngx_del_timer(&ctx->first_byte_timer);
        if (ctx->candidate != nullptr && !ctx->attempt_recorded) {
            ngx_http_perpetuo_account(r, ctx);
            ngx_http_perpetuo_finish_attempt(r, ctx, provider_failure(ctx->status));
            perpetuo::UsageRecord rec = record_of(r, ctx);
            observe(ctx, ctx->candidate->provider, rec, false,
                    static_cast<double>(ctx->overhead_ns) / 1e9);
            ngx_http_perpetuo_writer_push(std::move(rec));
        }
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: accounting failed: %s",
                      e.what());
    }
    // Accounting never changes what the client got.
    return NGX_DECLINED;
}
