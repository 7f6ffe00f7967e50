// perpetuo_zone NAME SIZE: the shared memory that holds this node's live
// provider health (for strategies and circuit breakers) and counters, seen
// by every worker and kept across reloads. Without a zone each worker keeps
// its own health table, so routing still works, per worker.
#include "ngx_perpetuo.hpp"

#include <cstring>
#include <vector>

namespace {

constexpr ngx_uint_t kMaxProviders = 128;
constexpr ngx_uint_t kZoneVersion = 3;

struct provider_slot_t {
    char name[65];  // provider names are [A-Za-z0-9_-]{1,64}
    perpetuo::ProviderHealth health;
    perpetuo::ProviderMetrics metrics;
};

struct zone_header_t {
    ngx_uint_t version;
    provider_slot_t providers[kMaxProviders];
    perpetuo::GlobalMetrics global;
    perpetuo::MetricSeries *series;  // sized from the zone; same address in every worker
    std::size_t series_slots;
};

// This worker's view: the zone (or a private stand-in) and, per provider of
// the loaded configuration, its slot.
zone_header_t *worker_zone;
ngx_slab_pool_t *worker_pool;
std::vector<perpetuo::ProviderHealth *> worker_slots;

ngx_int_t init_zone(ngx_shm_zone_t *shm_zone, void *data) {
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(shm_zone->shm.addr);
    if (data != nullptr) {
        // Reload: keep the previous cycle's health, when the layout is ours.
        auto *old = static_cast<zone_header_t *>(data);
        if (old->version == kZoneVersion) {
            shm_zone->data = data;
            return NGX_OK;
        }
    }
    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }
    auto *header = static_cast<zone_header_t *>(ngx_slab_calloc(shpool, sizeof(zone_header_t)));
    if (header == nullptr) return NGX_ERROR;
    header->version = kZoneVersion;
    // Half the zone for metric series; the rest stays for the slab's own use.
    header->series_slots = ngx_min(shm_zone->shm.size / 2 / sizeof(perpetuo::MetricSeries),
                                   static_cast<size_t>(65536));
    header->series = static_cast<perpetuo::MetricSeries *>(
        ngx_slab_calloc(shpool, header->series_slots * sizeof(perpetuo::MetricSeries)));
    if (header->series == nullptr) return NGX_ERROR;
    shpool->data = header;
    shm_zone->data = header;
    size_t len = sizeof(" in perpetuo_zone \"\"") + shm_zone->shm.name.len;
    shpool->log_ctx = static_cast<u_char *>(ngx_slab_alloc(shpool, len));
    if (shpool->log_ctx == nullptr) return NGX_ERROR;
    ngx_sprintf(shpool->log_ctx, " in perpetuo_zone \"%V\"%Z", &shm_zone->shm.name);
    return NGX_OK;
}

provider_slot_t *find_or_claim(const std::string &name) {
    provider_slot_t *free_slot = nullptr;
    for (provider_slot_t &slot : worker_zone->providers) {
        if (slot.name[0] == '\0') {
            if (free_slot == nullptr) free_slot = &slot;
        } else if (name == slot.name) {
            return &slot;
        }
    }
    if (free_slot != nullptr) {
        *free_slot = provider_slot_t{};
        std::memcpy(free_slot->name, name.data(), name.size());
    }
    return free_slot;
}

}  // namespace

ngx_int_t ngx_http_perpetuo_zone_attach(ngx_cycle_t *cycle, ngx_http_perpetuo_main_conf_t *pmcf) {
    if (pmcf->shm_zone != nullptr) {
        worker_zone = static_cast<zone_header_t *>(pmcf->shm_zone->data);
        worker_pool = reinterpret_cast<ngx_slab_pool_t *>(pmcf->shm_zone->shm.addr);
    } else {
        // No zone: this worker's own tables (metrics then cover this worker only).
        worker_zone = new zone_header_t();
        worker_zone->series_slots = 1024;
        worker_zone->series = new perpetuo::MetricSeries[worker_zone->series_slots]();
        worker_pool = nullptr;
    }
    worker_slots.clear();
    ngx_http_perpetuo_health_lock();
    for (const perpetuo::Provider &p : pmcf->config->providers) {
        provider_slot_t *slot = find_or_claim(p.name);
        worker_slots.push_back(slot ? &slot->health : nullptr);
    }
    ngx_http_perpetuo_health_unlock();
    for (std::size_t i = 0; i < worker_slots.size(); ++i) {
        if (worker_slots[i] == nullptr) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "perpetuo: more than %ui providers share perpetuo_zone",
                          kMaxProviders);
            return NGX_ERROR;
        }
    }
    return NGX_OK;
}

void ngx_http_perpetuo_health_lock() {
    if (worker_pool != nullptr) ngx_shmtx_lock(&worker_pool->mutex);
}

void ngx_http_perpetuo_health_unlock() {
    if (worker_pool != nullptr) ngx_shmtx_unlock(&worker_pool->mutex);
}

perpetuo::ProviderHealth *ngx_http_perpetuo_health(std::size_t provider) {
    return provider < worker_slots.size() ? worker_slots[provider] : nullptr;
}

void ngx_http_perpetuo_zone_count_dropped(std::uint64_t records) {
    ngx_http_perpetuo_health_lock();
    worker_zone->global.redis_dropped_records += static_cast<std::int64_t>(records);
    ngx_http_perpetuo_health_unlock();
}

void ngx_http_perpetuo_metrics_observe(const perpetuo::CallObservation &call,
                                       std::size_t provider, double overhead_seconds,
                                       const char *error_class, bool failover) {
    if (worker_zone == nullptr) return;
    perpetuo::SeriesKey key = perpetuo::series_key(call);
    std::uint64_t hash = perpetuo::series_hash(key);
    ngx_http_perpetuo_health_lock();
    perpetuo::MetricSeries *series =
        worker_zone->series ? perpetuo::find_series(worker_zone->series, worker_zone->series_slots,
                                                    key, hash)
                            : nullptr;
    if (series != nullptr)
        perpetuo::observe_call(*series, call);
    else
        ++worker_zone->global.series_overflow;
    if (overhead_seconds >= 0)
        worker_zone->global.overhead.observe(overhead_seconds, perpetuo::kOverheadBoundsSeconds);
    if (provider < worker_slots.size()) {
        auto *slot = reinterpret_cast<provider_slot_t *>(
            reinterpret_cast<char *>(worker_slots[provider]) - offsetof(provider_slot_t, health));
        if (error_class == std::string_view("4xx")) ++slot->metrics.errors_4xx;
        if (error_class == std::string_view("5xx")) ++slot->metrics.errors_5xx;
        if (error_class == std::string_view("timeout")) ++slot->metrics.errors_timeout;
        if (failover) ++slot->metrics.failovers;
    }
    ngx_http_perpetuo_health_unlock();
}

void ngx_http_perpetuo_metrics_redis(std::size_t backlog, bool connected) {
    if (worker_zone == nullptr || ngx_worker >= perpetuo::kMaxWorkers) return;
    perpetuo::GlobalMetrics &g = worker_zone->global;
    g.redis_queue_records[ngx_worker] = static_cast<std::int64_t>(backlog);
    g.redis_connected[ngx_worker] = connected ? 1 : 0;
    if (static_cast<ngx_uint_t>(g.workers) <= ngx_worker) g.workers = static_cast<std::int32_t>(ngx_worker + 1);
}

perpetuo::MetricsSnapshot ngx_http_perpetuo_metrics_snapshot(const perpetuo::Config &config) {
    perpetuo::MetricsSnapshot snap;
    // Copy under the lock, render after it: a scrape never holds up calls
    // for longer than a copy.
    ngx_http_perpetuo_health_lock();
    if (worker_zone->series != nullptr)
        for (std::size_t i = 0; i < worker_zone->series_slots; ++i)
            if (worker_zone->series[i].hash != 0) snap.series.push_back(worker_zone->series[i]);
    for (std::size_t i = 0; i < config.providers.size() && i < worker_slots.size(); ++i) {
        auto *slot = reinterpret_cast<provider_slot_t *>(
            reinterpret_cast<char *>(worker_slots[i]) - offsetof(provider_slot_t, health));
        snap.providers.push_back({config.providers[i].name, slot->health, slot->metrics});
    }
    snap.global = worker_zone->global;
    ngx_http_perpetuo_health_unlock();
    return snap;
}

char *ngx_http_perpetuo_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(conf);
    if (pmcf->shm_zone != nullptr) return const_cast<char *>("is duplicate");
    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    ssize_t size = ngx_parse_size(&value[2]);
    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid zone size \"%V\"", &value[2]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    ssize_t minimum = static_cast<ssize_t>(
        ngx_max(8 * ngx_pagesize, 2 * sizeof(zone_header_t) + 64 * sizeof(perpetuo::MetricSeries)));
    if (size < minimum) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "zone \"%V\" is too small (at least %uzk)",
                           &value[1], static_cast<size_t>(minimum) / 1024 + 1);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    pmcf->shm_zone = ngx_shared_memory_add(cf, &value[1], size, &ngx_http_perpetuo_module);
    if (pmcf->shm_zone == nullptr) return static_cast<char *>(NGX_CONF_ERROR);
    if (pmcf->shm_zone->data != nullptr) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "perpetuo_zone \"%V\" is already bound", &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    pmcf->shm_zone->init = init_zone;
    pmcf->shm_zone->data = nullptr;
    return NGX_CONF_OK;
}
