#include <gtest/gtest.h>

#include "analytics_report.hpp"
#include "analytics_request.hpp"
#include "iso_time.hpp"
#include "query_string.hpp"

namespace perpetuo {
namespace {

std::optional<AnalyticsRequest> parse(const char *path, const char *query,
                                      AnalyticsError *error) {
    return parse_analytics_request(path, query, 90, error);
}

TEST(AnalyticsRequest, EndpointsUnderAnyPrefixWithTheirDefaults) {
    AnalyticsError e;
    auto usage = parse("/workspaces/ws_1/usage", "", &e);
    ASSERT_TRUE(usage);
    EXPECT_EQ(usage->endpoint, AnalyticsEndpoint::kUsage);
    EXPECT_EQ(usage->days, 90);
    auto by = parse("/api/workspaces/ws_1/usage/by-provider/", "days=7", &e);
    ASSERT_TRUE(by);
    EXPECT_EQ(by->endpoint, AnalyticsEndpoint::kUsageByProvider);
    EXPECT_EQ(by->days, 7);
    EXPECT_EQ(parse("/workspaces/ws_1/usage/by-provider", "", &e)->days, 30);
    EXPECT_EQ(parse("/workspaces/ws_1/performance/latency", "days=365", &e)->days, 90)
        << "days beyond retention read what is retained";
    auto logs = parse("/workspaces/ws_1/logs",
                      "page=2&limit=5&provider=openai&model=gpt%2D4o&status=429"
                      "&start_date=2026-01-01&end_date=2026-01-31&_=123",
                      &e);
    ASSERT_TRUE(logs);
    EXPECT_EQ(logs->page, 2);
    EXPECT_EQ(logs->limit, 5);
    EXPECT_EQ(logs->provider, "openai");
    EXPECT_EQ(logs->model, "gpt-4o");
    EXPECT_EQ(logs->status, 429);
    EXPECT_EQ(logs->start_ms, 1767225600000);
    EXPECT_EQ(logs->end_ms, 1769817600000 + 86400000 - 1) << "a date alone ends with its day";
}

TEST(AnalyticsRequest, RefusalsSayWhatIsWrong) {
    struct Case {
        const char *path, *query;
        int status;
    };
    for (const Case &c : {Case{"/workspaces/ws%7B/usage", "", 400},
                          Case{"/workspaces/ws_1/unknown", "", 404},
                          Case{"/workspaces/", "", 404},
                          Case{"/workspaces/ws_1/usage", "days=0", 400},
                          Case{"/workspaces/ws_1/logs", "limit=1001", 400},
                          Case{"/workspaces/ws_1/logs", "page=-1", 400},
                          Case{"/workspaces/ws_1/logs", "status=600", 400},
                          Case{"/workspaces/ws_1/logs", "start_date=2026-13-01", 400},
                          Case{"/workspaces/ws_1/logs", "end_date=2026-02-29", 400},
                          Case{"/workspaces/ws_1/logs", "provider=%zz", 400},
                          Case{"/workspaces/ws_1/logs", "start_date=2026-02-02&end_date=2026-02-01",
                               400}}) {
        AnalyticsError e;
        EXPECT_FALSE(parse(c.path, c.query, &e)) << c.path << "?" << c.query;
        EXPECT_EQ(e.status, c.status) << c.path << "?" << c.query;
        EXPECT_FALSE(e.message.empty());
    }
}

TEST(Iso8601, DatesAndTimestamps) {
    EXPECT_EQ(parse_iso8601("2026-01-28")->unix_ms, 1769558400000);
    EXPECT_TRUE(parse_iso8601("2026-01-28")->date_only);
    EXPECT_EQ(parse_iso8601("2026-01-28T14:00:00Z")->unix_ms, 1769608800000);
    EXPECT_EQ(parse_iso8601("2026-01-28T16:00:00+02:00")->unix_ms, 1769608800000);
    EXPECT_EQ(parse_iso8601("2026-01-28T14:00:00.250Z")->unix_ms, 1769608800250);
    EXPECT_EQ(parse_iso8601("2024-02-29")->unix_ms, 1709164800000);
    for (const char *bad : {"2026-1-28", "2026-01-28T25:00:00Z", "2026-01-28T14:00:00+2",
                            "2026-01-28X", "20260128", "", "2023-02-29"})
        EXPECT_FALSE(parse_iso8601(bad)) << bad;
}

TEST(QueryString, DecodesAndRefusesMalformedEscapes) {
    auto q = parse_query_string("a=1&b=x%20y+z&&c&d=");
    ASSERT_TRUE(q);
    ASSERT_EQ(q->size(), 4u);
    EXPECT_EQ((*q)[1].second, "x y z");
    EXPECT_EQ((*q)[2].first, "c");
    EXPECT_FALSE(parse_query_string("a=%4"));
    EXPECT_FALSE(parse_query_string("a=%00"));
}

TEST(HistogramPercentile, InterpolatesWithinTheBucket) {
    std::vector<std::int64_t> counts(15);
    EXPECT_EQ(histogram_percentile(counts, 0.5), 0);
    counts[2] = 100;  // all between 50 and 100 ms
    EXPECT_DOUBLE_EQ(histogram_percentile(counts, 0.5), 75);
    EXPECT_DOUBLE_EQ(histogram_percentile(counts, 1.0), 100);
    counts[14] = 100;  // beyond the last bound
    EXPECT_DOUBLE_EQ(histogram_percentile(counts, 0.99), 120000);
}

TEST(AnalyticsReport, SeedShapesWithExtrasBeside) {
    DimensionTotals p;
    for (auto [f, v] : {std::pair<const char *, const char *>{"openai:tok", "100"},
                        {"openai:cost", "40000000"},
                        {"openai:req", "4"},
                        {"openai:e5", "1"},
                        {"openai:lat", "1200"},
                        {"anthropic:tok", "23"},
                        {"anthropic:cost", "35"},
                        {"anthropic:req", "1"},
                        {"bad", "1"},
                        {"openai:x", "notanumber"}})
        p.add(f, v);
    EXPECT_EQ(render_usage(p, 7),
              "{\"total_tokens\":123,\"total_cost\":40.000035,\"by_provider\":{"
              "\"anthropic\":{\"tokens\":23,\"cost\":0.000035,\"requests\":1,\"input_tokens\":0,"
              "\"output_tokens\":0,\"cached_tokens\":0},"
              "\"openai\":{\"tokens\":100,\"cost\":40,\"requests\":4,\"input_tokens\":0,"
              "\"output_tokens\":0,\"cached_tokens\":0}},\"total_requests\":5,\"days\":7}");
    std::string errors = render_errors(p);
    EXPECT_NE(errors.find("\"openai\":{\"error_rate\":0.25,"), std::string::npos) << errors;
    std::string latency = render_latency(p, DimensionTotals());
    EXPECT_NE(latency.find("\"openai\":{\"average_latency_ms\":300,"), std::string::npos)
        << latency;
    EXPECT_EQ(render_logs({"{\"a\":1}", "{\"a\":2}", "{\"a\":3}"}, 1, 2),
              "{\"logs\":[{\"a\":1},{\"a\":2}],\"page\":1,\"limit\":2,\"has_more\":true}");
}

}  // namespace
}  // namespace perpetuo
