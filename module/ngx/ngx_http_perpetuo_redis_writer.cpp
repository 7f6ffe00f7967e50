// Accounting into Redis: the log phase queues one record per call (no Redis
// work on the request path); a short timer sends what is queued as
// pipelined, idempotent batches; records wait, bounded, while Redis is away,
// and an exiting worker drains its queue before it goes.
#include "ngx_perpetuo.hpp"

#include <memory>

#include "accounting_queue.hpp"
#include "accounting_script.hpp"
#include "analytics_script.hpp"
#include "ngx_perpetuo_redis_link.hpp"

namespace {

struct Writer {
    ngx_http_perpetuo_redis_conf_t conf;
    perpetuo::AccountingSettings settings;
    std::unique_ptr<NgxRedisLink> link;
    perpetuo::AccountingQueue queue;
    ngx_event_t flush{};
    ngx_connection_t dummy{};
    std::size_t batches_in_flight = 0;
    ngx_msec_t retry_at = 0;
    ngx_msec_t exit_deadline = 0;
    std::uint64_t drops_logged = 0;
    std::uint64_t drops_counted = 0;
    time_t drops_logged_at = 0;
    ngx_log_t *log;

    Writer(const ngx_http_perpetuo_redis_conf_t &c, const perpetuo::AccountingSettings &s,
           std::uint64_t tag, ngx_log_t *l)
        : conf(c), settings(s), queue(c.queue_records, c.batch_records, tag), log(l) {}
};

Writer *writer;

std::int64_t now_ms() {
    ngx_time_t *tp = ngx_timeofday();
    return static_cast<std::int64_t>(tp->sec) * 1000 + tp->msec;
}

void count_drops() {
    std::uint64_t dropped = writer->queue.dropped();
    if (dropped > writer->drops_counted) {
        ngx_http_perpetuo_zone_count_dropped(dropped - writer->drops_counted);
        writer->drops_counted = dropped;
    }
    // Loud, but once per interval, not once per record.
    if (dropped > writer->drops_logged && ngx_time() - writer->drops_logged_at >= 10) {
        ngx_log_error(NGX_LOG_WARN, writer->log, 0,
                      "perpetuo: %uL accounting records dropped (queue full at %uz records; "
                      "redis unreachable or too slow)",
                      dropped - writer->drops_logged, writer->conf.queue_records);
        writer->drops_logged = dropped;
        writer->drops_logged_at = ngx_time();
    }
}

void send_pending();

void on_batch_reply(std::uint64_t sequence, redisReply *reply) {
    if (writer == nullptr) return;  // the worker is exiting and freeing the link
    --writer->batches_in_flight;
    if (reply == nullptr) return;  // link lost: the batch stays pending, re-sent as it is
    if (reply->type == REDIS_REPLY_INTEGER) {
        writer->queue.acknowledge(sequence);
        // Under load, keep Redis busy at its own pace: the next batch goes
        // as soon as the last one is in, not at the next tick.
        if (writer->batches_in_flight == 0) send_pending();
        return;
    }
    std::string_view error = reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply";
    if (error.rfind("NOSCRIPT", 0) == 0) {
        // Redis restarted or its scripts were flushed: load it and go again.
        writer->link->command({"SCRIPT", "LOAD", std::string(perpetuo::accounting_script())},
                              [](redisReply *) {});
        return;
    }
    ngx_log_error(NGX_LOG_ERR, writer->log, 0, "perpetuo: redis refused an accounting batch: %*s",
                  error.size(), error.data());
    writer->retry_at = ngx_current_msec + 1000;
}

void send_pending() {
    if (!writer->link->ready() || writer->batches_in_flight > 0) return;
    if (writer->retry_at && ngx_current_msec < writer->retry_at) return;
    writer->retry_at = 0;
    for (const perpetuo::WorkspaceBatch &b : writer->queue.pending(writer->settings, now_ms())) {
        std::uint64_t sequence = b.sequence;
        if (!writer->link->command(b.argv, [sequence](redisReply *r) { on_batch_reply(sequence, r); }))
            break;
        ++writer->batches_in_flight;
    }
}

void flush_handler(ngx_event_t *ev) {
    try {
        send_pending();
        count_drops();
        ngx_http_perpetuo_metrics_redis(writer->queue.backlog(), writer->link->ready());
        if (ngx_exiting && writer->queue.backlog() > 0) {
            if (writer->exit_deadline == 0)
                writer->exit_deadline = ngx_current_msec + writer->conf.drain_timeout;
            if (ngx_current_msec >= writer->exit_deadline) {
                std::size_t lost = writer->queue.abandon();
                ngx_log_error(NGX_LOG_ERR, writer->log, 0,
                              "perpetuo: worker exiting with %uz accounting records that redis "
                              "did not take within %M ms; counted as dropped",
                              lost, writer->conf.drain_timeout);
                count_drops();
            }
        }
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, writer->log, 0, "perpetuo: accounting flush: %s", e.what());
    }
    // Queued records keep an exiting worker alive until they are written
    // (or the drain deadline passes); an empty queue never does.
    ev->cancelable = writer->queue.backlog() == 0;
    ngx_add_timer(ev, writer->conf.flush_interval);
}

}  // namespace

ngx_int_t ngx_http_perpetuo_writer_init(ngx_cycle_t *cycle, const ngx_http_perpetuo_redis_conf_t &conf,
                                        const perpetuo::AccountingSettings &settings,
                                        std::uint64_t worker_tag) {
    writer = new Writer(conf, settings, worker_tag, cycle->log);
    writer->link = std::make_unique<NgxRedisLink>(
        conf.target, cycle->log,
        std::vector<std::vector<std::string>>{
            {"SCRIPT", "LOAD", std::string(perpetuo::accounting_script())},
            {"SCRIPT", "LOAD", std::string(perpetuo::logs_script())}});
    writer->dummy.fd = (ngx_socket_t)-1;
    writer->flush.handler = flush_handler;
    writer->flush.data = &writer->dummy;
    writer->flush.log = cycle->log;
    writer->flush.cancelable = 1;
    writer->link->start();
    ngx_add_timer(&writer->flush, conf.flush_interval);
    return NGX_OK;
}

void ngx_http_perpetuo_writer_push(perpetuo::UsageRecord record) {
    if (writer == nullptr) return;
    if (writer->queue.push(std::move(record))) writer->flush.cancelable = 0;
}

void ngx_http_perpetuo_writer_exit(ngx_cycle_t *cycle) {
    if (writer == nullptr) return;
    if (writer->queue.backlog() > 0) {
        std::size_t lost = writer->queue.abandon();
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "perpetuo: %uz accounting records were not written to redis before exit", lost);
        count_drops();
    }
    std::unique_ptr<Writer> gone(writer);
    writer = nullptr;
}

NgxRedisLink *ngx_http_perpetuo_redis_link() { return writer ? writer->link.get() : nullptr; }
