#include "accounting_queue.hpp"

#include <algorithm>
#include <map>

#include "accounting_script.hpp"
#include "json_text.hpp"
#include "latency_buckets.hpp"

namespace perpetuo {

namespace {

using Counters = std::map<std::pair<std::string, std::string>, std::int64_t>;

// Counters go to per-day hashes split by what reads them: `:p` and `:m`
// hold the per-provider and per-model totals (usage, errors), `:ph` and `:mh`
// their latency histograms (only the latency endpoint reads those), so each
// query reads small hashes. Fields are "<name>:<metric>".
void count_dimension(Counters &c, const std::string &day, const char *kind, const std::string &name,
                     const UsageRecord &r) {
    std::string totals = day + ":" + kind, histograms = totals + "h";
    auto add = [&](const char *metric, std::int64_t n) {
        if (n != 0) c[{totals, name + metric}] += n;
    };
    const Usage &u = r.usage;
    add(":req", 1);
    add(":tok", u.total_tokens());
    add(":in", u.uncached_input_tokens);
    add(":cr", u.cache_read_tokens);
    add(":cw", u.cache_write_tokens);
    add(":out", u.output_tokens);
    add(":cost", r.cost_micros);
    add(":lat", r.latency_ms);
    add(":est", u.estimated ? 1 : 0);
    switch (error_class(r.status)) {
        case ErrorClass::kClient4xx:
            add(":e4", 1);
            break;
        case ErrorClass::kServer5xx:
            add(":e5", 1);
            break;
        case ErrorClass::kTimeout:
            add(":et", 1);
            break;
        case ErrorClass::kNone:
            break;
    }
    if (r.status == 499) add(":cc", 1);
    c[{histograms, name + ":lb" + std::to_string(latency_bucket(r.latency_ms))}] += 1;
    if (r.stream && r.ttfb_ms >= 0) {
        add(":sn", 1);
        add(":ttft", r.ttfb_ms);
        c[{histograms, name + ":tb" + std::to_string(latency_bucket(r.ttfb_ms))}] += 1;
    }
}

std::string hex64(std::uint64_t v) {
    static const char kHex[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kHex[v & 0xf];
    return out;
}

}  // namespace

std::string workspace_prefix(const std::string &workspace) { return "pp:{" + workspace + "}"; }

std::string log_entry_json(const UsageRecord &r) {
    std::string j = "{\"request_id\":";
    append_json_string(j, r.request_id);
    j += ",\"model\":";
    append_json_string(j, r.model);
    j += ",\"provider\":";
    append_json_string(j, r.provider);
    j += ",\"tokens\":" + std::to_string(r.usage.total_tokens());
    j += ",\"cost\":" + format_micros(r.cost_micros);
    j += ",\"status\":" + std::to_string(r.status);
    j += ",\"latency_ms\":" + std::to_string(r.latency_ms);
    j += ",\"created_at\":\"" + rfc3339_utc(r.created_ms) + "\"";
    j += ",\"input_tokens\":" + std::to_string(r.usage.input_tokens());
    j += ",\"output_tokens\":" + std::to_string(r.usage.output_tokens);
    j += ",\"cached_tokens\":" + std::to_string(r.usage.cache_read_tokens);
    j += ",\"cache_write_tokens\":" + std::to_string(r.usage.cache_write_tokens);
    if (r.ttfb_ms >= 0) j += ",\"ttfb_ms\":" + std::to_string(r.ttfb_ms);
    j += std::string(",\"stream\":") + (r.stream ? "true" : "false");
    j += std::string(",\"estimated\":") + (r.usage.estimated ? "true" : "false");
    j += "}";
    return j;
}

AccountingQueue::AccountingQueue(std::size_t max_records, std::size_t batch_records,
                                 std::uint64_t worker_tag)
    : max_records_(max_records), batch_records_(std::max<std::size_t>(batch_records, 1)),
      worker_tag_(worker_tag) {}

bool AccountingQueue::push(UsageRecord record) {
    if (backlog() >= max_records_) {
        ++dropped_;
        return false;
    }
    queue_.push_back(std::move(record));
    ++queued_records_;
    return true;
}

const std::vector<WorkspaceBatch> &AccountingQueue::pending(const AccountingSettings &settings,
                                                            std::int64_t now_ms) {
    if (pending_.empty() && !queue_.empty()) form_batches(settings, now_ms);
    return pending_;
}

void AccountingQueue::form_batches(const AccountingSettings &settings, std::int64_t now_ms) {
    struct Forming {
        Counters counters;
        std::vector<const UsageRecord *> records;
    };
    std::size_t take = std::min(batch_records_, queue_.size());
    std::map<std::string, Forming> by_workspace;
    for (std::size_t i = 0; i < take; ++i) {
        const UsageRecord &r = queue_[i];
        Forming &f = by_workspace[r.workspace];
        std::string day = day_bucket(r.created_ms);
        count_dimension(f.counters, day, "p", r.provider, r);
        count_dimension(f.counters, day, "m", r.model, r);
        f.records.push_back(&r);
    }
    std::int64_t ttl = static_cast<std::int64_t>(settings.retention_days) * 86400;
    for (auto &[workspace, f] : by_workspace) {
        WorkspaceBatch b;
        b.sequence = next_sequence_++;
        b.workspace = workspace;
        b.records = f.records.size();
        std::vector<std::string> &a = b.argv;
        a.reserve(12 + f.counters.size() * 3 + f.records.size() * 6);
        a.insert(a.end(), {"EVALSHA", accounting_script_sha1(), "1", workspace_prefix(workspace),
                           hex64(worker_tag_) + hex64(b.sequence), std::to_string(now_ms / 3600000),
                           std::to_string(ttl), std::to_string(settings.max_log_entries),
                           std::to_string(now_ms), std::to_string(f.counters.size())});
        for (const auto &[key, n] : f.counters) {
            a.push_back(key.first);
            a.push_back(key.second);
            a.push_back(std::to_string(n));
        }
        for (const UsageRecord *r : f.records) {
            a.push_back(r->request_id);
            a.push_back(std::to_string(r->created_ms));
            a.push_back(r->provider);
            a.push_back(r->model);
            a.push_back(std::to_string(r->status));
            a.push_back(log_entry_json(*r));
        }
        pending_records_ += b.records;
        pending_.push_back(std::move(b));
    }
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
    queued_records_ -= take;
}

void AccountingQueue::acknowledge(std::uint64_t sequence) {
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const WorkspaceBatch &b) { return b.sequence == sequence; });
    if (it == pending_.end()) return;
    pending_records_ -= it->records;
    pending_.erase(it);
}

std::size_t AccountingQueue::abandon() {
    std::size_t lost = backlog();
    dropped_ += lost;
    queue_.clear();
    pending_.clear();
    queued_records_ = pending_records_ = 0;
    return lost;
}

}  // namespace perpetuo
