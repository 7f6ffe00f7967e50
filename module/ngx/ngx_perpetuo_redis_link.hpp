// A worker's asynchronous connection to Redis: hiredis driven by nginx's
// event loop, with nginx timers for every timeout (hiredis 0.14 has none)
// and reconnection with capped backoff. Never blocks the worker.
#pragma once

#include "ngx_perpetuo.hpp"

#include <functional>
#include <string>
#include <vector>

extern "C" {
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
}

#include "accounting_queue.hpp"
#include "redis_url.hpp"

struct ngx_perpetuo_redis_target_t {
    perpetuo::RedisUrl url;
    std::string address;  // numeric IP resolved at configuration time
    ngx_msec_t connect_timeout = 2000;
    ngx_msec_t reply_timeout = 3000;
};

class NgxRedisLink {
public:
    // `reply` is called with the reply, or null when the link went down
    // before it came; it must not throw.
    using Reply = std::function<void(redisReply *reply)>;

    NgxRedisLink(const ngx_perpetuo_redis_target_t &target, ngx_log_t *log,
                 std::vector<std::vector<std::string>> on_connect);
    ~NgxRedisLink();

    void start();
    bool ready() const { return state_ == State::kReady; }
    std::size_t in_flight() const { return in_flight_; }
    bool command(const std::vector<std::string> &argv, Reply reply);

    // Called by the hiredis adapter and timers; not for other users.
    void on_connected(int status);
    void on_disconnected();
    void on_reply(redisReply *reply, Reply *callback);
    void on_timer(ngx_event_t *ev);
    redisAsyncContext *context() const { return ac_; }

private:
    enum class State { kIdle, kConnecting, kReady, kWaiting };
    void connect();
    void down(const char *why);
    void arm(ngx_event_t *ev, ngx_msec_t ms);

    ngx_perpetuo_redis_target_t target_;
    ngx_log_t *log_;
    std::vector<std::vector<std::string>> on_connect_;  // SCRIPT LOADs, first on every connection
    redisAsyncContext *ac_ = nullptr;
    State state_ = State::kIdle;
    bool closing_ = false;  // being destroyed: callbacks must not re-arm anything
    std::size_t in_flight_ = 0;
    ngx_msec_t backoff_ = 0;
    ngx_msec_t last_progress_ = 0;
    ngx_event_t connect_timer_{};
    ngx_event_t reply_timer_{};
    ngx_event_t reconnect_timer_{};
    ngx_connection_t dummy_{};
};

// Resolves and validates perpetuo_redis at configuration time.
char *ngx_perpetuo_redis_parse(ngx_conf_t *cf, ngx_str_t *url, ngx_perpetuo_redis_target_t *target);

// perpetuo_redis URL [queue=N] [batch=N] [flush=TIME] [timeout=TIME] [drain=TIME]
struct ngx_http_perpetuo_redis_conf_t {
    ngx_perpetuo_redis_target_t target;
    std::size_t queue_records = 100000;  // per worker, queued plus unacknowledged
    std::size_t batch_records = 250;  // small batches: short pauses in the event loop
    ngx_msec_t flush_interval = 100;
    ngx_msec_t drain_timeout = 5000;  // how long an exiting worker waits for redis
};

char *ngx_http_perpetuo_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_perpetuo_writer_init(ngx_cycle_t *cycle, const ngx_http_perpetuo_redis_conf_t &conf,
                                        const perpetuo::AccountingSettings &settings,
                                        std::uint64_t worker_tag);
void ngx_http_perpetuo_writer_push(perpetuo::UsageRecord record);
void ngx_http_perpetuo_writer_exit(ngx_cycle_t *cycle);

// The worker's Redis link (shared by accounting and analytics), or null
// without perpetuo_redis.
NgxRedisLink *ngx_http_perpetuo_redis_link();
