// The gateway's configuration as loaded from the operator's YAML file.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "provider_health.hpp"
#include "provider_url.hpp"
#include "strategy_name.hpp"
#include "usage.hpp"

namespace perpetuo {

enum class ProviderKind { kOpenAI, kOpenAICompatible, kAnthropic };

struct Provider {
    std::string name;
    ProviderKind kind = ProviderKind::kOpenAI;
    std::string base_url;
    ProviderUrl url;
    std::string api_key;  // read from api_key_env; empty for keyless local servers
    std::string anthropic_version = "2023-06-01";
    int keepalive = 32;  // idle upstream connections each worker keeps to this provider
    std::int64_t first_byte_timeout_ms = 0;  // 0: only nginx's proxy_read_timeout applies
};

struct Candidate {
    std::size_t provider = 0;  // index into Config::providers
    std::string model;         // the provider's own model id
    Price price;
    int weight = 1;
};

struct Model {
    std::string name;  // what clients send
    std::vector<Candidate> candidates;
};

struct Workspace {
    std::string id;
    std::vector<std::string> api_key_sha256;  // lowercase hex
    std::optional<Strategy> strategy;
};

struct JwtConfig {
    bool enabled = false;
    std::vector<std::string> algorithms;
    std::string hs256_secret;
    std::string public_key_pem;
    std::string issuer;
    std::string audience;
    std::string workspace_claim = "workspaces";
};

// Failover and circuit breaking across a model's candidates.
struct RoutingConfig {
    int max_attempts = 3;  // providers tried for one call, the first included
    BreakerPolicy breaker;
};

// Bounds on what untrusted bytes may cost; each has a safe default.
struct LimitsConfig {
    std::size_t max_json_depth = 64;           // request bodies nested deeper: 400
    std::size_t max_sse_event = 1 << 20;       // larger stream events are passed on unread
    std::size_t max_response_json = 8 << 20;  // larger JSON bodies are passed on, usage estimated
};

struct MetricsConfig {
    bool workspace_label = true;  // off: series per provider/model only (bounded cardinality)
};

struct AnalyticsConfig {
    int retention_days = 90;
    std::int64_t max_log_entries_per_workspace = 1000000;
};

struct Config {
    std::string path;
    std::vector<Provider> providers;
    std::vector<Model> models;
    std::vector<Workspace> workspaces;
    JwtConfig jwt;
    RoutingConfig routing;
    MetricsConfig metrics;
    LimitsConfig limits;
    AnalyticsConfig analytics;

    const Model *find_model(std::string_view name) const;
    // Looks a virtual key up by its SHA-256 (lowercase hex).
    const Workspace *find_workspace_by_key_hash(const std::string &sha256_hex) const;

    // Rebuilds the lookup indexes; the loader calls it once all is read.
    void index();

private:
    std::unordered_map<std::string, std::size_t> model_index_;
    std::unordered_map<std::string, std::size_t> key_index_;
};

// A configuration mistake, located so the operator can fix it without
// guessing: "perpetuo.yaml:12: models.gpt-4o[0].provider: unknown provider".
class ConfigError : public std::runtime_error {
public:
    ConfigError(const std::string &file, int line, const std::string &key,
                const std::string &message);
    const std::string &file() const { return file_; }
    int line() const { return line_; }
    const std::string &key() const { return key_; }

private:
    std::string file_;
    int line_;
    std::string key_;
};

}  // namespace perpetuo
