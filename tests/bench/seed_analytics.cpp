// Fills a Redis with a large workspace through the real write path (the
// accounting script), for measuring the analytics endpoints at scale:
//   perpetuo_seed PORT WORKSPACE RECORDS [DAYS] [PAIRS]
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "accounting_queue.hpp"
#include "accounting_script.hpp"
#include "analytics_script.hpp"

namespace {

bool send(redisContext *c, const std::vector<std::string> &argv) {
    std::vector<const char *> args;
    std::vector<size_t> lens;
    for (const auto &a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }
    return redisAppendCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()) ==
           REDIS_OK;
}

bool drain(redisContext *c, int replies) {
    for (int i = 0; i < replies; ++i) {
        void *reply = nullptr;
        if (redisGetReply(c, &reply) != REDIS_OK) return false;
        auto *r = static_cast<redisReply *>(reply);
        bool ok = r->type != REDIS_REPLY_ERROR;
        if (!ok) std::fprintf(stderr, "redis: %s\n", r->str);
        freeReplyObject(r);
        if (!ok) return false;
    }
    return true;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s PORT WORKSPACE RECORDS [DAYS] [PAIRS]\n", argv[0]);
        return 2;
    }
    int port = std::atoi(argv[1]);
    std::string workspace = argv[2];
    long records = std::atol(argv[3]);
    int days = argc > 4 ? std::atoi(argv[4]) : 90;
    int pairs = argc > 5 ? std::atoi(argv[5]) : 20;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == nullptr || c->err) {
        std::fprintf(stderr, "cannot connect to redis on %d\n", port);
        return 1;
    }
    std::string script(perpetuo::accounting_script()), logs(perpetuo::logs_script());
    send(c, {"SCRIPT", "LOAD", script});
    send(c, {"SCRIPT", "LOAD", logs});
    if (!drain(c, 2)) return 1;

    perpetuo::AccountingSettings settings;
    settings.retention_days = days + 1;
    settings.max_log_entries = records;
    std::mt19937_64 rng(42);
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    std::int64_t span = static_cast<std::int64_t>(days) * 86400000 - 60000;
    const char *statuses[] = {"200", "200", "200", "200", "200", "200", "200", "429", "500", "504"};
    perpetuo::AccountingQueue queue(2000, 1000, rng());
    int in_flight = 0;
    for (long i = 0; i < records; ++i) {
        perpetuo::UsageRecord r;
        r.request_id = "req_seed_" + std::to_string(i);
        r.workspace = workspace;
        int pair = static_cast<int>(i % pairs);
        r.provider = "provider_" + std::to_string(pair % 4);
        r.model = "model_" + std::to_string(pair);
        r.status = std::atoi(statuses[rng() % 10]);
        r.usage.uncached_input_tokens = r.status == 200 ? 100 + rng() % 2000 : 0;
        r.usage.output_tokens = r.status == 200 ? 10 + rng() % 500 : 0;
        r.cost_micros = r.usage.uncached_input_tokens * 3 + r.usage.output_tokens * 15;
        r.latency_ms = 50 + rng() % 3000;
        r.stream = i % 2;
        r.ttfb_ms = r.stream ? 20 + rng() % 800 : -1;
        // Oldest first, so the log is time-ordered as in production.
        r.created_ms = now - span + span * i / records;
        queue.push(std::move(r));
        if (queue.backlog() >= 1000 || i + 1 == records) {
            for (const auto &b : queue.pending(settings, now)) {
                send(c, b.argv);
                ++in_flight;
            }
            std::vector<std::uint64_t> sent;
            for (const auto &b : queue.pending(settings, now)) sent.push_back(b.sequence);
            for (auto s : sent) queue.acknowledge(s);
            if (in_flight >= 16) {
                if (!drain(c, in_flight)) return 1;
                in_flight = 0;
            }
        }
    }
    if (!drain(c, in_flight)) return 1;
    redisFree(c);
    std::printf("seeded %ld records over %d days for %d provider/model pairs in %s\n", records, days,
                pairs, workspace.c_str());
    return 0;
}
