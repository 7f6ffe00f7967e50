#include "ngx_perpetuo_redis_link.hpp"

#include <sys/ioctl.h>

namespace {

// hiredis event hooks: the hiredis socket gets an nginx connection so its
// readiness comes from nginx's event loop like any other socket's.
void on_read(ngx_event_t *ev) {
    auto *c = static_cast<ngx_connection_t *>(ev->data);
    auto *link = static_cast<NgxRedisLink *>(c->data);
    // hiredis reads at most 16 KiB a call and epoll is edge-triggered here:
    // keep reading while bytes are waiting, or replies would stall.
    int fd = c->fd;
    for (;;) {
        redisAsyncContext *ac = link->context();
        if (ac == nullptr) return;
        redisAsyncHandleRead(ac);
        int pending = 0;
        if (link->context() == nullptr || ioctl(fd, FIONREAD, &pending) != 0 || pending <= 0) return;
    }
}

void on_write(ngx_event_t *ev) {
    auto *c = static_cast<ngx_connection_t *>(ev->data);
    auto *link = static_cast<NgxRedisLink *>(c->data);
    if (link->context() != nullptr) redisAsyncHandleWrite(link->context());
}

ngx_uint_t event_flags() {
    if (ngx_event_flags & NGX_USE_CLEAR_EVENT) return static_cast<ngx_uint_t>(NGX_CLEAR_EVENT);
    return static_cast<ngx_uint_t>(NGX_LEVEL_EVENT);
}

void add_read(void *data) {
    auto *c = static_cast<ngx_connection_t *>(data);
    if (!c->read->active) ngx_add_event(c->read, NGX_READ_EVENT, event_flags());
}

void del_read(void *data) {
    auto *c = static_cast<ngx_connection_t *>(data);
    if (c->read->active) ngx_del_event(c->read, NGX_READ_EVENT, 0);
}

void add_write(void *data) {
    auto *c = static_cast<ngx_connection_t *>(data);
    if (!c->write->active) ngx_add_event(c->write, NGX_WRITE_EVENT, event_flags());
}

void del_write(void *data) {
    auto *c = static_cast<ngx_connection_t *>(data);
    if (c->write->active) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
}

void cleanup(void *data) {
    auto *c = static_cast<ngx_connection_t *>(data);
    // hiredis closes the socket itself right after this; the kernel then
    // drops it from epoll, so only nginx's bookkeeping is undone here.
    if (c->read->active) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    if (c->write->active) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    // ngx_delete_posted_event is several statements: braces matter.
    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }
    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }
    c->fd = (ngx_socket_t)-1;
    ngx_free_connection(c);
}

// Not through ac->ev.data: hiredis calls back after the event cleanup has
// already given that nginx connection back.
NgxRedisLink *link_of(const redisAsyncContext *ac) { return static_cast<NgxRedisLink *>(ac->data); }

void connected(const redisAsyncContext *ac, int status) { link_of(ac)->on_connected(status); }
void disconnected(const redisAsyncContext *ac, int) { link_of(ac)->on_disconnected(); }

void replied(redisAsyncContext *ac, void *reply, void *privdata) {
    link_of(ac)->on_reply(static_cast<redisReply *>(reply), static_cast<NgxRedisLink::Reply *>(privdata));
}

void timer_fired(ngx_event_t *ev) {
    auto *dummy = static_cast<ngx_connection_t *>(ev->data);
    static_cast<NgxRedisLink *>(dummy->data)->on_timer(ev);
}

}  // namespace

NgxRedisLink::NgxRedisLink(const ngx_perpetuo_redis_target_t &target, ngx_log_t *log,
                           std::vector<std::vector<std::string>> on_connect)
    : target_(target), log_(log), on_connect_(std::move(on_connect)) {
    dummy_.data = this;
    dummy_.fd = (ngx_socket_t)-1;
    for (ngx_event_t *ev : {&connect_timer_, &reply_timer_, &reconnect_timer_}) {
        ev->handler = timer_fired;
        ev->data = &dummy_;
        ev->log = log_;
        ev->cancelable = 1;  // never what keeps an exiting worker alive
    }
}

NgxRedisLink::~NgxRedisLink() {
    closing_ = true;
    for (ngx_event_t *ev : {&connect_timer_, &reply_timer_, &reconnect_timer_})
        if (ev->timer_set) ngx_del_timer(ev);
    if (ac_ != nullptr) {
        redisAsyncContext *ac = ac_;
        ac_ = nullptr;
        redisAsyncFree(ac);
    }
}

void NgxRedisLink::start() { connect(); }

void NgxRedisLink::arm(ngx_event_t *ev, ngx_msec_t ms) {
    if (ev->timer_set) ngx_del_timer(ev);
    ngx_add_timer(ev, ms);
}

void NgxRedisLink::connect() {
    const perpetuo::RedisUrl &u = target_.url;
    // A numeric address (resolved at configuration time) or a unix socket:
    // hiredis would otherwise resolve names with a blocking getaddrinfo().
    ac_ = u.socket_path.empty() ? redisAsyncConnect(target_.address.c_str(), u.port)
                                : redisAsyncConnectUnix(u.socket_path.c_str());
    if (ac_ == nullptr || ac_->err) {
        ngx_log_error(NGX_LOG_WARN, log_, 0, "perpetuo: redis connect failed: %s",
                      ac_ ? ac_->errstr : "out of memory");
        if (ac_ != nullptr) redisAsyncFree(ac_);
        ac_ = nullptr;
        down("connect failed");
        return;
    }
    ngx_connection_t *c = ngx_get_connection(ac_->c.fd, log_);
    if (c == nullptr) {
        redisAsyncFree(ac_);
        ac_ = nullptr;
        down("no free worker connection");
        return;
    }
    c->data = this;
    ac_->data = this;
    c->read->handler = on_read;
    c->write->handler = on_write;
    c->read->log = log_;
    c->write->log = log_;
    ac_->ev.data = c;
    ac_->ev.addRead = add_read;
    ac_->ev.delRead = del_read;
    ac_->ev.addWrite = add_write;
    ac_->ev.delWrite = del_write;
    ac_->ev.cleanup = cleanup;
    redisAsyncSetConnectCallback(ac_, connected);
    redisAsyncSetDisconnectCallback(ac_, disconnected);
    state_ = State::kConnecting;
    arm(&connect_timer_, target_.connect_timeout);

    // Queued now, written once connected, answered before anything else.
    std::vector<std::vector<std::string>> hello;
    if (!u.password.empty()) {
        if (u.username.empty())
            hello.push_back({"AUTH", u.password});
        else
            hello.push_back({"AUTH", u.username, u.password});
    }
    if (u.db != 0) hello.push_back({"SELECT", std::to_string(u.db)});
    for (const auto &argv : hello)
        command(argv, [this](redisReply *reply) {
            if (reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
                ngx_log_error(NGX_LOG_ERR, log_, 0, "perpetuo: redis refused the connection setup: %s",
                              reply->str);
                down("setup refused");
            }
        });
    for (const auto &argv : on_connect_) command(argv, [](redisReply *) {});
}

bool NgxRedisLink::command(const std::vector<std::string> &argv, Reply reply) {
    if (ac_ == nullptr) return false;
    std::vector<const char *> args;
    std::vector<size_t> lens;
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const std::string &a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }
    auto *callback = new Reply(std::move(reply));
    if (redisAsyncCommandArgv(ac_, replied, callback, static_cast<int>(args.size()), args.data(),
                              lens.data()) != REDIS_OK) {
        delete callback;
        return false;
    }
    if (in_flight_++ == 0) {
        last_progress_ = ngx_current_msec;
        arm(&reply_timer_, target_.reply_timeout);
    }
    return true;
}

void NgxRedisLink::on_reply(redisReply *reply, Reply *callback) {
    if (in_flight_ > 0) --in_flight_;
    last_progress_ = ngx_current_msec;
    if (in_flight_ == 0 && reply_timer_.timer_set) ngx_del_timer(&reply_timer_);
    try {
        (*callback)(reply);
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, log_, 0, "perpetuo: redis reply handler: %s", e.what());
    }
    delete callback;
}

void NgxRedisLink::on_connected(int status) {
    if (connect_timer_.timer_set) ngx_del_timer(&connect_timer_);
    if (status != REDIS_OK) {
        // hiredis frees the context after this callback.
        ngx_log_error(NGX_LOG_WARN, log_, 0, "perpetuo: redis connect failed: %s",
                      ac_ ? ac_->errstr : "");
        ac_ = nullptr;
        down("connect failed");
        return;
    }
    if (backoff_ > 0)
        ngx_log_error(NGX_LOG_NOTICE, log_, 0, "perpetuo: redis connection restored");
    backoff_ = 0;
    state_ = State::kReady;
}

void NgxRedisLink::on_disconnected() {
    // hiredis frees the context after this callback returns.
    if (closing_) return;
    if (ac_ != nullptr && ac_->err)
        ngx_log_error(NGX_LOG_WARN, log_, 0, "perpetuo: redis connection lost: %s", ac_->errstr);
    ac_ = nullptr;
    down("disconnected");
}

void NgxRedisLink::down(const char *why) {
    if (closing_) return;
    if (ac_ != nullptr) {
        // Pending callbacks run with a null reply; the disconnect callback
        // brings us back here with ac_ cleared.
        redisAsyncContext *ac = ac_;
        ac_ = nullptr;
        redisAsyncFree(ac);
    }
    if (connect_timer_.timer_set) ngx_del_timer(&connect_timer_);
    if (reply_timer_.timer_set) ngx_del_timer(&reply_timer_);
    if (state_ == State::kWaiting) return;
    state_ = State::kWaiting;
    if (ngx_terminate) return;
    backoff_ = backoff_ == 0 ? 100 : ngx_min(backoff_ * 2, static_cast<ngx_msec_t>(5000));
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log_, 0, "perpetuo: redis down (%s), retry in %M ms", why,
                   backoff_);
    arm(&reconnect_timer_, backoff_);
}

void NgxRedisLink::on_timer(ngx_event_t *ev) {
    if (ev == &reconnect_timer_) {
        state_ = State::kIdle;
        connect();
    } else if (ev == &connect_timer_) {
        ngx_log_error(NGX_LOG_WARN, log_, 0, "perpetuo: redis connect timed out after %M ms",
                      target_.connect_timeout);
        down("connect timeout");
    } else if (ev == &reply_timer_) {
        ngx_msec_t quiet = ngx_current_msec - last_progress_;
        if (in_flight_ == 0) return;
        if (quiet < target_.reply_timeout) {
            arm(&reply_timer_, target_.reply_timeout - quiet);
            return;
        }
        ngx_log_error(NGX_LOG_WARN, log_, 0,
                      "perpetuo: redis has not answered for %M ms; reconnecting", quiet);
        down("reply timeout");
    }
}

char *ngx_perpetuo_redis_parse(ngx_conf_t *cf, ngx_str_t *value, ngx_perpetuo_redis_target_t *target) {
    std::string error;
    std::optional<perpetuo::RedisUrl> url =
        perpetuo::parse_redis_url(ngx_http_perpetuo_view(*value), &error);
    if (!url) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid redis URL \"%V\": %s", value,
                           error.c_str());
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    target->url = *url;
    if (url->socket_path.empty()) {
        // Resolve here, in the master, once: workers must never block on DNS.
        ngx_url_t u;
        ngx_memzero(&u, sizeof(ngx_url_t));
        std::string hostport = (url->host.find(':') != std::string::npos ? "[" + url->host + "]"
                                                                          : url->host) +
                               ":" + std::to_string(url->port);
        u.url.len = hostport.size();
        u.url.data = static_cast<u_char *>(ngx_pnalloc(cf->pool, hostport.size()));
        if (u.url.data == nullptr) return static_cast<char *>(NGX_CONF_ERROR);
        ngx_memcpy(u.url.data, hostport.data(), hostport.size());
        u.default_port = static_cast<in_port_t>(url->port);
        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "cannot resolve redis host \"%s\": %s",
                               url->host.c_str(), u.err ? u.err : "no address");
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        u_char text[NGX_SOCKADDR_STRLEN];
        size_t len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, text,
                                   NGX_SOCKADDR_STRLEN, 0);
        target->address.assign(reinterpret_cast<char *>(text), len);
    }
    return NGX_CONF_OK;
}

char *ngx_http_perpetuo_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
    auto *pmcf = static_cast<ngx_http_perpetuo_main_conf_t *>(conf);
    if (pmcf->redis != nullptr) return const_cast<char *>("is duplicate");
    ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(cf->pool, sizeof(ngx_http_perpetuo_redis_conf_t));
    if (cln == nullptr) return static_cast<char *>(NGX_CONF_ERROR);
    auto *rc = new (cln->data) ngx_http_perpetuo_redis_conf_t();
    cln->handler = [](void *data) {
        static_cast<ngx_http_perpetuo_redis_conf_t *>(data)->~ngx_http_perpetuo_redis_conf_t();
    };
    pmcf->redis = rc;
    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    char *rv = ngx_perpetuo_redis_parse(cf, &value[1], &rc->target);
    if (rv != NGX_CONF_OK) return rv;
    for (ngx_uint_t i = 2; i < cf->args->nelts; i++) {
        std::string_view arg = ngx_http_perpetuo_view(value[i]);
        std::size_t eq = arg.find('=');
        std::string_view name = arg.substr(0, eq);
        ngx_str_t v;
        v.data = value[i].data + eq + 1;
        v.len = eq == std::string_view::npos ? 0 : value[i].len - eq - 1;
        if (name == "queue" || name == "batch") {
            ngx_int_t n = ngx_atoi(v.data, v.len);
            if (n <= 0) goto invalid;
            (name == "queue" ? rc->queue_records : rc->batch_records) = static_cast<std::size_t>(n);
        } else if (name == "flush" || name == "timeout" || name == "drain") {
            ngx_msec_t ms = ngx_parse_time(&v, 0);
            if (ms == (ngx_msec_t)NGX_ERROR || ms == 0) goto invalid;
            if (name == "flush") rc->flush_interval = ms;
            else if (name == "drain") rc->drain_timeout = ms;
            else rc->target.reply_timeout = rc->target.connect_timeout = ms;
        } else {
            goto invalid;
        }
        continue;
    invalid:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" (expected queue=N, batch=N, flush=TIME, "
                           "timeout=TIME or drain=TIME)",
                           &value[i]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    return NGX_CONF_OK;
}
