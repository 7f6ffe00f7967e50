#include "config_yaml.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <sstream>

namespace perpetuo {

namespace {

bool is_identifier(const std::string &s, std::size_t max_len) {
    if (s.empty() || s.size() > max_len) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

bool is_model_name(const std::string &s) {
    if (s.empty() || s.size() > 128) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("._-:/@+").find(c) != std::string_view::npos;
    });
}

bool is_sha256_hex(const std::string &s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// Walks the YAML tree keeping the dotted key path so every error can say
// exactly which key is at fault.
class Loader {
public:
    Loader(std::string file, const EnvLookup &env) : file_(std::move(file)), env_(env) {}

    Config load(const YAML::Node &root) {
        Config config;
        config.path = file_;
        if (!root.IsDefined() || root.IsNull()) fail(root, "", "the file is empty");
        expect_map(root, "");
        check_keys(root, "", {"providers", "models", "workspaces", "auth", "routing", "metrics",
                              "limits", "analytics"});
        load_providers(require(root, "", "providers"), config);
        load_models(require(root, "", "models"), config);
        if (root["workspaces"]) load_workspaces(root["workspaces"], config);
        if (root["auth"]) load_auth(root["auth"], config.jwt);
        if (root["routing"]) load_routing(root["routing"], config.routing);
        if (root["metrics"]) load_metrics(root["metrics"], config.metrics);
        if (root["limits"]) load_limits(root["limits"], config.limits);
        if (root["analytics"]) load_analytics(root["analytics"], config.analytics);
        config.index();
        return config;
    }

private:
    [[noreturn]] void fail(const YAML::Node &node, const std::string &key,
                           const std::string &message) const {
        int line = node.IsDefined() ? node.Mark().line + 1 : 0;
        throw ConfigError(file_, line, key, message);
    }

    static std::string join(const std::string &parent, const std::string &child) {
        return parent.empty() ? child : parent + "." + child;
    }

    void expect_map(const YAML::Node &node, const std::string &key) const {
        if (!node.IsMap()) fail(node, key, "must be a mapping");
    }

    // Refuses keys outside `allowed` (when given) and keys given twice: YAML
    // requires unique keys, and a silently ignored second entry is a trap.
    void check_keys(const YAML::Node &node, const std::string &key,
                    std::initializer_list<const char *> allowed = {}) const {
        std::vector<std::string> seen;
        for (const auto &entry : node) {
            std::string name = entry.first.as<std::string>();
            if (std::find(seen.begin(), seen.end(), name) != seen.end())
                fail(entry.first, join(key, name), "is given twice");
            seen.push_back(name);
            if (allowed.size() == 0) continue;
            bool known = std::any_of(allowed.begin(), allowed.end(),
                                     [&](const char *a) { return name == a; });
            if (!known) {
                std::string list;
                for (const char *a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
                fail(entry.first, join(key, name), "unknown key (expected one of: " + list + ")");
            }
        }
    }

    // yaml-cpp places an empty value at the next token; errors about it are
    // reported at its key instead.
    static const YAML::Node &at(const YAML::Node &value, const YAML::Node &key) {
        return value.IsNull() ? key : value;
    }

    YAML::Node require(const YAML::Node &node, const std::string &key, const char *child) const {
        for (const auto &entry : node) {
            if (entry.first.as<std::string>() != child) continue;
            if (entry.second.IsNull()) fail(entry.first, join(key, child), "must not be empty");
            return entry.second;
        }
        fail(node, join(key, child), "is required");
    }

    std::string scalar(const YAML::Node &node, const std::string &key) const {
        if (!node.IsScalar()) fail(node, key, "must be a string");
        return node.Scalar();
    }

    long long integer(const YAML::Node &node, const std::string &key, long long min,
                      long long max) const {
        if (!node.IsScalar()) fail(node, key, "must be an integer");
        const std::string &text = node.Scalar();
        char *end = nullptr;
        errno = 0;
        long long value = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || errno != 0)
            fail(node, key, "must be an integer, not \"" + text + "\"");
        if (value < min || value > max)
            fail(node, key,
                 "must be between " + std::to_string(min) + " and " + std::to_string(max));
        return value;
    }

    std::string env_secret(const YAML::Node &node, const std::string &key) const {
        std::string name = scalar(node, key);
        std::optional<std::string> value = env_(name);
        if (!value || value->empty())
            fail(node, key,
                 "environment variable " + name +
                     " is not set or empty (and nginx drops the environment unless an `env " + name +
                     ";` line keeps it)");
        return *value;
    }

    void load_providers(const YAML::Node &node, Config &config) {
        const std::string key = "providers";
        expect_map(node, key);
        if (node.size() == 0) fail(node, key, "must name at least one provider");
        check_keys(node, key);
        for (const auto &entry : node) {
            Provider p;
            p.name = entry.first.as<std::string>();
            std::string pkey = join(key, p.name);
            if (!is_identifier(p.name, 64))
                fail(entry.first, pkey, "provider names must match [A-Za-z0-9_-]{1,64}");
            const YAML::Node &body = entry.second;
            expect_map(at(body, entry.first), pkey);
            check_keys(body, pkey,
                       {"kind", "base_url", "api_key_env", "keepalive", "anthropic_version",
                        "first_byte_timeout"});
            YAML::Node kind = require(body, pkey, "kind");
            std::string kind_text = scalar(kind, join(pkey, "kind"));
            if (kind_text == "openai") {
                p.kind = ProviderKind::kOpenAI;
            } else if (kind_text == "openai_compatible") {
                p.kind = ProviderKind::kOpenAICompatible;
            } else if (kind_text == "anthropic") {
                p.kind = ProviderKind::kAnthropic;
            } else {
                fail(kind, join(pkey, "kind"),
                     "unknown kind \"" + kind_text +
                         "\" (expected openai, openai_compatible or anthropic)");
            }
            YAML::Node url = require(body, pkey, "base_url");
            p.base_url = scalar(url, join(pkey, "base_url"));
            std::string why;
            std::optional<ProviderUrl> parsed = parse_provider_url(p.base_url, &why);
            if (!parsed) fail(url, join(pkey, "base_url"), "\"" + p.base_url + "\" " + why);
            p.url = *parsed;
            if (body["api_key_env"]) {
                p.api_key = env_secret(body["api_key_env"], join(pkey, "api_key_env"));
            } else if (p.kind != ProviderKind::kOpenAICompatible) {
                fail(body, join(pkey, "api_key_env"),
                     "is required for kind " + kind_text + " (only openai_compatible may be keyless)");
            }
            if (body["first_byte_timeout"])
                p.first_byte_timeout_ms = duration_ms(body["first_byte_timeout"],
                                                      join(pkey, "first_byte_timeout"));
            if (body["keepalive"])
                p.keepalive =
                    static_cast<int>(integer(body["keepalive"], join(pkey, "keepalive"), 0, 4096));
            if (body["anthropic_version"])
                p.anthropic_version =
                    scalar(body["anthropic_version"], join(pkey, "anthropic_version"));
            config.providers.push_back(std::move(p));
        }
    }

    Micros price_field(const YAML::Node &price, const std::string &key, const char *field,
                       bool required, Micros fallback) const {
        YAML::Node value = price[field];
        if (!value) {
            if (required) fail(price, join(key, field), "is required");
            return fallback;
        }
        std::string text = value.IsScalar() ? value.Scalar() : "";
        std::optional<Micros> micros = parse_decimal_micros(text);
        if (!micros)
            fail(value, join(key, field),
                 "must be a non-negative number of USD per million tokens with at most 6 "
                 "decimals");
        return *micros;
    }

    void load_models(const YAML::Node &node, Config &config) {
        const std::string key = "models";
        expect_map(node, key);
        if (node.size() == 0) fail(node, key, "must name at least one model");
        check_keys(node, key);
        for (const auto &entry : node) {
            Model m;
            m.name = entry.first.as<std::string>();
            std::string mkey = join(key, m.name);
            if (!is_model_name(m.name))
                fail(entry.first, mkey, "model names must match [A-Za-z0-9._:/@+-]{1,128}");
            const YAML::Node &list = entry.second;
            if (!list.IsSequence() || list.size() == 0)
                fail(at(list, entry.first), mkey, "must be a non-empty list of candidates");
            for (std::size_t i = 0; i < list.size(); ++i) {
                const YAML::Node &c = list[i];
                std::string ckey = mkey + "[" + std::to_string(i) + "]";
                expect_map(c, ckey);
                check_keys(c, ckey, {"provider", "model", "price", "weight"});
                Candidate cand;
                YAML::Node provider = require(c, ckey, "provider");
                std::string pname = scalar(provider, join(ckey, "provider"));
                auto it = std::find_if(config.providers.begin(), config.providers.end(),
                                       [&](const Provider &p) { return p.name == pname; });
                if (it == config.providers.end())
                    fail(provider, join(ckey, "provider"), "unknown provider \"" + pname + "\"");
                cand.provider = static_cast<std::size_t>(it - config.providers.begin());
                cand.model = scalar(require(c, ckey, "model"), join(ckey, "model"));
                if (cand.model.empty()) fail(c["model"], join(ckey, "model"), "must not be empty");
                YAML::Node price = require(c, ckey, "price");
                std::string prkey = join(ckey, "price");
                expect_map(price, prkey);
                check_keys(price, prkey,
                           {"input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
                            "cache_write_per_mtok"});
                cand.price.input_per_mtok = price_field(price, prkey, "input_per_mtok", true, 0);
                cand.price.output_per_mtok = price_field(price, prkey, "output_per_mtok", true, 0);
                cand.price.cached_input_per_mtok = price_field(
                    price, prkey, "cached_input_per_mtok", false, cand.price.input_per_mtok);
                cand.price.cache_write_per_mtok = price_field(
                    price, prkey, "cache_write_per_mtok", false, cand.price.input_per_mtok);
                if (c["weight"])
                    cand.weight =
                        static_cast<int>(integer(c["weight"], join(ckey, "weight"), 1, 1000000));
                m.candidates.push_back(std::move(cand));
            }
            config.models.push_back(std::move(m));
        }
    }

    void load_workspaces(const YAML::Node &node, Config &config) {
        const std::string key = "workspaces";
        expect_map(node, key);
        check_keys(node, key);
        std::unordered_map<std::string, std::string> seen_keys;
        for (const auto &entry : node) {
            Workspace w;
            w.id = entry.first.as<std::string>();
            std::string wkey = join(key, w.id);
            if (!is_identifier(w.id, 64))
                fail(entry.first, wkey, "workspace ids must match [A-Za-z0-9_-]{1,64}");
            const YAML::Node &body = entry.second;
            expect_map(at(body, entry.first), wkey);
            check_keys(body, wkey, {"api_keys_sha256", "strategy"});
            if (YAML::Node keys = body["api_keys_sha256"]) {
                std::string kkey = join(wkey, "api_keys_sha256");
                if (!keys.IsSequence()) fail(keys, kkey, "must be a list of hex SHA-256 digests");
                for (std::size_t i = 0; i < keys.size(); ++i) {
                    std::string ikey = kkey + "[" + std::to_string(i) + "]";
                    std::string hash = scalar(keys[i], ikey);
                    std::transform(hash.begin(), hash.end(), hash.begin(),
                                   [](unsigned char c) { return std::tolower(c); });
                    if (!is_sha256_hex(hash))
                        fail(keys[i], ikey, "must be 64 hex digits (sha256 of the virtual key)");
                    auto [it, fresh] = seen_keys.emplace(hash, w.id);
                    if (!fresh)
                        fail(keys[i], ikey, "the same key is already given to workspace " +
                                                it->second);
                    w.api_key_sha256.push_back(hash);
                }
            }
            if (YAML::Node s = body["strategy"]) {
                std::string name = scalar(s, join(wkey, "strategy"));
                w.strategy = parse_strategy(name);
                if (!w.strategy)
                    fail(s, join(wkey, "strategy"),
                         "unknown strategy \"" + name +
                             "\" (expected fastest, cheapest, reliable, round_robin, weighted or "
                             "fallback)");
            }
            config.workspaces.push_back(std::move(w));
        }
    }

    void load_auth(const YAML::Node &node, JwtConfig &jwt) {
        expect_map(node, "auth");
        check_keys(node, "auth", {"jwt"});
        if (!node["jwt"]) return;
        const YAML::Node &j = node["jwt"];
        const std::string key = "auth.jwt";
        expect_map(j, key);
        check_keys(j, key,
                   {"algorithms", "hs256_secret_env", "public_key_file", "issuer", "audience",
                    "workspace_claim"});
        jwt.enabled = true;
        YAML::Node algs = require(j, key, "algorithms");
        if (!algs.IsSequence() || algs.size() == 0)
            fail(algs, join(key, "algorithms"), "must be a non-empty list");
        bool needs_secret = false, needs_public_key = false;
        for (std::size_t i = 0; i < algs.size(); ++i) {
            std::string akey = join(key, "algorithms") + "[" + std::to_string(i) + "]";
            std::string alg = scalar(algs[i], akey);
            if (alg == "HS256") {
                needs_secret = true;
            } else if (alg == "RS256" || alg == "ES256") {
                needs_public_key = true;
            } else {
                fail(algs[i], akey,
                     "unsupported algorithm \"" + alg + "\" (expected HS256, RS256 or ES256)");
            }
            jwt.algorithms.push_back(alg);
        }
        if (needs_secret)
            jwt.hs256_secret =
                env_secret(require(j, key, "hs256_secret_env"), join(key, "hs256_secret_env"));
        if (needs_public_key) {
            YAML::Node file = require(j, key, "public_key_file");
            std::string path = scalar(file, join(key, "public_key_file"));
            std::ifstream in(path);
            if (!in) fail(file, join(key, "public_key_file"), "cannot read " + path);
            std::stringstream text;
            text << in.rdbuf();
            jwt.public_key_pem = text.str();
            if (jwt.public_key_pem.find("-----BEGIN PUBLIC KEY-----") == std::string::npos)
                fail(file, join(key, "public_key_file"), path + " holds no PEM public key");
        }
        if (j["issuer"]) jwt.issuer = scalar(j["issuer"], join(key, "issuer"));
        if (j["audience"]) jwt.audience = scalar(j["audience"], join(key, "audience"));
        if (j["workspace_claim"])
            jwt.workspace_claim = scalar(j["workspace_claim"], join(key, "workspace_claim"));
    }

    // "30s", "500ms", "2m" (nginx's notation) or a bare number of milliseconds.
    std::int64_t duration_ms(const YAML::Node &node, const std::string &key) const {
        std::string text = node.IsScalar() ? node.Scalar() : "";
        std::size_t digits = 0;
        while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
            ++digits;
        std::string unit = text.substr(digits);
        std::int64_t scale = unit.empty() || unit == "ms" ? 1
                             : unit == "s"               ? 1000
                             : unit == "m"               ? 60000
                                                         : 0;
        if (digits == 0 || digits > 9 || scale == 0)
            fail(node, key, "must be a duration like 500ms, 30s or 2m");
        return std::stoll(text.substr(0, digits)) * scale;
    }

    void load_routing(const YAML::Node &node, RoutingConfig &routing) {
        expect_map(node, "routing");
        check_keys(node, "routing", {"max_attempts", "breaker"});
        if (node["max_attempts"])
            routing.max_attempts =
                static_cast<int>(integer(node["max_attempts"], "routing.max_attempts", 1, 8));
        if (!node["breaker"]) return;
        const YAML::Node &b = node["breaker"];
        const std::string key = "routing.breaker";
        expect_map(b, key);
        check_keys(b, key, {"consecutive_failures", "failure_rate", "min_requests", "cooldown"});
        BreakerPolicy &p = routing.breaker;
        if (b["consecutive_failures"])
            p.consecutive_failures = static_cast<int>(
                integer(b["consecutive_failures"], join(key, "consecutive_failures"), 1, 1000));
        if (b["min_requests"])
            p.min_requests = integer(b["min_requests"], join(key, "min_requests"), 1, 1000000);
        if (b["cooldown"]) p.cooldown_ms = duration_ms(b["cooldown"], join(key, "cooldown"));
        if (b["failure_rate"]) {
            std::optional<Micros> rate =
                parse_decimal_micros(b["failure_rate"].IsScalar() ? b["failure_rate"].Scalar() : "");
            if (!rate || *rate == 0 || *rate > 1000000)
                fail(b["failure_rate"], join(key, "failure_rate"), "must be a number in (0, 1]");
            p.failure_rate = static_cast<double>(*rate) / 1e6;
        }
    }

    // "512k", "1m" (nginx's notation) or a bare number of bytes.
    std::size_t size_bytes(const YAML::Node &node, const std::string &key, std::size_t min,
                           std::size_t max) const {
        std::string text = node.IsScalar() ? node.Scalar() : "";
        std::size_t digits = 0;
        while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
            ++digits;
        std::string unit = text.substr(digits);
        std::size_t scale = unit.empty()               ? 1
                            : unit == "k" || unit == "K" ? 1024
                            : unit == "m" || unit == "M" ? 1024 * 1024
                                                         : 0;
        if (digits == 0 || digits > 9 || scale == 0) fail(node, key, "must be a size like 512k or 1m");
        std::size_t bytes = std::stoull(text.substr(0, digits)) * scale;
        if (bytes < min || bytes > max)
            fail(node, key,
                 "must be between " + std::to_string(min) + " and " + std::to_string(max) + " bytes");
        return bytes;
    }

    void load_limits(const YAML::Node &node, LimitsConfig &limits) {
        expect_map(node, "limits");
        check_keys(node, "limits", {"max_json_depth", "max_sse_event", "max_response_json"});
        if (node["max_json_depth"])
            limits.max_json_depth = static_cast<std::size_t>(
                integer(node["max_json_depth"], "limits.max_json_depth", 4, 1024));
        if (node["max_sse_event"])
            limits.max_sse_event =
                size_bytes(node["max_sse_event"], "limits.max_sse_event", 1024, 64 << 20);
        if (node["max_response_json"])
            limits.max_response_json =
                size_bytes(node["max_response_json"], "limits.max_response_json", 1024, 256 << 20);
    }

    void load_metrics(const YAML::Node &node, MetricsConfig &metrics) {
        expect_map(node, "metrics");
        check_keys(node, "metrics", {"workspace_label"});
        if (YAML::Node v = node["workspace_label"]) {
            std::string text = scalar(v, "metrics.workspace_label");
            if (text != "true" && text != "false")
                fail(v, "metrics.workspace_label", "must be true or false");
            metrics.workspace_label = text == "true";
        }
    }

    void load_analytics(const YAML::Node &node, AnalyticsConfig &analytics) {
        expect_map(node, "analytics");
        check_keys(node, "analytics", {"retention_days", "max_log_entries_per_workspace"});
        if (node["retention_days"])
            analytics.retention_days = static_cast<int>(
                integer(node["retention_days"], "analytics.retention_days", 1, 3650));
        if (node["max_log_entries_per_workspace"])
            analytics.max_log_entries_per_workspace =
                integer(node["max_log_entries_per_workspace"],
                        "analytics.max_log_entries_per_workspace", 1, 1000000000);
    }

    std::string file_;
    const EnvLookup &env_;
};

Config load_parsed(const std::string &path, const EnvLookup &env,
                   const std::function<YAML::Node()> &parse) {
    YAML::Node root;
    try {
        root = parse();
    } catch (const YAML::BadFile &) {
        throw ConfigError(path, 0, "", "cannot open the file");
    } catch (const YAML::ParserException &e) {
        throw ConfigError(path, e.mark.line + 1, "", "YAML syntax error: " + e.msg);
    }
    try {
        return Loader(path, env).load(root);
    } catch (const YAML::Exception &e) {
        // Type conversions that slipped past the checks above still get a location.
        throw ConfigError(path, e.mark.is_null() ? 0 : e.mark.line + 1, "", e.msg);
    }
}

}  // namespace

EnvLookup process_env() {
    return [](const std::string &name) -> std::optional<std::string> {
        const char *value = std::getenv(name.c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
    };
}

Config load_config_file(const std::string &path, const EnvLookup &env) {
    return load_parsed(path, env, [&] { return YAML::LoadFile(path); });
}

Config load_config_text(const std::string &text, const std::string &path_for_errors,
                        const EnvLookup &env) {
    return load_parsed(path_for_errors, env, [&] { return YAML::Load(text); });
}

}  // namespace perpetuo
