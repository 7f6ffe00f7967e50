// The accounting script against a real redis-server this test starts on a
// free loopback port: a batch re-sent after a lost reply must not count
// twice, and the request log keeps its cap and its indexes in step.
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "accounting_queue.hpp"
#include "accounting_script.hpp"

namespace perpetuo {
namespace {

class RedisServer : public ::testing::Test {
protected:
    void SetUp() override {
        for (int attempt = 0; attempt < 20 && ctx_ == nullptr; ++attempt) {
            port_ = 20000 + static_cast<int>((getpid() * 7 + attempt * 131) % 30000);
            pid_ = fork();
            if (pid_ == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                dup2(null, 2);
                std::string port = std::to_string(port_);
                execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind",
                       "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning",
                       static_cast<char *>(nullptr));
                _exit(127);
            }
            for (int i = 0; i < 100 && ctx_ == nullptr; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                redisContext *c = redisConnect("127.0.0.1", port_);
                if (c != nullptr && c->err == 0) ctx_ = c;
                else if (c != nullptr) redisFree(c);
                int status;
                if (waitpid(pid_, &status, WNOHANG) == pid_) break;  // port taken: try another
            }
        }
        ASSERT_NE(ctx_, nullptr) << "could not start redis-server";
        Reply(redisCommand(ctx_, "SCRIPT LOAD %b", accounting_script().data(),
                           accounting_script().size()));
    }

    void TearDown() override {
        if (ctx_ != nullptr) redisFree(ctx_);
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            waitpid(pid_, nullptr, 0);
        }
    }

    struct Reply {
        explicit Reply(void *r) : reply(static_cast<redisReply *>(r)) {}
        ~Reply() { freeReplyObject(reply); }
        redisReply *reply;
    };

    long long run(const std::vector<std::string> &argv) {
        std::vector<const char *> args;
        std::vector<size_t> lens;
        for (const auto &a : argv) {
            args.push_back(a.data());
            lens.push_back(a.size());
        }
        Reply r(redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data()));
        EXPECT_EQ(r.reply->type, REDIS_REPLY_INTEGER) << (r.reply->str ? r.reply->str : "");
        return r.reply->integer;
    }

    long long integer(const char *format, const char *key, const char *field = nullptr) {
        Reply r(field ? redisCommand(ctx_, format, key, field) : redisCommand(ctx_, format, key));
        if (r.reply->type == REDIS_REPLY_INTEGER) return r.reply->integer;
        if (r.reply->type == REDIS_REPLY_STRING) return std::stoll(r.reply->str);
        return 0;
    }

    static UsageRecord record(int i) {
        UsageRecord r;
        r.request_id = "req_" + std::to_string(i);
        r.workspace = "ws_a";
        r.provider = i % 2 ? "openai" : "anthropic";
        r.model = "m";
        r.usage.uncached_input_tokens = 10 + i;
        r.usage.output_tokens = 1;
        r.cost_micros = 3;
        r.status = i % 5 == 0 ? 500 : 200;
        r.latency_ms = 40;
        r.created_ms = 1767225600000 + i;
        return r;
    }

    redisContext *ctx_ = nullptr;
    pid_t pid_ = -1;
    int port_ = 0;
};

TEST_F(RedisServer, AResentBatchCountsOnce) {
    AccountingQueue q(100, 100, 42);
    for (int i = 0; i < 4; ++i) q.push(record(i));
    AccountingSettings settings;
    std::int64_t now = 1767225600000 + 1000;
    std::vector<std::string> argv = q.pending(settings, now)[0].argv;
    EXPECT_EQ(run(argv), 1);
    EXPECT_EQ(run(argv), 0) << "the same batch again is a no-op";
    const char *models = "pp:{ws_a}:d:20260101:m", *providers = "pp:{ws_a}:d:20260101:p";
    EXPECT_EQ(integer("HGET %s %s", models, "m:req"), 4);
    EXPECT_EQ(integer("HGET %s %s", models, "m:in"), 10 + 11 + 12 + 13);
    EXPECT_EQ(integer("HGET %s %s", providers, "openai:req"), 2);
    EXPECT_EQ(integer("HGET %s %s", providers, "anthropic:e5"), 1);
    EXPECT_EQ(integer("HGET %s %s", "pp:{ws_a}:d:20260101:ph", "openai:lb1"), 2);
    EXPECT_EQ(integer("ZCARD %s", "pp:{ws_a}:log"), 4);
    EXPECT_EQ(integer("ZCARD %s", "pp:{ws_a}:log:p:openai"), 2);
    EXPECT_EQ(integer("ZCARD %s", "pp:{ws_a}:log:s:500"), 1);
    EXPECT_GT(integer("TTL %s", providers), 0);
}

TEST_F(RedisServer, TheLogKeepsItsCapAndItsIndexesInStep) {
    AccountingQueue q(100, 100, 42);
    AccountingSettings settings;
    settings.max_log_entries = 5;
    std::int64_t now = 1767225600000 + 1000;
    for (int i = 0; i < 8; ++i) {
        q.push(record(i));
        const WorkspaceBatch &b = q.pending(settings, now)[0];
        run(b.argv);
        q.acknowledge(b.sequence);
    }
    EXPECT_EQ(integer("ZCARD %s", "pp:{ws_a}:log"), 5);
    EXPECT_EQ(integer("HLEN %s", "pp:{ws_a}:logd"), 5);
    // The oldest three (req_0..2) are gone from every index too.
    EXPECT_EQ(integer("ZCARD %s", "pp:{ws_a}:log:p:openai") +
                  integer("ZCARD %s", "pp:{ws_a}:log:p:anthropic"),
              5);
    EXPECT_EQ(integer("ZSCORE %s %s", "pp:{ws_a}:log", "req_2"), 0);
    // Counters are not capped: they are the totals.
    EXPECT_EQ(integer("HGET %s %s", "pp:{ws_a}:d:20260101:m", "m:req"), 8);
}

TEST_F(RedisServer, EntriesOlderThanRetentionAreTrimmed) {
    AccountingQueue q(100, 100, 42);
    AccountingSettings settings;
    settings.retention_days = 1;
    q.push(record(0));
    const WorkspaceBatch &b = q.pending(settings, 1767225600000)[0];
    run(b.argv);
    q.acknowledge(b.sequence);
    UsageRecord late = record(1);
    late.created_ms += 2 * 86400000LL;
    q.push(late);
    run(q.pending(settings, late.created_ms)[0].argv);
    EXPECT_EQ(integer("ZCARD %s", "pp:{ws_a}:log"), 1);
    EXPECT_EQ(integer("HLEN %s", "pp:{ws_a}:logd"), 1);
}

}  // namespace
}  // namespace perpetuo
