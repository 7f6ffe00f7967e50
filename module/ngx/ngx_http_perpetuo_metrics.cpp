// perpetuo_metrics: Prometheus text exposition from the shared zone, so one
// scrape covers every worker.
#include "ngx_perpetuo.hpp"

namespace {

ngx_int_t metrics_handler(ngx_http_request_t *r) {
    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) return NGX_HTTP_NOT_ALLOWED;
    try {
        auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
            ngx_http_get_module_main_conf(r, ngx_http_perpetuo_module));
        std::string text = perpetuo::render_metrics(ngx_http_perpetuo_metrics_snapshot(*pmcf->config));
        return ngx_http_perpetuo_send(r, NGX_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                                      text, true);
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
