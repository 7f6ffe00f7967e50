// perpetuo_zone NAME SIZE: the shared memory that holds this node's live
// provider health (for strategies and circuit breakers) and counters, seen
// by every worker and kept across reloads. Without a zone each worker keeps
// its own health table, so routing still works, per worker.
#include "ngx_perpetuo.hpp"

#include <cstring>
#include <vector>

namespace {

constexpr ngx_uint_t kMaxProviders = 128;
constexpr ngx_uint_t kZoneVersion = 2;

struct provider_slot_t {
    char name[65];  // provider names are [A-Za-z0-9_-]{1,64}
    perpetuo::ProviderHealth health;
};

struct zone_header_t {
    ngx_uint_t version;
    ngx_atomic_t redis_dropped_records;
    provider_slot_t providers[kMaxProviders];
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
        worker_zone = new zone_header_t();
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
    if (worker_zone != nullptr) ngx_atomic_fetch_add(&worker_zone->redis_dropped_records, records);
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
    ssize_t minimum = static_cast<ssize_t>(ngx_max(8 * ngx_pagesize, 2 * sizeof(zone_header_t)));
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
