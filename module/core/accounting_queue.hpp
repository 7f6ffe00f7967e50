// A worker's accounting records on their way to Redis: a bounded queue of
// records, and the batches formed from it that Redis has not yet
// acknowledged. A batch never changes once formed, so re-sending it after a
// lost reply is recognised by its id and cannot count twice.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "usage_record.hpp"

namespace perpetuo {

struct AccountingSettings {
    int retention_days = 90;
    std::int64_t max_log_entries = 1000000;
};

// One EVALSHA of the accounting script for one workspace.
struct WorkspaceBatch {
    std::uint64_t sequence = 0;  // identifies the batch within this worker
    std::string workspace;
    std::size_t records = 0;
    std::vector<std::string> argv;  // the complete command
};

class AccountingQueue {
public:
    // `worker_tag` makes batch ids unique across workers and nodes (random).
    AccountingQueue(std::size_t max_records, std::size_t batch_records, std::uint64_t worker_tag);

    // False when the bound is reached: the record is dropped and counted.
    bool push(UsageRecord record);

    // Batches awaiting acknowledgement; forms new ones from queued records
    // only when none are left, so a failed batch is re-sent exactly as it was.
    const std::vector<WorkspaceBatch> &pending(const AccountingSettings &settings,
                                               std::int64_t now_ms);
    void acknowledge(std::uint64_t sequence);

    // Records queued or in unacknowledged batches.
    std::size_t backlog() const { return queued_records_ + pending_records_; }
    std::uint64_t dropped() const { return dropped_; }
    // Gives up on everything not yet written (worker exit after the drain
    // deadline); returns how many records that was, now counted as dropped.
    std::size_t abandon();

private:
    void form_batches(const AccountingSettings &settings, std::int64_t now_ms);

    std::size_t max_records_;
    std::size_t batch_records_;
    std::uint64_t worker_tag_;
    std::uint64_t next_sequence_ = 1;
    std::deque<UsageRecord> queue_;
    std::size_t queued_records_ = 0;
    std::vector<WorkspaceBatch> pending_;
    std::size_t pending_records_ = 0;
    std::uint64_t dropped_ = 0;
};

// The JSON a log entry is stored (and later served) as.
std::string log_entry_json(const UsageRecord &record);

// The Redis key prefix of a workspace: "pp:{ws_123}".
std::string workspace_prefix(const std::string &workspace);

}  // namespace perpetuo
