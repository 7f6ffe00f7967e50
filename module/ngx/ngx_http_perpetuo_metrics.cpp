// perpetuo_metrics: Prometheus text exposition from the shared zone, so one
// scrape covers every worker.
#include "ngx_perpetuo.hpp"

namespace {

ngx_int_t metrics_handler(ngx_http_request_t *r) {
    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) return NGX_HTTP_NOT_ALLOWED;
    try {
        if (ngx_http_discard_request_body(r) != NGX_OK) return NGX_HTTP_INTERNAL_SERVER_ERROR;
        auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
            ngx_http_get_module_main_conf(r, ngx_http_perpetuo_module));
        std::string text = perpetuo::render_metrics(ngx_http_perpetuo_metrics_snapshot(*pmcf->config));
        ngx_buf_t *b = ngx_create_temp_buf(r->pool, text.size());
        if (b == nullptr) return NGX_HTTP_INTERNAL_SERVER_ERROR;
        b->last = ngx_cpymem(b->pos, text.data(), text.size());
        b->last_buf = (r == r->main) ? 1 : 0;
        b->last_in_chain = 1;
        r->headers_out.status = NGX_HTTP_OK;
        r->headers_out.content_length_n = static_cast<off_t>(text.size());
        ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4; charset=utf-8");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        ngx_int_t rc = ngx_http_send_header(r);
        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;
        ngx_chain_t out = {b, nullptr};
        return ngx_http_output_filter(r, &out);
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "perpetuo: metrics: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

char *ngx_http_perpetuo_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_perpetuo_module));
    if (pmcf->config == nullptr) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perpetuo_metrics\" needs \"perpetuo_config\" before it");
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    auto *clcf = static_cast<ngx_http_core_loc_conf_t *>(
        ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
    clcf->handler = metrics_handler;
    return NGX_CONF_OK;
}
