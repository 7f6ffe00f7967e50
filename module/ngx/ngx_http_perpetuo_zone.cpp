// perpetuo_zone NAME SIZE: the shared memory that holds this node's live
// routing statistics and metric counters, seen by every worker and kept
// across reloads.
#include "ngx_perpetuo.hpp"

namespace {

// Grows as later features keep their state here; the version guards a
// reload into a binary whose layout differs.
struct zone_header_t {
    ngx_uint_t version;
    ngx_atomic_t redis_dropped_records;
};

zone_header_t *worker_zone;  // this worker's view of the zone, set at worker start

constexpr ngx_uint_t kZoneVersion = 1;

ngx_int_t init_zone(ngx_shm_zone_t *shm_zone, void *data) {
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(shm_zone->shm.addr);
    if (data != nullptr) {
        // Reload: keep the previous cycle's statistics.
        shm_zone->data = data;
        return NGX_OK;
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

}  // namespace

char *ngx_http_perpetuo_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(conf);
    if (pmcf->shm_zone != nullptr) return const_cast<char *>("is duplicate");
    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    ssize_t size = ngx_parse_size(&value[2]);
    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid zone size \"%V\"", &value[2]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    if (size < static_cast<ssize_t>(8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "zone \"%V\" is too small (at least %uzk)",
                           &value[1], 8 * ngx_pagesize / 1024);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    pmcf->shm_zone = ngx_shared_memory_add(cf, &value[1], size, &ngx_http_perpetuo_module);
    if (pmcf->shm_zone == nullptr) return static_cast<char *>(NGX_CONF_ERROR);
    if (pmcf->shm_zone->data != nullptr) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "perpetuo_zone \"%V\" is already bound", &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    pmcf->shm_zone->init = init_zone;
    pmcf->shm_zone->data = pmcf;  // marks the zone as ours until init replaces it
    return NGX_CONF_OK;
}

void ngx_http_perpetuo_zone_attach(ngx_http_perpetuo_main_conf_t *pmcf) {
    worker_zone = pmcf->shm_zone ? static_cast<zone_header_t *>(pmcf->shm_zone->data) : nullptr;
}

void ngx_http_perpetuo_zone_count_dropped(std::uint64_t records) {
    if (worker_zone != nullptr) ngx_atomic_fetch_add(&worker_zone->redis_dropped_records, records);
}
