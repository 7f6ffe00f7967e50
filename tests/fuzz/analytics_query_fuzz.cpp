// The analytics request surface on arbitrary bytes: the path and query
// string a client sends (query-string decoding, ISO 8601 dates, bounds), and
// the Redis hash fields the reports decode and render.
#include "analytics_report.hpp"
#include "analytics_request.hpp"
#include "fuzz_support.hpp"
#include "iso_time.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using perpetuo::fuzz::check;
    std::string_view text = perpetuo::fuzz::as_text(data, size);
    std::size_t split = text.find('?');
    std::string_view path = text.substr(0, split);
    std::string_view query = split == std::string_view::npos ? "" : text.substr(split + 1);

    perpetuo::AnalyticsError error;
    auto request = perpetuo::parse_analytics_request(path, query, 90, &error);
    if (!request) {
        check(error.status == 400 || error.status == 404, "a refusal is a 400 or a 404");
        check(!error.message.empty(), "a refusal says why");
    } else {
        check(perpetuo::valid_workspace_id(request->workspace), "only valid workspace ids pass");
        check(request->days >= 1 && request->days <= 90, "days within retention");
        check(request->limit >= 1 && request->limit <= 1000, "limit within bounds");
        check(request->page >= 1, "pages start at 1");
        check(request->start_ms <= request->end_ms, "a time range is ordered");
    }
    perpetuo::parse_iso8601(text);

    // Redis replies: "<name>:<metric>" fields with decimal values.
    perpetuo::DimensionTotals totals;
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = text.find('\n', at);
        std::string_view line = text.substr(at, end == std::string_view::npos ? end : end - at);
        std::size_t eq = line.find('=');
        if (eq != std::string_view::npos) totals.add(line.substr(0, eq), line.substr(eq + 1));
        if (end == std::string_view::npos) break;
        at = end + 1;
    }
    check(!perpetuo::render_usage(totals, 1).empty(), "usage renders");
    check(!perpetuo::render_latency(totals, totals).empty(), "latency renders");
    check(!perpetuo::render_errors(totals).empty(), "errors render");
    return 0;
}
