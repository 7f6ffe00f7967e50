// Works out each proxied call's usage, cost, status and latency once, at the
// end of the request, whichever asks first: the access log's variables or
// this module's log-phase handler.
#include "ngx_perpetuo.hpp"

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

ngx_int_t ngx_http_perpetuo_log_handler(ngx_http_request_t *r) {
    ngx_http_perpetuo_ctx_t *ctx = r == r->main ? ngx_http_perpetuo_get_ctx(r) : nullptr;
    if (ctx == nullptr) return NGX_DECLINED;
    try {
        ngx_http_perpetuo_account(r, ctx);
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: accounting failed: %s",
                      e.what());
    }
    // Accounting never changes what the client got.
    return NGX_DECLINED;
}
