// perpetuo_analytics: the seed's /workspaces/:id/... endpoints, behind a
// strict JWT, answered from Redis on the worker's asynchronous link, so a
// request waiting on Redis holds up nothing else.
#include "ngx_perpetuo_redis_link.hpp"

#include <new>

#include "analytics_report.hpp"
#include "analytics_request.hpp"
#include "analytics_script.hpp"

namespace {

// One analytics request in flight; lives in the request's pool, which the
// extra request reference keeps alive until the last reply is in.
struct AnalyticsCall {
    ngx_http_request_t *r;
    perpetuo::AnalyticsRequest request;
    std::size_t waiting = 0;
    bool failed = false;
    perpetuo::DimensionTotals totals;
    perpetuo::DimensionTotals histograms;
    std::vector<std::string> entries;
};

void destroy_call(void *data) { static_cast<AnalyticsCall *>(data)->~AnalyticsCall(); }

void add_hash(perpetuo::DimensionTotals &into, redisReply *reply) {
    if (reply->type != REDIS_REPLY_ARRAY) return;
    for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
        redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            into.add(std::string_view(k->str, k->len), std::string_view(v->str, v->len));
    }
}

void finish(AnalyticsCall *call) {
    ngx_http_request_t *r = call->r;
    ngx_int_t rc;
    try {
        if (call->failed) {
            rc = ngx_http_perpetuo_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                                              "the analytics store (redis) did not answer");
        } else {
            std::string body;
            const perpetuo::AnalyticsRequest &q = call->request;
            switch (q.endpoint) {
                case perpetuo::AnalyticsEndpoint::kUsage:
                    body = perpetuo::render_usage(call->totals, q.days);
                    break;
                case perpetuo::AnalyticsEndpoint::kUsageByProvider:
                    body = perpetuo::render_usage_by_provider(call->totals);
                    break;
                case perpetuo::AnalyticsEndpoint::kLatency:
                    body = perpetuo::render_latency(call->totals, call->histograms);
                    break;
                case perpetuo::AnalyticsEndpoint::kErrors:
                    body = perpetuo::render_errors(call->totals);
                    break;
                case perpetuo::AnalyticsEndpoint::kLogs: {
                    std::vector<std::string_view> views(call->entries.begin(), call->entries.end());
                    body = perpetuo::render_logs(views, q.page, q.limit);
                    break;
                }
            }
            rc = ngx_http_perpetuo_send_json(r, NGX_HTTP_OK, body);
        }
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: analytics: %s", e.what());
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_connection_t *c = r->connection;
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}

void settle(AnalyticsCall *call, redisReply *reply, bool histogram) {
    if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
        if (reply != nullptr)
            ngx_log_error(NGX_LOG_ERR, call->r->connection->log, 0,
                          "perpetuo: analytics query failed: %s", reply->str);
        call->failed = true;
    } else if (call->request.endpoint == perpetuo::AnalyticsEndpoint::kLogs) {
        if (reply->type == REDIS_REPLY_ARRAY)
            for (std::size_t i = 0; i < reply->elements; ++i)
                if (reply->element[i]->type == REDIS_REPLY_STRING)  // nil: trimmed meanwhile
                    call->entries.emplace_back(reply->element[i]->str, reply->element[i]->len);
    } else {
        add_hash(histogram ? call->histograms : call->totals, reply);
    }
    if (--call->waiting == 0) finish(call);
}

bool send_logs_query(NgxRedisLink *link, AnalyticsCall *call, std::vector<std::string> argv) {
    return link->command(argv, [call, link, argv](redisReply *reply) mutable {
        if (reply != nullptr && reply->type == REDIS_REPLY_ERROR &&
            std::string_view(reply->str).rfind("NOSCRIPT", 0) == 0) {
            // Redis lost its scripts (restart, SCRIPT FLUSH): send the text.
            argv[0] = "EVAL";
            argv[1] = std::string(perpetuo::logs_script());
            if (link->command(argv, [call](redisReply *again) { settle(call, again, false); }))
                return;
        }
        settle(call, reply, false);
    });
}

// Issues the Redis commands of one call; false if the link refused them.
bool query(NgxRedisLink *link, AnalyticsCall *call) {
    const perpetuo::AnalyticsRequest &q = call->request;
    if (q.endpoint == perpetuo::AnalyticsEndpoint::kLogs) {
        if (!send_logs_query(link, call, perpetuo::logs_command(q))) return false;
        call->waiting = 1;
        return true;
    }
    std::int64_t now_ms = static_cast<std::int64_t>(ngx_time()) * 1000;
    std::vector<std::string> keys = perpetuo::day_keys(q.workspace, "p", q.days, now_ms);
    if (q.endpoint == perpetuo::AnalyticsEndpoint::kLatency) {
        std::vector<std::string> h = perpetuo::day_keys(q.workspace, "ph", q.days, now_ms);
        keys.insert(keys.end(), h.begin(), h.end());
    }
    // Replies never come back within command(), so counting up as we send is safe.
    for (const std::string &key : keys) {
        bool histogram = key.back() == 'h';
        if (!link->command({"HGETALL", key},
                           [call, histogram](redisReply *reply) { settle(call, reply, histogram); }))
            return false;
        ++call->waiting;
    }
    return true;
}

std::string_view bearer_token(ngx_http_request_t *r) {
    if (r->headers_in.authorization == nullptr) return {};
    std::string_view v = ngx_http_perpetuo_view(r->headers_in.authorization->value);
    if (v.size() < 7 || ngx_strncasecmp((u_char *)v.data(), (u_char *)"Bearer ", 7) != 0) return {};
    v.remove_prefix(7);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    return v;
}

ngx_int_t handle(ngx_http_request_t *r) {
    auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
        ngx_http_get_module_main_conf(r, ngx_http_perpetuo_module));
    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        auto *h = static_cast<ngx_table_elt_t *>(ngx_list_push(&r->headers_out.headers));
        if (h == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "GET, HEAD");
        return ngx_http_perpetuo_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                                            "analytics endpoints answer GET");
    }
    perpetuo::AnalyticsError error;
    std::optional<perpetuo::AnalyticsRequest> request = perpetuo::parse_analytics_request(
        ngx_http_perpetuo_view(r->uri), ngx_http_perpetuo_view(r->args),
        pmcf->config->analytics.retention_days, &error);
    if (!request)
        return ngx_http_perpetuo_send_error(r, error.status, error.code.c_str(), error.message);

    std::string_view token = bearer_token(r);
    if (token.empty())
        return ngx_http_perpetuo_send_error(r, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                                            "missing Authorization: Bearer <JWT>");
    perpetuo::JwtVerifier::Result claims = pmcf->jwt->verify(token, ngx_time());
    if (!claims.ok)
        return ngx_http_perpetuo_send_error(r, NGX_HTTP_UNAUTHORIZED, "invalid_token", claims.error);
    bool allowed = false;
    for (const std::string &w : claims.workspaces) allowed = allowed || w == request->workspace;
    if (!allowed)
        return ngx_http_perpetuo_send_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                            "the token is not valid for this workspace");

    NgxRedisLink *link = ngx_http_perpetuo_redis_link();
    if (link == nullptr || !link->ready())
        return ngx_http_perpetuo_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                                            "the analytics store (redis) is unreachable");
    if (ngx_http_discard_request_body(r) != NGX_OK) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(r->pool, sizeof(AnalyticsCall));
    if (cln == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    auto *call = new (cln->data) AnalyticsCall{r, std::move(*request), 0, false, {}, {}, {}};
    cln->handler = destroy_call;
    // Replies arrive from the Redis link's events; until the last one the
    // request must outlive this handler.
    r->main->count++;
    if (!query(link, call)) {
        // Commands already queued still answer (with null) and count down.
        call->failed = true;
        if (call->waiting == 0) finish(call);
    }
    return NGX_DONE;
}

ngx_int_t analytics_handler(ngx_http_request_t *r) {
    try {
        return handle(r);
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: analytics: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

char *ngx_http_perpetuo_analytics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_perpetuo_module));
    if (pmcf->config == nullptr || pmcf->jwt == nullptr || pmcf->redis == nullptr) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perpetuo_analytics\" needs \"perpetuo_config\" (whose YAML has "
                           "auth.jwt) and \"perpetuo_redis\" before it at http level");
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    auto *clcf = static_cast<ngx_http_core_loc_conf_t *>(
        ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
    clcf->handler = analytics_handler;
    return NGX_CONF_OK;
}
