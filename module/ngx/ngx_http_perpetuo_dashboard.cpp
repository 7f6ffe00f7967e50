// perpetuo_dashboard: the built-in dashboard page (charts of a workspace's
// usage, cost, latency and errors, drawn from the analytics endpoints).
#include "ngx_perpetuo.hpp"

#include "dashboard_page.hpp"

namespace {

ngx_int_t dashboard_handler(ngx_http_request_t *r) {
    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) return NGX_HTTP_NOT_ALLOWED;
    // The page is static data of the module: sent without a copy.
    return ngx_http_perpetuo_send(r, NGX_HTTP_OK, "text/html; charset=utf-8",
                                  perpetuo::dashboard_page(), false);
}

}  // namespace

char *ngx_http_perpetuo_dashboard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *clcf = static_cast<ngx_http_core_loc_conf_t *>(
        ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
    clcf->handler = dashboard_handler;
    return NGX_CONF_OK;
}
