// One upstream{} block per provider, declared from the YAML so operators get
// nginx's own upstream machinery (keepalive, resolution at load, TLS reuse)
// without writing the blocks themselves.
#include "ngx_perpetuo.hpp"

#include <sys/mman.h>

std::string ngx_http_perpetuo_upstream_name(const perpetuo::Provider &provider) {
    return "perpetuo_" + provider.name;
}

namespace {

std::string upstream_blocks(const perpetuo::Config &config) {
    std::string text;
    for (const perpetuo::Provider &p : config.providers) {
        std::string host = p.url.host.find(':') != std::string::npos ? "[" + p.url.host + "]"
                                                                       : p.url.host;
        text += "upstream " + ngx_http_perpetuo_upstream_name(p) + " {\n";
        text += "    server " + host + ":" + std::to_string(p.url.port) + ";\n";
        if (p.keepalive > 0) text += "    keepalive " + std::to_string(p.keepalive) + ";\n";
        text += "}\n";
    }
    return text;
}

}  // namespace

// The blocks are parsed by nginx's own parser from an anonymous in-memory
// file, exactly as if the operator had included them here.
char *ngx_http_perpetuo_declare_upstreams(ngx_conf_t *cf, const perpetuo::Config &config) {
    std::string text = upstream_blocks(config);
    int fd = memfd_create("perpetuo-upstreams", MFD_CLOEXEC);
    if (fd == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno, "perpetuo: memfd_create() failed");
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno, "perpetuo: writing upstreams failed");
        close(fd);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    ngx_str_t name;
    name.len = path.size();
    name.data = static_cast<u_char *>(ngx_pnalloc(cf->pool, path.size() + 1));
    if (name.data == nullptr) {
        close(fd);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    ngx_memcpy(name.data, path.c_str(), path.size() + 1);
    char *rv = ngx_conf_parse(cf, &name);
    close(fd);
    return rv;
}
