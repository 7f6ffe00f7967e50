// Header and body filters: tag every gateway response with the provider and
// request id, and meter the provider's bytes as they stream past. Only when
// the gateway itself asked for OpenAI's usage chunk does the body filter
// rewrite the stream, to take that chunk back out.
#include "ngx_perpetuo.hpp"

namespace {

ngx_http_output_header_filter_pt next_header_filter;
ngx_http_output_body_filter_pt next_body_filter;

ngx_int_t add_header(ngx_http_request_t *r, const char *name, const std::string &value) {
    auto *h = static_cast<ngx_table_elt_t *>(ngx_list_push(&r->headers_out.headers));
    if (h == nullptr) return NGX_ERROR;
    u_char *data = static_cast<u_char *>(ngx_pnalloc(r->pool, value.size()));
    if (data == nullptr) return NGX_ERROR;
    ngx_memcpy(data, value.data(), value.size());
    h->hash = 1;
    h->key.data = reinterpret_cast<u_char *>(const_cast<char *>(name));
    h->key.len = ngx_strlen(name);
    h->value.data = data;
    h->value.len = value.size();
    return NGX_OK;
}

bool content_type_is(ngx_http_request_t *r, const char *type) {
    size_t len = ngx_strlen(type);
    const ngx_str_t &ct = r->headers_out.content_type;
    return ct.len >= len && ngx_strncasecmp(ct.data, (u_char *)type, len) == 0 &&
           (ct.len == len || ct.data[len] == ';' || ct.data[len] == ' ');
}

void start_meter(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx) {
    ctx->first_byte_msec = ngx_current_msec;
    if (ctx->first_byte_timer.timer_set) ngx_del_timer(&ctx->first_byte_timer);
    if (r->headers_out.status < 200 || r->headers_out.status >= 300) return;
    bool sse = content_type_is(r, "text/event-stream");
    if (!sse && !content_type_is(r, "application/json")) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "perpetuo: provider \"%s\" answered with content type \"%V\"; tokens will "
                      "be estimated",
                      ctx->provider->name.c_str(), &r->headers_out.content_type);
        return;
    }
    if (r->headers_out.content_encoding && r->headers_out.content_encoding->value.len) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "perpetuo: provider \"%s\" sent an encoded body (%V) despite "
                      "Accept-Encoding \"\"; tokens will be estimated",
                      ctx->provider->name.c_str(), &r->headers_out.content_encoding->value);
        return;
    }
    perpetuo::WireFormat format = ctx->provider->kind == perpetuo::ProviderKind::kAnthropic
                                      ? perpetuo::WireFormat::kAnthropic
                                      : perpetuo::WireFormat::kOpenAI;
    perpetuo::MeterLimits limits;
    limits.max_json_body = ctx->config->limits.max_response_json;
    limits.max_sse_event = ctx->config->limits.max_sse_event;
    ctx->meter.emplace(format, sse, ctx->injected_usage, limits);
    r->filter_need_in_memory = 1;
    if (ctx->meter->rewrites()) {
        ngx_http_clear_content_length(r);
    }
}

ngx_int_t header_filter(ngx_http_request_t *r) {
    ngx_http_perpetuo_ctx_t *ctx = r == r->main ? ngx_http_perpetuo_get_ctx(r) : nullptr;
    if (ctx == nullptr) return next_header_filter(r);
    try {
        NgxOverheadTimer timer(ctx);
        if (add_header(r, "x-perpetuo-request-id", ctx->request_id) != NGX_OK) return NGX_ERROR;
        if (ctx->provider != nullptr) {
            if (add_header(r, "x-perpetuo-provider", ctx->provider->name) != NGX_OK)
                return NGX_ERROR;
            if (r->upstream != nullptr && !ctx->meter) start_meter(r, ctx);
        }
    } catch (const std::exception &e) {
        // Metering trouble must not fail the user's request.
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: header filter: %s", e.what());
        ctx->meter.reset();
    }
    return next_header_filter(r);
}

ngx_int_t observe(ngx_http_perpetuo_ctx_t *ctx, ngx_chain_t *in) {
    for (ngx_chain_t *cl = in; cl; cl = cl->next) {
        ngx_buf_t *b = cl->buf;
        if (ngx_buf_in_memory(b) && b->last > b->pos)
            ctx->meter->feed(std::string_view(reinterpret_cast<const char *>(b->pos), b->last - b->pos),
                             nullptr);
        if (b->last_buf) ctx->meter->finish(nullptr);
    }
    return NGX_OK;
}

// Rewrite mode: the input is consumed into the meter and what it lets
// through is copied into this request's own recycled buffers, because the
// upstream reuses its buffer as soon as we mark it consumed.
ngx_int_t rewrite(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx, ngx_chain_t *in) {
    std::string &pending = ctx->rewrite_out;
    pending.clear();
    bool last = false, flush = false;
    for (ngx_chain_t *cl = in; cl; cl = cl->next) {
        ngx_buf_t *b = cl->buf;
        if (ngx_buf_in_memory(b) && b->last > b->pos) {
            ctx->meter->feed(std::string_view(reinterpret_cast<const char *>(b->pos), b->last - b->pos),
                             &pending);
            b->pos = b->last;
        }
        if (b->last_buf) {
            ctx->meter->finish(&pending);
            last = true;
        }
        flush = flush || b->flush || b->last_in_chain;
    }
    ngx_chain_t *out = nullptr, **ll = &out;
    if (!pending.empty()) {
        ngx_chain_t *cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
        if (cl == nullptr) return NGX_ERROR;
        ngx_buf_t *b = cl->buf;
        size_t need = pending.size();
        if (b->start == nullptr || static_cast<size_t>(b->end - b->start) < need) {
            size_t size = ngx_max(need, static_cast<size_t>(4096));
            b->start = static_cast<u_char *>(ngx_palloc(r->pool, size));
            if (b->start == nullptr) return NGX_ERROR;
            b->end = b->start + size;
        }
        b->pos = b->start;
        b->last = ngx_cpymem(b->pos, pending.data(), need);
        b->temporary = 1;
        b->flush = 1;  // events are for the client now, not for a buffer
        b->tag = reinterpret_cast<ngx_buf_tag_t>(&ngx_http_perpetuo_module);
        *ll = cl;
        ll = &cl->next;
    }
    if (last) {
        ngx_chain_t *cl = ngx_alloc_chain_link(r->pool);
        auto *b = static_cast<ngx_buf_t *>(ngx_calloc_buf(r->pool));
        if (cl == nullptr || b == nullptr) return NGX_ERROR;
        b->last_buf = 1;
        cl->buf = b;
        cl->next = nullptr;
        *ll = cl;
    }
    if (out == nullptr && !flush) return NGX_OK;
    ngx_int_t rc = next_body_filter(r, out);
    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &out,
                            reinterpret_cast<ngx_buf_tag_t>(&ngx_http_perpetuo_module));
    return rc;
}

// The provider broke off a stream after its headers went out: nginx then
// only flushes and closes. Ending the body properly instead gives the
// client a well-formed end of stream (chunked terminator) it can handle.
bool provider_broke_off(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx, ngx_chain_t *in) {
    if (!ctx->meter->event_stream() || ctx->meter->finished() || r->upstream == nullptr ||
        r->upstream->peer.connection != nullptr || r->connection->error)
        return false;
    for (ngx_chain_t *cl = in; cl; cl = cl->next)
        if (cl->buf->last_buf || !cl->buf->flush || ngx_buf_size(cl->buf) != 0) return false;
    return true;
}

ngx_int_t end_stream_cleanly(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx) {
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "perpetuo: provider \"%s\" broke off the stream of request %s; ending it "
                  "for the client, tokens estimated",
                  ctx->provider->name.c_str(), ctx->request_id.c_str());
    std::string tail;
    ctx->meter->finish(ctx->meter->rewrites() ? &tail : nullptr);
    ngx_chain_t *out = nullptr, **ll = &out;
    if (!tail.empty()) {
        ngx_buf_t *b = ngx_create_temp_buf(r->pool, tail.size());
        ngx_chain_t *cl = ngx_alloc_chain_link(r->pool);
        if (b == nullptr || cl == nullptr) return NGX_ERROR;
        b->last = ngx_cpymem(b->pos, tail.data(), tail.size());
        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
    }
    auto *last = static_cast<ngx_buf_t *>(ngx_calloc_buf(r->pool));
    ngx_chain_t *cl = ngx_alloc_chain_link(r->pool);
    if (last == nullptr || cl == nullptr) return NGX_ERROR;
    last->last_buf = 1;
    cl->buf = last;
    cl->next = nullptr;
    *ll = cl;
    return next_body_filter(r, out);
}

ngx_int_t body_filter(ngx_http_request_t *r, ngx_chain_t *in) {
    ngx_http_perpetuo_ctx_t *ctx = r == r->main ? ngx_http_perpetuo_get_ctx(r) : nullptr;
    if (ctx == nullptr || !ctx->meter || in == nullptr) return next_body_filter(r, in);
    if (provider_broke_off(r, ctx, in)) return end_stream_cleanly(r, ctx);
    try {
        if (ctx->meter->rewrites()) return rewrite(r, ctx, in);
        NgxOverheadTimer timer(ctx);
        observe(ctx, in);
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: body filter: %s", e.what());
        if (ctx->meter->rewrites()) return NGX_ERROR;  // bytes already taken from the input
        ctx->meter.reset();
    }
    return next_body_filter(r, in);
}

}  // namespace

ngx_int_t ngx_http_perpetuo_init_filters(ngx_conf_t *cf) {
    next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = header_filter;
    next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = body_filter;
    return NGX_OK;
}
