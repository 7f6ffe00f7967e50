// The precontent handler of a perpetuo_gateway location: identifies the
// workspace, reads and checks the body, picks a provider, rewrites the body
// and sets the variables proxy_pass needs. nginx's proxy module does the rest.
#include "ngx_perpetuo.hpp"

#include <new>
#include <vector>

#include "digest.hpp"
#include "json_text.hpp"
#include "strategy.hpp"

namespace {

void destroy_ctx(void *data) {
    auto *ctx = static_cast<ngx_http_perpetuo_ctx_t *>(data);
    if (ctx->first_byte_timer.timer_set) ngx_del_timer(&ctx->first_byte_timer);
    ctx->~ngx_http_perpetuo_ctx_t();
}

// The virtual key as the SDKs send it: OpenAI's "Authorization: Bearer",
// Anthropic's "x-api-key".
std::string_view client_key(ngx_http_request_t *r) {
    if (r->headers_in.authorization != nullptr) {
        std::string_view value = ngx_http_perpetuo_view(r->headers_in.authorization->value);
        if (value.size() > 7 && ngx_strncasecmp((u_char *)value.data(), (u_char *)"Bearer ", 7) == 0) {
            value.remove_prefix(7);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            return value;
        }
    }
    ngx_list_part_t *part = &r->headers_in.headers.part;
    auto *h = static_cast<ngx_table_elt_t *>(part->elts);
    for (ngx_uint_t i = 0;; i++) {
        if (i >= part->nelts) {
            if (part->next == nullptr) break;
            part = part->next;
            h = static_cast<ngx_table_elt_t *>(part->elts);
            i = 0;
        }
        if (h[i].key.len == 9 && ngx_strncasecmp(h[i].key.data, (u_char *)"x-api-key", 9) == 0)
            return ngx_http_perpetuo_view(h[i].value);
    }
    return {};
}

bool candidate_serves(const perpetuo::Provider &provider, perpetuo::Api api) {
    bool anthropic = provider.kind == perpetuo::ProviderKind::kAnthropic;
    return anthropic == (api == perpetuo::Api::kMessages);
}

// Gathers the request body into one contiguous view. nginx was asked for a
// single in-memory buffer; a body spilled to a temp file is refused rather
// than read with blocking file I/O on the worker.
ngx_int_t body_view(ngx_http_request_t *r, std::string_view *out, std::string *scratch) {
    ngx_http_request_body_t *rb = r->request_body;
    if (rb == nullptr || rb->bufs == nullptr) {
        *out = {};
        return NGX_OK;
    }
    if (rb->temp_file != nullptr) return NGX_DECLINED;
    ngx_chain_t *data = nullptr;
    size_t pieces = 0;
    for (ngx_chain_t *cl = rb->bufs; cl; cl = cl->next) {
        if (ngx_buf_size(cl->buf) == 0) continue;  // e.g. the closing last_buf
        if (!ngx_buf_in_memory(cl->buf)) return NGX_DECLINED;
        data = cl;
        ++pieces;
    }
    if (pieces <= 1) {
        *out = data ? std::string_view(reinterpret_cast<const char *>(data->buf->pos),
                                       data->buf->last - data->buf->pos)
                    : std::string_view();
        return NGX_OK;
    }
    for (ngx_chain_t *cl = rb->bufs; cl; cl = cl->next)
        if (ngx_buf_in_memory(cl->buf))
            scratch->append(reinterpret_cast<const char *>(cl->buf->pos),
                            cl->buf->last - cl->buf->pos);
    *out = *scratch;
    return NGX_OK;
}

ngx_int_t replace_body(ngx_http_request_t *r, const std::string &body) {
    ngx_buf_t *b = ngx_create_temp_buf(r->pool, body.size() ? body.size() : 1);
    ngx_chain_t *cl = ngx_alloc_chain_link(r->pool);
    if (b == nullptr || cl == nullptr) return NGX_ERROR;
    b->last = ngx_cpymem(b->pos, body.data(), body.size());
    b->last_buf = 1;
    cl->buf = b;
    cl->next = nullptr;
    r->request_body->bufs = cl;
    r->headers_in.content_length_n = static_cast<off_t>(body.size());
    return NGX_OK;
}

// The provider sent nothing within its first_byte_timeout: fail the attempt
// the way nginx fails a timed-out upstream, so failover takes it from there.
void first_byte_timeout(ngx_event_t *ev) {
    auto *r = static_cast<ngx_http_request_t *>(ev->data);
    ngx_http_upstream_t *u = r->upstream;
    if (u == nullptr || r->header_sent || u->peer.connection == nullptr || u->state == nullptr ||
        u->state->header_time != static_cast<ngx_msec_t>(-1))
        return;
    ngx_http_perpetuo_ctx_t *ctx = ngx_http_perpetuo_get_ctx(r);
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "perpetuo: provider \"%s\" sent nothing within %M ms", ctx->provider->name.c_str(),
                  static_cast<ngx_msec_t>(ctx->provider->first_byte_timeout_ms));
    ngx_connection_t *c = u->peer.connection;
    ngx_event_t *pending = u->request_sent ? c->read : c->write;
    pending->timedout = 1;
    pending->handler(pending);
}

// Picks the next candidate not yet tried whose breaker lets it through,
// claims it (in flight, or the half-open probe) and sets the request up for
// proxy_pass. Returns false when no candidate is left.
bool start_attempt(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx) {
    const perpetuo::Config &config = *ctx->config;
    const perpetuo::BreakerPolicy &policy = config.routing.breaker;
    std::size_t n = ctx->model->candidates.size();
    std::vector<perpetuo::CandidateState> states(n);
    perpetuo::RequestEstimate estimate;
    estimate.input_tokens = perpetuo::estimate_tokens(ctx->facts.prompt_bytes);
    estimate.output_tokens = ctx->facts.max_output_tokens >= 0 ? ctx->facts.max_output_tokens : 256;
    ngx_time_t *tp = ngx_timeofday();
    std::int64_t now = static_cast<std::int64_t>(tp->sec) * 1000 + tp->msec;
    for (;;) {
        ngx_http_perpetuo_health_lock();
        for (std::size_t i = 0; i < n; ++i) {
            const perpetuo::Candidate &c = ctx->model->candidates[i];
            perpetuo::CandidateState &st = states[i];
            st.candidate = &c;
            st.eligible = ctx->usable[i];
            const perpetuo::ProviderHealth *h = ngx_http_perpetuo_health(c.provider);
            if (!st.eligible || h == nullptr) continue;
            perpetuo::ProviderHealth peek = *h;  // admit() on a copy: look, do not claim
            st.eligible = perpetuo::admit(peek, now, policy);
            st.measured = perpetuo::has_latency(*h, ctx->facts.stream);
            st.latency_ms = perpetuo::latency_ms(*h, ctx->facts.stream);
            st.error_rate = perpetuo::recent_error_rate(*h, now);
        }
        int chosen = perpetuo::choose_candidate(ctx->strategy, states, estimate,
                                                ngx_http_perpetuo_next_sequence(),
                                                ngx_http_perpetuo_next_random());
        bool claimed = false;
        if (chosen >= 0) {
            perpetuo::ProviderHealth *h =
                ngx_http_perpetuo_health(ctx->model->candidates[chosen].provider);
            claimed = h == nullptr || perpetuo::admit(*h, now, policy);
            if (claimed && h != nullptr) ++h->in_flight;
        }
        ngx_http_perpetuo_health_unlock();
        if (chosen < 0) return false;
        if (claimed) {
            ctx->candidate_index = static_cast<std::size_t>(chosen);
            break;
        }
        ctx->usable[chosen] = false;  // another worker took the probe meanwhile
    }
    ctx->candidate = &ctx->model->candidates[ctx->candidate_index];
    ctx->provider = &config.providers[ctx->candidate->provider];
    ++ctx->attempts;
    ctx->attempt_start_msec = ngx_current_msec;
    ctx->first_byte_msec = 0;
    ctx->meter.reset();
    ctx->accounted = false;
    ctx->uri_changes = r->uri_changes;

    perpetuo::Rewrite rewrite;
    if (ctx->candidate->model != ctx->facts.model) rewrite.model = ctx->candidate->model;
    rewrite.add_include_usage = ctx->injected_usage;
    if (!rewrite.model.empty() || rewrite.add_include_usage || ctx->attempts > 1) {
        if (replace_body(r, rewrite.model.empty() && !rewrite.add_include_usage
                                ? ctx->original_body
                                : perpetuo::rewrite_request(ctx->original_body, rewrite)) !=
            NGX_OK)
            throw std::bad_alloc();
    }

    const perpetuo::Provider &p = *ctx->provider;
    ctx->upstream_url = std::string(p.url.tls ? "https://" : "http://") +
                        ngx_http_perpetuo_upstream_name(p) + p.url.path +
                        std::string(perpetuo::canonical_path(ctx->api));
    if (r->args.len) ctx->upstream_url += "?" + std::string(ngx_http_perpetuo_view(r->args));
    ctx->upstream_host = perpetuo::host_header(p.url);
    ctx->upstream_authorization.clear();
    ctx->upstream_api_key.clear();
    if (!p.api_key.empty()) {
        if (p.kind == perpetuo::ProviderKind::kAnthropic)
            ctx->upstream_api_key = p.api_key;
        else
            ctx->upstream_authorization = "Bearer " + p.api_key;
    }
    if (ctx->first_byte_timer.timer_set) ngx_del_timer(&ctx->first_byte_timer);
    if (p.first_byte_timeout_ms > 0) {
        ctx->first_byte_timer.handler = first_byte_timeout;
        ctx->first_byte_timer.data = r;
        ctx->first_byte_timer.log = r->connection->log;
        ngx_add_timer(&ctx->first_byte_timer, static_cast<ngx_msec_t>(p.first_byte_timeout_ms));
    }
    return true;
}

ngx_int_t no_provider(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx) {
    return ngx_http_perpetuo_send_error(
        r, NGX_HTTP_SERVICE_UNAVAILABLE, "no_provider_available",
        "every provider of model \"" + ctx->facts.model +
            "\" is failing or paused by its circuit breaker; try again shortly");
}

// Everything after the body is in memory. Returns NGX_DECLINED to let the
// request go on to proxy_pass, or the result of an error already sent.
ngx_int_t route(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx) {
    std::string scratch;
    std::string_view body;
    if (body_view(r, &body, &scratch) != NGX_OK)
        return ngx_http_perpetuo_send_error(
            r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "request_too_large",
            "request body is larger than client_body_buffer_size; raise it to match "
            "client_max_body_size");
    if (body.empty())
        return ngx_http_perpetuo_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                            "request body is required");
    perpetuo::RequestError error;
    std::optional<perpetuo::RequestFacts> facts =
        perpetuo::parse_request(body, &error, ctx->config->limits.max_json_depth);
    if (!facts)
        return ngx_http_perpetuo_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                            error.message);
    ctx->facts = std::move(*facts);
    ctx->model = ctx->config->find_model(ctx->facts.model);
    if (ctx->model == nullptr)
        return ngx_http_perpetuo_send_error(r, NGX_HTTP_NOT_FOUND, "model_not_found",
                                            "model \"" + ctx->facts.model + "\" is not configured");
    bool any = false;
    for (const perpetuo::Candidate &c : ctx->model->candidates) {
        bool serves = candidate_serves(ctx->config->providers[c.provider], ctx->api);
        ctx->usable.push_back(serves);
        any = any || serves;
    }
    if (!any)
        return ngx_http_perpetuo_send_error(
            r, NGX_HTTP_BAD_REQUEST, "unsupported_api",
            "model \"" + ctx->facts.model + "\" has no provider for this API");
    ctx->injected_usage = ctx->facts.stream && !ctx->facts.include_usage &&
                          (ctx->api == perpetuo::Api::kChatCompletions ||
                           ctx->api == perpetuo::Api::kCompletions);
    ctx->original_body.assign(body);
    if (!start_attempt(r, ctx)) return no_provider(r, ctx);
    return NGX_DECLINED;
}

// Back after error_page sent a failed attempt (429, 5xx, connect error,
// timeout; nothing reached the client yet) to this same location.
ngx_int_t fail_over(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx) {
    ngx_uint_t status = r->err_status ? r->err_status : NGX_HTTP_BAD_GATEWAY;
    r->err_status = 0;  // the next attempt's response is what the client gets
    // error_page turns the method into GET; the next provider gets the POST.
    static ngx_str_t post = ngx_string("POST");
    r->method = NGX_HTTP_POST;
    r->method_name = post;
    if (ctx->first_byte_timer.timer_set) ngx_del_timer(&ctx->first_byte_timer);
    ctx->status = status;
    ngx_http_perpetuo_finish_attempt(r, ctx, true);
    ctx->usable[ctx->candidate_index] = false;
    std::string failed_id = ctx->request_id;
    const perpetuo::Provider *failed = ctx->provider;
    bool retry = ctx->attempts < ctx->config->routing.max_attempts && start_attempt(r, ctx);
    // Each attempt is its own record; the last one carries the id the client sees.
    ngx_http_perpetuo_record_failed_attempt(
        r, ctx, failed, retry ? failed_id + "-a" + std::to_string(ctx->attempts - 1) : failed_id,
        status);
    if (retry) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perpetuo: provider \"%s\" answered %ui, trying \"%s\"",
                      failed->name.c_str(), status, ctx->provider->name.c_str());
        return NGX_DECLINED;
    }
    ctx->attempt_recorded = true;  // recorded above; nothing left for the log phase
    return ngx_http_perpetuo_send_error(
        r, status, "provider_error",
        "provider \"" + failed->name + "\" answered " + std::to_string(status) +
            (ctx->attempts > 1 ? " after " + std::to_string(ctx->attempts) + " attempts" : ""));
}

void body_read(ngx_http_request_t *r) {
    ngx_http_perpetuo_ctx_t *ctx = ngx_http_perpetuo_get_ctx(r);
    ngx_int_t rc;
    try {
        NgxOverheadTimer timer(ctx);
        rc = route(r, ctx);
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: routing failed: %s", e.what());
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rc != NGX_DECLINED) {
        ctx->body_status = NGX_DONE;
        ngx_http_finalize_request(r, rc);
        return;
    }
    ctx->body_status = NGX_DECLINED;
    r->preserve_body = 1;
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}

}  // namespace

ngx_http_perpetuo_ctx_t *ngx_http_perpetuo_get_ctx(ngx_http_request_t *r) {
    auto *ctx =
        static_cast<ngx_http_perpetuo_ctx_t *>(ngx_http_get_module_ctx(r, ngx_http_perpetuo_module));
    if (ctx != nullptr || !r->internal) return ctx;
    // An internal redirect (error_page failover) wipes module contexts; ours
    // lives on in the request pool's cleanup list.
    for (ngx_pool_cleanup_t *cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == destroy_ctx) {
            ctx = static_cast<ngx_http_perpetuo_ctx_t *>(cln->data);
            ngx_http_set_ctx(r, ctx, ngx_http_perpetuo_module);
            return ctx;
        }
    }
    return nullptr;
}

ngx_http_perpetuo_ctx_t *ngx_http_perpetuo_create_ctx(ngx_http_request_t *r) {
    ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_perpetuo_ctx_t));
    if (cln == nullptr) return nullptr;
    auto *ctx = new (cln->data) ngx_http_perpetuo_ctx_t();
    cln->handler = destroy_ctx;
    ngx_http_set_ctx(r, ctx, ngx_http_perpetuo_module);
    return ctx;
}

ngx_int_t ngx_http_perpetuo_gateway_handler(ngx_http_request_t *r) {
    auto *plcf = static_cast<ngx_http_perpetuo_loc_conf_t *>(
        ngx_http_get_module_loc_conf(r, ngx_http_perpetuo_module));
    if (!plcf->gateway || r != r->main) return NGX_DECLINED;
    ngx_http_perpetuo_ctx_t *ctx = ngx_http_perpetuo_get_ctx(r);
    if (ctx != nullptr) {
        if (r->uri_changes >= ctx->uri_changes) return ctx->body_status;
        if (ctx->candidate == nullptr) {
            // An error of our own came back through error_page: answer it
            // here rather than loop.
            ngx_uint_t status = r->err_status ? r->err_status : NGX_HTTP_INTERNAL_SERVER_ERROR;
            r->err_status = 0;
            ngx_int_t rc = ngx_http_perpetuo_send_error(r, status, "internal_error",
                                                        "the gateway could not handle this request");
            ngx_http_finalize_request(r, rc);
            return NGX_DONE;
        }
        try {
            ngx_int_t rc = fail_over(r, ctx);
            if (rc == NGX_DECLINED) return rc;
            ngx_http_finalize_request(r, rc);
            return NGX_DONE;
        } catch (const std::exception &e) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: failover failed: %s",
                          e.what());
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    try {
        ctx = ngx_http_perpetuo_create_ctx(r);
        if (ctx == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
        std::optional<NgxOverheadTimer> timer(std::in_place, ctx);
        auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
            ngx_http_get_module_main_conf(r, ngx_http_perpetuo_module));
        ctx->config = pmcf->config;
        ctx->uri_changes = r->uri_changes;
        ctx->request_id = ngx_http_perpetuo_next_request_id();
        if (r->internal && r->err_status >= NGX_HTTP_BAD_REQUEST) {
            // nginx refused the request before this module saw it (e.g. 413
            // from client_max_body_size) and error_page sent it here: answer
            // in the gateway's JSON shape.
            ngx_uint_t status = r->err_status;
            r->err_status = 0;
            ngx_int_t rc = ngx_http_perpetuo_send_error(
                r, status, status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE ? "request_too_large"
                                                                        : "invalid_request",
                status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                    ? "request body is larger than client_max_body_size"
                    : "nginx refused the request (status " + std::to_string(status) + ")");
            timer.reset();  // finalizing may free the request and ctx with it
            ngx_http_finalize_request(r, rc);
            return NGX_DONE;
        }
        ctx->strategy = static_cast<perpetuo::Strategy>(plcf->strategy);

        if (!(r->method & NGX_HTTP_POST)) {
            ngx_int_t rc = ngx_http_perpetuo_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                                                        "use POST");
            timer.reset();  // finalizing may free the request and ctx with it
            ngx_http_finalize_request(r, rc);
            return NGX_DONE;
        }
        ctx->api = perpetuo::api_from_path(ngx_http_perpetuo_view(r->uri));
        if (ctx->api == perpetuo::Api::kUnknown) {
            ngx_int_t rc = ngx_http_perpetuo_send_error(
                r, NGX_HTTP_NOT_FOUND, "unknown_api",
                "no LLM API at this path (expected .../chat/completions, .../completions, "
                ".../embeddings or .../messages)");
            timer.reset();  // finalizing may free the request and ctx with it
            ngx_http_finalize_request(r, rc);
            return NGX_DONE;
        }
        std::string_view key = client_key(r);
        ctx->workspace =
            key.empty() ? nullptr : ctx->config->find_workspace_by_key_hash(perpetuo::sha256_hex(key));
        if (ctx->workspace == nullptr) {
            ngx_int_t rc = ngx_http_perpetuo_send_error(
                r, NGX_HTTP_UNAUTHORIZED, "invalid_api_key",
                key.empty() ? "missing virtual key (Authorization: Bearer or x-api-key)"
                            : "unknown virtual key");
            timer.reset();  // finalizing may free the request and ctx with it
            ngx_http_finalize_request(r, rc);
            return NGX_DONE;
        }
        if (ctx->workspace->strategy) ctx->strategy = *ctx->workspace->strategy;

        r->request_body_in_single_buf = 1;
        timer.reset();  // body_read times itself
        ngx_int_t rc = ngx_http_read_client_request_body(r, body_read);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) return rc;
        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: gateway handler failed: %s",
                      e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}

ngx_int_t ngx_http_perpetuo_send(ngx_http_request_t *r, ngx_uint_t status, const char *content_type,
                                 std::string_view body, bool copy) {
    if (ngx_http_discard_request_body(r) != NGX_OK) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    auto *b = static_cast<ngx_buf_t *>(ngx_calloc_buf(r->pool));
    if (b == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    if (copy && !body.empty()) {
        b->start = static_cast<u_char *>(ngx_pnalloc(r->pool, body.size()));
        if (b->start == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
        b->end = ngx_cpymem(b->start, body.data(), body.size());
        body = std::string_view(reinterpret_cast<const char *>(b->start), body.size());
    }
    b->pos = reinterpret_cast<u_char *>(const_cast<char *>(body.data()));
    b->last = b->pos + body.size();
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    r->headers_out.status = status;
    r->headers_out.content_length_n = static_cast<off_t>(body.size());
    r->headers_out.content_type.data = reinterpret_cast<u_char *>(const_cast<char *>(content_type));
    r->headers_out.content_type.len = ngx_strlen(content_type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = nullptr;
    ngx_int_t rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;
    ngx_chain_t out = {b, nullptr};
    return ngx_http_output_filter(r, &out);
}

ngx_int_t ngx_http_perpetuo_send_json(ngx_http_request_t *r, ngx_uint_t status,
                                      const std::string &json) {
    return ngx_http_perpetuo_send(r, status, "application/json", json, true);
}

ngx_int_t ngx_http_perpetuo_send_error(ngx_http_request_t *r, ngx_uint_t status, const char *code,
                                       const std::string &message) {
    if (status == NGX_HTTP_UNAUTHORIZED) {
        auto *h = static_cast<ngx_table_elt_t *>(ngx_list_push(&r->headers_out.headers));
        if (h == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer");
    }
    return ngx_http_perpetuo_send_json(r, status, perpetuo::json_error(code, message));
}
