#include "accounting_queue.hpp"

#include <gtest/gtest.h>

namespace perpetuo {
namespace {

UsageRecord record(const std::string &id, const std::string &workspace = "ws_a") {
    UsageRecord r;
    r.request_id = id;
    r.workspace = workspace;
    r.provider = "openai";
    r.model = "gpt-4o";
    r.usage.uncached_input_tokens = 10;
    r.usage.output_tokens = 5;
    r.cost_micros = 75;
    r.status = 200;
    r.latency_ms = 120;
    r.created_ms = 1767225600000;  // 2026-01-01T00:00:00Z
    return r;
}

TEST(AccountingQueue, DropsAndCountsBeyondTheBound) {
    AccountingQueue q(3, 10, 1);
    EXPECT_TRUE(q.push(record("a")));
    EXPECT_TRUE(q.push(record("b")));
    EXPECT_TRUE(q.push(record("c")));
    EXPECT_FALSE(q.push(record("d")));
    EXPECT_EQ(q.dropped(), 1u);
    EXPECT_EQ(q.backlog(), 3u);
}

TEST(AccountingQueue, UnacknowledgedBatchesCountAgainstTheBound) {
    AccountingQueue q(2, 10, 1);
    q.push(record("a"));
    q.push(record("b"));
    ASSERT_EQ(q.pending({}, 0).size(), 1u);
    EXPECT_FALSE(q.push(record("c")));  // the batch still holds both records
    q.acknowledge(q.pending({}, 0)[0].sequence);
    EXPECT_EQ(q.backlog(), 0u);
    EXPECT_TRUE(q.push(record("c")));
}

TEST(AccountingQueue, OneBatchPerWorkspaceAndBoundedBatchSize) {
    AccountingQueue q(100, 3, 7);
    for (int i = 0; i < 5; ++i) q.push(record("r" + std::to_string(i), i % 2 ? "ws_b" : "ws_a"));
    const auto &batches = q.pending({}, 0);
    ASSERT_EQ(batches.size(), 2u);  // the first 3 records: two of ws_a, one of ws_b
    EXPECT_EQ(batches[0].workspace, "ws_a");
    EXPECT_EQ(batches[0].records, 2u);
    EXPECT_EQ(batches[1].records, 1u);
    EXPECT_EQ(batches[0].argv[3], "pp:{ws_a}");
    EXPECT_EQ(q.backlog(), 5u);
}

TEST(AccountingQueue, AFailedBatchIsResentUnchanged) {
    AccountingQueue q(100, 10, 7);
    q.push(record("a"));
    std::vector<std::string> first = q.pending({}, 1000)[0].argv;
    q.push(record("b"));  // arrives while the batch is unacknowledged
    EXPECT_EQ(q.pending({}, 99999)[0].argv, first);
    q.acknowledge(q.pending({}, 0)[0].sequence);
    const auto &next = q.pending({}, 0);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_NE(next[0].argv[4], first[4]) << "a new batch needs a new id";
}

TEST(AccountingQueue, AbandonCountsEverythingAsDropped) {
    AccountingQueue q(100, 1, 7);
    q.push(record("a"));
    q.push(record("b"));
    q.pending({}, 0);
    EXPECT_EQ(q.abandon(), 2u);
    EXPECT_EQ(q.dropped(), 2u);
    EXPECT_EQ(q.backlog(), 0u);
}

TEST(LogEntryJson, HasTheSeedFieldsWithMicroDollarCost) {
    UsageRecord r = record("req_1");
    r.usage.cache_read_tokens = 4;
    EXPECT_EQ(log_entry_json(r),
              "{\"request_id\":\"req_1\",\"model\":\"gpt-4o\",\"provider\":\"openai\",\"tokens\":19,"
              "\"cost\":0.000075,\"status\":200,\"latency_ms\":120,"
              "\"created_at\":\"2026-01-01T00:00:00Z\",\"input_tokens\":14,\"output_tokens\":5,"
              "\"cached_tokens\":4,\"cache_write_tokens\":0,\"stream\":false,\"estimated\":false}");
}

TEST(UsageRecord, ErrorClassesAndDays) {
    EXPECT_EQ(error_class(200), ErrorClass::kNone);
    EXPECT_EQ(error_class(499), ErrorClass::kNone);
    EXPECT_EQ(error_class(429), ErrorClass::kClient4xx);
    EXPECT_EQ(error_class(502), ErrorClass::kServer5xx);
    EXPECT_EQ(error_class(504), ErrorClass::kTimeout);
    EXPECT_EQ(day_bucket(1767225599999), "20251231");
    EXPECT_EQ(day_bucket(1767225600000), "20260101");
}

}  // namespace
}  // namespace perpetuo
