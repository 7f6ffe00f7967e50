// $perpetuo_* variables for proxy_pass, proxy_set_header and log_format.
#include "ngx_perpetuo.hpp"

#include "money.hpp"

namespace {

using Getter = std::string (*)(ngx_http_request_t *, ngx_http_perpetuo_ctx_t *);

ngx_int_t set_value(ngx_http_request_t *r, ngx_http_variable_value_t *v, const std::string &s) {
    if (s.empty()) {
        v->not_found = 1;
        return NGX_OK;
    }
    u_char *data = static_cast<u_char *>(ngx_pnalloc(r->pool, s.size()));
    if (data == nullptr) return NGX_ERROR;
    ngx_memcpy(data, s.data(), s.size());
    v->data = data;
    v->len = static_cast<unsigned>(s.size());
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    return NGX_OK;
}

ngx_int_t get_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data) {
    ngx_http_perpetuo_ctx_t *ctx = ngx_http_perpetuo_get_ctx(r->main);
    if (ctx == nullptr) {
        v->not_found = 1;
        return NGX_OK;
    }
    try {
        return set_value(r, v, reinterpret_cast<Getter>(data)(r->main, ctx));
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: variable: %s", e.what());
        v->not_found = 1;
        return NGX_OK;
    }
}

std::string accounted(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx, std::int64_t (*pick)(const perpetuo::Usage &)) {
    if (ctx->candidate == nullptr) return {};
    ngx_http_perpetuo_account(r, ctx);
    return std::to_string(pick(ctx->usage));
}

struct Variable {
    ngx_str_t name;
    Getter getter;
};

Variable variables[] = {
    {ngx_string("perpetuo_upstream"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->upstream_url; }},
    {ngx_string("perpetuo_upstream_host"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->upstream_host; }},
    {ngx_string("perpetuo_upstream_authorization"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->upstream_authorization; }},
    {ngx_string("perpetuo_upstream_api_key"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->upstream_api_key; }},
    {ngx_string("perpetuo_upstream_anthropic_version"),
     [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) {
         return c->provider && c->provider->kind == perpetuo::ProviderKind::kAnthropic
                    ? c->provider->anthropic_version
                    : std::string();
     },
    },
    {ngx_string("perpetuo_provider"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->provider ? c->provider->name : std::string(); }},
    {ngx_string("perpetuo_model"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->facts.model; }},
    {ngx_string("perpetuo_provider_model"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->candidate ? c->candidate->model : std::string(); }},
    {ngx_string("perpetuo_workspace"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->workspace ? c->workspace->id : std::string(); }},
    {ngx_string("perpetuo_request_id"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return c->request_id; }},
    {ngx_string("perpetuo_strategy"), [](ngx_http_request_t *, ngx_http_perpetuo_ctx_t *c) { return std::string(perpetuo::strategy_name(c->strategy)); }},
    {ngx_string("perpetuo_prompt_tokens"), [](ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *c) { return accounted(r, c, [](const perpetuo::Usage &u) { return u.input_tokens(); }); }},
    {ngx_string("perpetuo_completion_tokens"), [](ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *c) { return accounted(r, c, [](const perpetuo::Usage &u) { return u.output_tokens; }); }},
    {ngx_string("perpetuo_cached_tokens"), [](ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *c) { return accounted(r, c, [](const perpetuo::Usage &u) { return u.cache_read_tokens; }); }},
    {ngx_string("perpetuo_total_tokens"), [](ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *c) { return accounted(r, c, [](const perpetuo::Usage &u) { return u.total_tokens(); }); }},
    {ngx_string("perpetuo_tokens_estimated"), [](ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *c) { return accounted(r, c, [](const perpetuo::Usage &u) -> std::int64_t { return u.estimated; }); }},
    {ngx_string("perpetuo_status"),
     [](ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *c) {
         // As recorded: 499 for a client gone mid-stream, where $status says 200.
         if (c->candidate == nullptr) return std::string();
         ngx_http_perpetuo_account(r, c);
         return std::to_string(c->status);
     }},
    {ngx_string("perpetuo_cost"),
     [](ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *c) {
         if (c->candidate == nullptr) return std::string();
         ngx_http_perpetuo_account(r, c);
         return perpetuo::format_micros(c->cost_micros);
     },
    },
};

}  // namespace

ngx_int_t ngx_http_perpetuo_add_variables(ngx_conf_t *cf) {
    for (Variable &v : variables) {
        // Not cacheable: usage is known only at the end of the request, and a
        // routing fact read before routing must not stick as "not found".
        ngx_http_variable_t *var = ngx_http_add_variable(cf, &v.name, NGX_HTTP_VAR_NOCACHEABLE);
        if (var == nullptr) return NGX_ERROR;
        var->get_handler = get_variable;
        var->data = reinterpret_cast<uintptr_t>(v.getter);
    }
    return NGX_OK;
}
