// Shared declarations of the nginx glue. The glue is C++ that includes the
// nginx headers as C and catches every exception at each nginx callback, so
// nothing thrown in the core ever unwinds through nginx's C frames.
#pragma once

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api_route.hpp"
#include "config.hpp"
#include "jwt.hpp"
#include "metrics_table.hpp"
#include "request_body.hpp"
#include "response_meter.hpp"
#include "strategy_name.hpp"
#include "usage.hpp"

extern "C" ngx_module_t ngx_http_perpetuo_module;

struct ngx_perpetuo_redis_target_t;
struct ngx_http_perpetuo_redis_conf_t;

struct ngx_http_perpetuo_main_conf_t {
    ngx_str_t config_file;
    perpetuo::Config *config;  // lives in a cycle pool cleanup, as long as the cycle
    ngx_http_perpetuo_redis_conf_t *redis;  // null without perpetuo_redis
    ngx_shm_zone_t *shm_zone;
    perpetuo::JwtVerifier *jwt;  // lives as long as config; null without auth.jwt
};

struct ngx_http_perpetuo_loc_conf_t {
    ngx_flag_t gateway;
    ngx_int_t strategy;  // a perpetuo::Strategy, or NGX_CONF_UNSET
};

// Per-request state; a C++ object placed in a pool cleanup block so its
// destructor runs when the request's pool is freed.
struct ngx_http_perpetuo_ctx_t {
    const perpetuo::Config *config = nullptr;
    std::string request_id;
    ngx_int_t body_status = NGX_DONE;  // what the phase handler returns on re-entry

    // Routing decision.
    const perpetuo::Workspace *workspace = nullptr;
    const perpetuo::Model *model = nullptr;
    const perpetuo::Candidate *candidate = nullptr;
    const perpetuo::Provider *provider = nullptr;
    perpetuo::Strategy strategy = perpetuo::Strategy::kFallback;
    perpetuo::Api api = perpetuo::Api::kUnknown;
    perpetuo::RequestFacts facts;
    std::string original_body;  // as the client sent it, rewritten anew per attempt
    std::vector<bool> usable;   // per candidate: serves this API and not yet failed
    std::size_t candidate_index = 0;
    int attempts = 0;
    bool attempt_recorded = false;  // the last attempt failed and is already recorded
    ngx_uint_t uri_changes = 0;  // r->uri_changes when the attempt started
    ngx_msec_t attempt_start_msec = 0;
    ngx_event_t first_byte_timer{};
    bool injected_usage = false;
    std::string upstream_url;
    std::string upstream_host;   // Host header and TLS server name
    std::string upstream_authorization;
    std::string upstream_api_key;

    // Response.
    std::optional<perpetuo::ResponseMeter> meter;
    std::string rewrite_out;  // reused scratch for rewritten stream bytes
    ngx_chain_t *free = nullptr;
    ngx_chain_t *busy = nullptr;
    ngx_msec_t first_byte_msec = 0;
    std::int64_t overhead_ns = 0;  // time spent in this module for the call

    // Accounting, filled once (log phase or the first variable that needs it).
    bool accounted = false;
    perpetuo::Usage usage;
    perpetuo::Micros cost_micros = 0;
    ngx_uint_t status = 0;
    ngx_msec_t latency_ms = 0;
};

// Adds the time a scope spends to the call's module overhead (a metric).
class NgxOverheadTimer {
public:
    explicit NgxOverheadTimer(ngx_http_perpetuo_ctx_t *ctx) : ctx_(ctx) {
        clock_gettime(CLOCK_MONOTONIC, &start_);
    }
    ~NgxOverheadTimer() {
        if (ctx_ == nullptr) return;
        timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        ctx_->overhead_ns += (end.tv_sec - start_.tv_sec) * 1000000000LL + (end.tv_nsec - start_.tv_nsec);
    }
    NgxOverheadTimer(const NgxOverheadTimer &) = delete;
    NgxOverheadTimer &operator=(const NgxOverheadTimer &) = delete;

private:
    ngx_http_perpetuo_ctx_t *ctx_;
    timespec start_;
};

ngx_http_perpetuo_ctx_t *ngx_http_perpetuo_get_ctx(ngx_http_request_t *r);
ngx_http_perpetuo_ctx_t *ngx_http_perpetuo_create_ctx(ngx_http_request_t *r);

// Per-worker sources of request ids and routing randomness.
std::string ngx_http_perpetuo_next_request_id();
std::uint64_t ngx_http_perpetuo_next_random();
std::uint64_t ngx_http_perpetuo_next_sequence();

ngx_int_t ngx_http_perpetuo_gateway_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_perpetuo_init_filters(ngx_conf_t *cf);
ngx_int_t ngx_http_perpetuo_log_handler(ngx_http_request_t *r);
// Feeds an attempt's outcome to its provider's health (strategies, breaker).
void ngx_http_perpetuo_finish_attempt(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx,
                                      bool failed);
void ngx_http_perpetuo_record_failed_attempt(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx,
                                             const perpetuo::Provider *provider,
                                             const std::string &request_id, ngx_uint_t status);
void ngx_http_perpetuo_account(ngx_http_request_t *r, ngx_http_perpetuo_ctx_t *ctx);
ngx_int_t ngx_http_perpetuo_add_variables(ngx_conf_t *cf);

// Sends a whole response; `copy` false for data that outlives the request.
ngx_int_t ngx_http_perpetuo_send(ngx_http_request_t *r, ngx_uint_t status, const char *content_type,
                                 std::string_view body, bool copy);
ngx_int_t ngx_http_perpetuo_send_json(ngx_http_request_t *r, ngx_uint_t status,
                                      const std::string &json);
// Sends {"error": {"code", "message"}} with `status`; the caller finalizes.
ngx_int_t ngx_http_perpetuo_send_error(ngx_http_request_t *r, ngx_uint_t status,
                                       const char *code, const std::string &message);

// Live provider health, shared by the workers through perpetuo_zone; hold the
// lock only around reads and updates, never across I/O.
ngx_int_t ngx_http_perpetuo_zone_attach(ngx_cycle_t *cycle, ngx_http_perpetuo_main_conf_t *pmcf);
void ngx_http_perpetuo_health_lock();
void ngx_http_perpetuo_health_unlock();
perpetuo::ProviderHealth *ngx_http_perpetuo_health(std::size_t provider);
void ngx_http_perpetuo_zone_count_dropped(std::uint64_t records);
// Metrics, kept in the same zone. `error_class` is "", "4xx", "5xx" or "timeout".
void ngx_http_perpetuo_metrics_observe(const perpetuo::CallObservation &call, std::size_t provider,
                                       double overhead_seconds, const char *error_class,
                                       bool failover);
void ngx_http_perpetuo_metrics_redis(std::size_t backlog, bool connected);
perpetuo::MetricsSnapshot ngx_http_perpetuo_metrics_snapshot(const perpetuo::Config &config);
char *ngx_http_perpetuo_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_perpetuo_dashboard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

char *ngx_http_perpetuo_load_config(ngx_conf_t *cf, ngx_http_perpetuo_main_conf_t *pmcf);
char *ngx_http_perpetuo_declare_upstreams(ngx_conf_t *cf, const perpetuo::Config &config);
std::string ngx_http_perpetuo_upstream_name(const perpetuo::Provider &provider);
char *ngx_http_perpetuo_analytics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_perpetuo_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

inline std::string_view ngx_http_perpetuo_view(const ngx_str_t &s) {
    return std::string_view(reinterpret_cast<const char *>(s.data), s.len);
}
