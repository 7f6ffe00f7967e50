// Module object, directives, configuration and worker start-up.
#include "ngx_perpetuo.hpp"

#include <random>

#include "config_yaml.hpp"
#include "ngx_perpetuo_redis_link.hpp"
#include "request_id.hpp"

namespace {

void *create_main_conf(ngx_conf_t *cf);
void *create_loc_conf(ngx_conf_t *cf);
char *merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);
ngx_int_t preconfiguration(ngx_conf_t *cf);
ngx_int_t postconfiguration(ngx_conf_t *cf);
ngx_int_t init_process(ngx_cycle_t *cycle);
void exit_process(ngx_cycle_t *cycle);

char *set_config(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *set_strategy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *set_gateway(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

ngx_command_t ngx_http_perpetuo_commands[] = {
    {ngx_string("perpetuo_config"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, set_config,
     NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("perpetuo_redis"), NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE,
     ngx_http_perpetuo_redis_directive,
     NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("perpetuo_zone"), NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE2, ngx_http_perpetuo_zone,
     NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("perpetuo_gateway"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, set_gateway,
     NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("perpetuo_analytics"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_perpetuo_analytics, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("perpetuo_metrics"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_perpetuo_metrics, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("perpetuo_dashboard"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_perpetuo_dashboard, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("perpetuo_strategy"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1, set_strategy,
     NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    ngx_null_command};

ngx_http_module_t ngx_http_perpetuo_module_ctx = {
    preconfiguration, postconfiguration, create_main_conf, nullptr, nullptr, nullptr,
    create_loc_conf,  merge_loc_conf};

// Per-worker: request ids and routing randomness are never shared across
// processes, so two workers can never hand out the same id.
perpetuo::RequestIdGenerator *worker_ids;
std::mt19937_64 *worker_random;
std::uint64_t worker_sequence;

void destroy_config(void *data) { delete static_cast<perpetuo::Config *>(data); }

void *create_main_conf(ngx_conf_t *cf) {
    auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
        ngx_pcalloc(cf->pool, sizeof(ngx_http_perpetuo_main_conf_t)));
    return pmcf;
}

void *create_loc_conf(ngx_conf_t *cf) {
    auto *plcf = static_cast<ngx_http_perpetuo_loc_conf_t *>(
        ngx_pcalloc(cf->pool, sizeof(ngx_http_perpetuo_loc_conf_t)));
    if (plcf == nullptr) return nullptr;
    plcf->gateway = NGX_CONF_UNSET;
    plcf->strategy = NGX_CONF_UNSET;
    return plcf;
}

char *merge_loc_conf(ngx_conf_t *cf, void *parent, void *child) {
    auto *prev = static_cast<ngx_http_perpetuo_loc_conf_t *>(parent);
    auto *conf = static_cast<ngx_http_perpetuo_loc_conf_t *>(child);
    ngx_conf_merge_value(conf->gateway, prev->gateway, 0);
    ngx_conf_merge_value(conf->strategy, prev->strategy,
                         static_cast<ngx_int_t>(perpetuo::Strategy::kFallback));
    if (conf->gateway) {
        auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
            ngx_http_conf_get_module_main_conf(cf, ngx_http_perpetuo_module));
        if (pmcf->config == nullptr) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"perpetuo_gateway\" needs \"perpetuo_config\" at http level");
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }
    return NGX_CONF_OK;
}

char *set_config(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(conf);
    if (pmcf->config_file.data != nullptr) return const_cast<char *>("is duplicate");
    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    pmcf->config_file = value[1];
    if (ngx_conf_full_name(cf->cycle, &pmcf->config_file, 1) != NGX_OK)
        return static_cast<char *>(NGX_CONF_ERROR);
    return ngx_http_perpetuo_load_config(cf, pmcf);
}

char *set_gateway(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *plcf = static_cast<ngx_http_perpetuo_loc_conf_t *>(conf);
    if (plcf->gateway != NGX_CONF_UNSET) return const_cast<char *>("is duplicate");
    plcf->gateway = 1;
    return NGX_CONF_OK;
}

char *set_strategy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *plcf = static_cast<ngx_http_perpetuo_loc_conf_t *>(conf);
    if (plcf->strategy != NGX_CONF_UNSET) return const_cast<char *>("is duplicate");
    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    std::optional<perpetuo::Strategy> strategy =
        perpetuo::parse_strategy(ngx_http_perpetuo_view(value[1]));
    if (!strategy) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown strategy \"%V\" (expected fastest, cheapest, reliable, "
                           "round_robin, weighted or fallback)",
                           &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    plcf->strategy = static_cast<ngx_int_t>(*strategy);
    return NGX_CONF_OK;
}

ngx_int_t preconfiguration(ngx_conf_t *cf) { return ngx_http_perpetuo_add_variables(cf); }

ngx_int_t postconfiguration(ngx_conf_t *cf) {
    auto *cmcf = static_cast<ngx_http_core_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module));
    // Precontent: nginx's own access control (allow/deny, auth_request) has
    // run, and proxy_pass (the content handler) has not.
    auto *h = static_cast<ngx_http_handler_pt *>(
        ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers));
    if (h == nullptr) return NGX_ERROR;
    *h = ngx_http_perpetuo_gateway_handler;
    h = static_cast<ngx_http_handler_pt *>(
        ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers));
    if (h == nullptr) return NGX_ERROR;
    *h = ngx_http_perpetuo_log_handler;
    return ngx_http_perpetuo_init_filters(cf);
}

ngx_int_t init_process(ngx_cycle_t *cycle) {
    try {
        worker_ids = new perpetuo::RequestIdGenerator();
        std::random_device seed;
        worker_random = new std::mt19937_64((static_cast<std::uint64_t>(seed()) << 32) ^ seed());
        auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(
            ngx_http_cycle_get_module_main_conf(cycle, ngx_http_perpetuo_module));
        if (pmcf == nullptr || pmcf->config == nullptr) return NGX_OK;
        if (ngx_http_perpetuo_zone_attach(cycle, pmcf) != NGX_OK) return NGX_ERROR;
        if (pmcf->redis != nullptr) {
            perpetuo::AccountingSettings settings;
            settings.retention_days = pmcf->config->analytics.retention_days;
            settings.max_log_entries = pmcf->config->analytics.max_log_entries_per_workspace;
            return ngx_http_perpetuo_writer_init(cycle, *pmcf->redis, settings, (*worker_random)());
        }
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "perpetuo: worker init failed: %s", e.what());
        return NGX_ERROR;
    }
    return NGX_OK;
}

void exit_process(ngx_cycle_t *cycle) {
    try {
        ngx_http_perpetuo_writer_exit(cycle);
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0, "perpetuo: worker exit: %s", e.what());
    }
}

}  // namespace

std::string ngx_http_perpetuo_next_request_id() { return worker_ids->next(); }
std::uint64_t ngx_http_perpetuo_next_random() { return (*worker_random)(); }
std::uint64_t ngx_http_perpetuo_next_sequence() { return worker_sequence++; }

extern "C" {

ngx_module_t ngx_http_perpetuo_module = {NGX_MODULE_V1,
                                         &ngx_http_perpetuo_module_ctx,
                                         ngx_http_perpetuo_commands,
                                         NGX_HTTP_MODULE,
                                         nullptr,
                                         nullptr,
                                         init_process,
                                         nullptr,
                                         nullptr,
                                         exit_process,
                                         nullptr,
                                         NGX_MODULE_V1_PADDING};
}

// Loads the YAML, owned by the configuration cycle's pool, and declares one
// upstream{} per provider.
char *ngx_http_perpetuo_load_config(ngx_conf_t *cf, ngx_http_perpetuo_main_conf_t *pmcf) {
    ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == nullptr) return static_cast<char *>(NGX_CONF_ERROR);
    try {
        std::string path(ngx_http_perpetuo_view(pmcf->config_file));
        pmcf->config = new perpetuo::Config(perpetuo::load_config_file(path, perpetuo::process_env()));
    } catch (const perpetuo::ConfigError &e) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "perpetuo_config: %s", e.what());
        return static_cast<char *>(NGX_CONF_ERROR);
    } catch (const std::exception &e) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "perpetuo_config: \"%V\": %s",
                           &pmcf->config_file, e.what());
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    cln->handler = destroy_config;
    cln->data = pmcf->config;
    if (pmcf->config->jwt.enabled) {
        ngx_pool_cleanup_t *jcln = ngx_pool_cleanup_add(cf->pool, 0);
        if (jcln == nullptr) return static_cast<char *>(NGX_CONF_ERROR);
        try {
            pmcf->jwt = new perpetuo::JwtVerifier(pmcf->config->jwt);
        } catch (const std::exception &e) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "perpetuo_config: \"%V\": auth.jwt: %s",
                               &pmcf->config_file, e.what());
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        jcln->handler = [](void *data) { delete static_cast<perpetuo::JwtVerifier *>(data); };
        jcln->data = pmcf->jwt;
    }
    return ngx_http_perpetuo_declare_upstreams(cf, *pmcf->config);
}
