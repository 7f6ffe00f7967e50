#include "config_yaml.hpp"
#include "digest.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <string>

namespace perpetuo {
namespace {

EnvLookup fake_env() {
    static const std::map<std::string, std::string> vars = {
        {"OPENAI_KEY", "sk-openai"},
        {"ANTHROPIC_KEY", "sk-ant"},
        {"JWT_SECRET", "jwt-s3cret"},
        {"EMPTY_VAR", ""},
    };
    return [](const std::string &name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

Config load(const std::string &yaml) {
    return load_config_text(yaml, "perpetuo.yaml", fake_env());
}

std::string fixture(const std::string &name) {
    return std::string(PERPETUO_FIXTURES) + "/" + name;
}

// SHA-256 of the virtual key "test", in uppercase to check normalization.
const char kTestKeyHashUpper[] = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";

const char kCompleteConfig[] = R"(# PERPETUO gateway
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_KEY
    keepalive: 64
  anthropic:
    kind: anthropic
    base_url: https://api.anthropic.com
    api_key_env: ANTHROPIC_KEY
    anthropic_version: "2024-10-22"
  local:
    kind: openai_compatible
    base_url: http://[::1]:11434/v1/
models:
  gpt-4o:
    - provider: openai
      model: gpt-4o-2024-08-06
      price: {input_per_mtok: 2.50, output_per_mtok: 10, cached_input_per_mtok: 1.25}
      weight: 3
    - provider: local
      model: llama3.1:8b
      price: {input_per_mtok: 0.1, output_per_mtok: 0.2}
  claude-3.5-sonnet:
    - provider: anthropic
      model: claude-3-5-sonnet-20241022
      price:
        input_per_mtok: 3
        output_per_mtok: 15
        cached_input_per_mtok: 0.30
        cache_write_per_mtok: 3.75
workspaces:
  team-a:
    api_keys_sha256:
      - 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08
    strategy: cheapest
  team_b:
    api_keys_sha256: [ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad]
auth:
  jwt:
    algorithms: [HS256]
    hs256_secret_env: JWT_SECRET
    issuer: https://idp.example.com
    audience: perpetuo
    workspace_claim: teams
analytics:
  retention_days: 30
  max_log_entries_per_workspace: 5000
)";

TEST(LoadConfigText, CompleteConfigProviders) {
    Config config = load(kCompleteConfig);
    EXPECT_EQ(config.path, "perpetuo.yaml");
    ASSERT_EQ(config.providers.size(), 3u);

    const Provider &openai = config.providers[0];
    EXPECT_EQ(openai.name, "openai");
    EXPECT_EQ(openai.kind, ProviderKind::kOpenAI);
    EXPECT_EQ(openai.base_url, "https://api.openai.com/v1");
    EXPECT_TRUE(openai.url.tls);
    EXPECT_EQ(openai.url.host, "api.openai.com");
    EXPECT_EQ(openai.url.port, 443);
    EXPECT_EQ(openai.url.path, "");
    EXPECT_EQ(openai.api_key, "sk-openai");
    EXPECT_EQ(openai.keepalive, 64);

    const Provider &anthropic = config.providers[1];
    EXPECT_EQ(anthropic.kind, ProviderKind::kAnthropic);
    EXPECT_EQ(anthropic.api_key, "sk-ant");
    EXPECT_EQ(anthropic.anthropic_version, "2024-10-22");
    EXPECT_EQ(anthropic.keepalive, 32);

    const Provider &local = config.providers[2];
    EXPECT_EQ(local.kind, ProviderKind::kOpenAICompatible);
    EXPECT_EQ(local.api_key, "");  // keyless local server
    EXPECT_FALSE(local.url.tls);
    EXPECT_EQ(local.url.host, "::1");
    EXPECT_EQ(local.url.port, 11434);
    EXPECT_EQ(local.url.path, "");
    EXPECT_EQ(local.anthropic_version, "2023-06-01");
}

TEST(LoadConfigText, CompleteConfigModelsAndPrices) {
    Config config = load(kCompleteConfig);
    ASSERT_EQ(config.models.size(), 2u);
    const Model *gpt = config.find_model("gpt-4o");
    ASSERT_NE(gpt, nullptr);
    ASSERT_EQ(gpt->candidates.size(), 2u);

    const Candidate &primary = gpt->candidates[0];
    EXPECT_EQ(config.providers[primary.provider].name, "openai");
    EXPECT_EQ(primary.model, "gpt-4o-2024-08-06");
    EXPECT_EQ(primary.price.input_per_mtok, 2500000);
    EXPECT_EQ(primary.price.output_per_mtok, 10000000);
    EXPECT_EQ(primary.price.cached_input_per_mtok, 1250000);
    EXPECT_EQ(primary.price.cache_write_per_mtok, 2500000);  // falls back to input
    EXPECT_EQ(primary.weight, 3);

    const Candidate &local = gpt->candidates[1];
    EXPECT_EQ(config.providers[local.provider].name, "local");
    EXPECT_EQ(local.model, "llama3.1:8b");
    EXPECT_EQ(local.price.input_per_mtok, 100000);
    EXPECT_EQ(local.price.cached_input_per_mtok, 100000);  // both fall back to input
    EXPECT_EQ(local.price.cache_write_per_mtok, 100000);
    EXPECT_EQ(local.weight, 1);

    const Model *claude = config.find_model("claude-3.5-sonnet");
    ASSERT_NE(claude, nullptr);
    const Price &price = claude->candidates.at(0).price;
    EXPECT_EQ(price.input_per_mtok, 3000000);
    EXPECT_EQ(price.output_per_mtok, 15000000);
    EXPECT_EQ(price.cached_input_per_mtok, 300000);
    EXPECT_EQ(price.cache_write_per_mtok, 3750000);

    EXPECT_EQ(config.find_model("gpt-5"), nullptr);
}

TEST(LoadConfigText, CompleteConfigWorkspacesAuthAnalytics) {
    Config config = load(kCompleteConfig);
    ASSERT_EQ(config.workspaces.size(), 2u);
    const Workspace &team_a = config.workspaces[0];
    EXPECT_EQ(team_a.id, "team-a");
    ASSERT_EQ(team_a.api_key_sha256.size(), 1u);
    EXPECT_EQ(team_a.api_key_sha256[0], sha256_hex("test"));  // lowercased
    EXPECT_EQ(team_a.strategy, Strategy::kCheapest);
    EXPECT_FALSE(config.workspaces[1].strategy.has_value());

    EXPECT_EQ(config.find_workspace_by_key_hash(sha256_hex("test")), &team_a);
    EXPECT_EQ(config.find_workspace_by_key_hash(sha256_hex("abc")), &config.workspaces[1]);
    EXPECT_EQ(config.find_workspace_by_key_hash(kTestKeyHashUpper), nullptr);

    const JwtConfig &jwt = config.jwt;
    EXPECT_TRUE(jwt.enabled);
    EXPECT_EQ(jwt.algorithms, std::vector<std::string>{"HS256"});
    EXPECT_EQ(jwt.hs256_secret, "jwt-s3cret");
    EXPECT_EQ(jwt.public_key_pem, "");
    EXPECT_EQ(jwt.issuer, "https://idp.example.com");
    EXPECT_EQ(jwt.audience, "perpetuo");
    EXPECT_EQ(jwt.workspace_claim, "teams");

    EXPECT_EQ(config.analytics.retention_days, 30);
    EXPECT_EQ(config.analytics.max_log_entries_per_workspace, 5000);
}

const std::string kProviders =
    "providers:\n"
    "  openai:\n"
    "    kind: openai\n"
    "    base_url: https://api.openai.com/v1\n"
    "    api_key_env: OPENAI_KEY\n";

const std::string kModels =
    "models:\n"
    "  gpt-4o:\n"
    "    - provider: openai\n"
    "      model: gpt-4o\n"
    "      price: {input_per_mtok: 2.50, output_per_mtok: 10}\n";

TEST(LoadConfigText, OptionalSectionsKeepTheirDefaults) {
    Config config = load(kProviders + kModels);
    EXPECT_TRUE(config.workspaces.empty());
    EXPECT_FALSE(config.jwt.enabled);
    EXPECT_EQ(config.jwt.workspace_claim, "workspaces");
    EXPECT_EQ(config.analytics.retention_days, 90);
    EXPECT_EQ(config.analytics.max_log_entries_per_workspace, 1000000);
}

TEST(LoadConfigText, Rs256ReadsThePublicKeyFile) {
    Config config = load(kProviders + kModels +
                         "auth:\n"
                         "  jwt:\n"
                         "    algorithms: [RS256, HS256]\n"
                         "    hs256_secret_env: JWT_SECRET\n"
                         "    public_key_file: " +
                         fixture("jwt_rs256_public.pem") + "\n");
    EXPECT_EQ(config.jwt.algorithms, (std::vector<std::string>{"RS256", "HS256"}));
    EXPECT_EQ(config.jwt.public_key_pem.rfind("-----BEGIN PUBLIC KEY-----", 0), 0u);
    EXPECT_EQ(config.jwt.hs256_secret, "jwt-s3cret");
}

// A line in an error case's YAML that ends with this comment is the line the
// error must point at, so the expected numbers cannot drift from the text.
constexpr char kMarker[] = "# <-";
constexpr int kMarkedLine = -1;

struct ConfigErrorCase {
    std::string name;
    std::string yaml;
    std::string key;
    std::string fragment;  // must appear in what()
    int line = kMarkedLine;
};

int marked_line(const std::string &yaml) {
    std::size_t at = yaml.find(kMarker);
    if (at == std::string::npos) return kMarkedLine;
    return 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + at, '\n'));
}

void PrintTo(const ConfigErrorCase &c, std::ostream *os) {
    *os << c.name;
}

class ConfigErrorTest : public ::testing::TestWithParam<ConfigErrorCase> {};

TEST_P(ConfigErrorTest, LocatesTheMistake) {
    const ConfigErrorCase &c = GetParam();
    int line = c.line == kMarkedLine ? marked_line(c.yaml) : c.line;
    ASSERT_NE(line, kMarkedLine) << "case has neither a line nor a marker";
    try {
        load(c.yaml);
        FAIL() << "accepted:\n" << c.yaml;
    } catch (const ConfigError &e) {
        EXPECT_EQ(e.file(), "perpetuo.yaml");
        EXPECT_EQ(e.line(), line) << e.what();
        EXPECT_EQ(e.key(), c.key) << e.what();
        EXPECT_NE(std::string(e.what()).find(c.fragment), std::string::npos) << e.what();
    }
}

// Each error case changes one part of an otherwise valid config, so it fails
// for that one reason only.
std::string with_provider(const std::string &body) {
    return "providers:\n  openai:\n" + body + kModels;
}

std::string with_candidates(const std::string &candidates) {
    return kProviders + "models:\n  gpt-4o:\n" + candidates;
}

std::string with_price(const std::string &price) {
    return with_candidates("    - provider: openai\n      model: gpt-4o\n      price: " + price +
                           "\n");
}

std::string with_section(const std::string &section) {
    return kProviders + kModels + section;
}

std::string with_jwt(const std::string &body) {
    return with_section("auth:\n  jwt:\n" + body);
}

const std::string kUrlKey = "providers.openai.base_url";
const std::string kPriceKey = "models.gpt-4o[0].price";
const std::string kHashKey = "workspaces.team-a.api_keys_sha256[0]";

const std::vector<ConfigErrorCase> kConfigErrors = {
    // The document itself.
    {"EmptyFile", "", "", "the file is empty", 0},
    {"OnlyComments", "# nothing configured yet\n", "", "the file is empty", 0},
    {"YamlSyntaxError", "providers:\n  openai:\n    kind: openai\n   base_url: https://x  # <-\n",
     "", "YAML syntax error"},
    {"RootIsASequence", "- providers  # <-\n- models\n", "", "must be a mapping"},
    {"RootIsAScalar", "just some text  # <-\n", "", "must be a mapping"},
    {"UnknownTopLevelKey", kProviders + kModels + "telemetry:  # <-\n  default: fastest\n", "telemetry",
     "unknown key (expected one of: providers, models,"},
    {"KeyThatIsNotAScalar", "providers:\n  [a, b]:  # <-\n    kind: openai\n", "",
     "bad conversion"},
    // A missing key is located at the mapping that lacks it.
    {"ProvidersMissing", kModels, "providers", "is required", 1},
    {"ModelsMissing", kProviders, "models", "is required", 1},

    // providers
    {"ProvidersNotAMap", "providers: [openai]  # <-\n" + kModels, "providers", "must be a mapping"},
    {"ProvidersEmpty", "providers: {}  # <-\n" + kModels, "providers",
     "must name at least one provider"},
    {"ProviderNameWithDot",
     "providers:\n  open.ai:  # <-\n    kind: openai_compatible\n    base_url: http://x\n" +
         kModels,
     "providers.open.ai", "provider names must match"},
    {"ProviderNameWithSpace",
     "providers:\n  open ai:  # <-\n    kind: openai_compatible\n    base_url: http://x\n" +
         kModels,
     "providers.open ai", "provider names must match"},
    {"ProviderNameTooLong",
     "providers:\n  " + std::string(65, 'p') +
         ":  # <-\n    kind: openai_compatible\n    base_url: http://x\n" + kModels,
     "providers." + std::string(65, 'p'), "[A-Za-z0-9_-]{1,64}"},
    {"ProviderBodyNotAMap", "providers:\n  openai: openai  # <-\n" + kModels, "providers.openai",
     "must be a mapping"},
    {"UnknownProviderKey",
     with_provider("    kind: openai\n    base_url: https://api.openai.com\n"
                   "    api_key_env: OPENAI_KEY\n    api_key: sk-inline  # <-\n"),
     "providers.openai.api_key", "unknown key (expected one of: kind, base_url,"},
    {"KindMissing",
     with_provider("    base_url: https://api.openai.com  # <-\n    api_key_env: OPENAI_KEY\n"),
     "providers.openai.kind", "is required"},
    {"KindNotAString",
     with_provider("    kind: [openai]  # <-\n    base_url: https://api.openai.com\n"),
     "providers.openai.kind", "must be a string"},
    {"KindUnknown", with_provider("    kind: azure  # <-\n    base_url: https://api.openai.com\n"),
     "providers.openai.kind", "unknown kind \"azure\""},
    // An empty value has no position of its own; the operator needs the line
    // of its key, not of whatever follows it.
    {"KindEmptyLocatedAtItsKey",
     with_provider("    kind:  # <-\n    base_url: https://api.openai.com\n"),
     "providers.openai.kind", "must not be empty"},
    {"BaseUrlMissing", with_provider("    kind: openai  # <-\n    api_key_env: OPENAI_KEY\n"),
     kUrlKey, "is required"},
    {"BaseUrlWithoutScheme",
     with_provider("    kind: openai\n    base_url: api.openai.com/v1  # <-\n"), kUrlKey,
     "\"api.openai.com/v1\" must start with http:// or https://"},
    {"BaseUrlOtherScheme", with_provider("    kind: openai\n    base_url: ftp://x.org  # <-\n"),
     kUrlKey, "must start with http:// or https://"},
    {"BaseUrlWithCredentials",
     with_provider("    kind: openai\n    base_url: https://u:p@api.openai.com  # <-\n"), kUrlKey,
     "must not hold a query, fragment or credentials"},
    {"BaseUrlWithQuery",
     with_provider("    kind: openai\n    base_url: https://api.openai.com/v1?x=1  # <-\n"),
     kUrlKey, "must not hold a query, fragment or credentials"},
    {"BaseUrlPortTooLarge",
     with_provider("    kind: openai\n    base_url: https://api.openai.com:65536  # <-\n"), kUrlKey,
     "has an invalid port"},
    {"BaseUrlUnterminatedIpv6",
     with_provider("    kind: openai\n    base_url: http://[::1:8080/v1  # <-\n"), kUrlKey,
     "has an unterminated IPv6 literal"},
    {"BaseUrlNoHost", with_provider("    kind: openai\n    base_url: https:///v1  # <-\n"), kUrlKey,
     "has no host"},
    {"BaseUrlNotAString", with_provider("    kind: openai\n    base_url: {host: x}  # <-\n"),
     kUrlKey, "must be a string"},
    {"ApiKeyEnvMissingForOpenai",
     with_provider("    kind: openai  # <-\n    base_url: https://api.openai.com\n"),
     "providers.openai.api_key_env", "is required for kind openai"},
    {"ApiKeyEnvMissingForAnthropic",
     with_provider("    kind: anthropic  # <-\n    base_url: https://api.anthropic.com\n"),
     "providers.openai.api_key_env", "is required for kind anthropic"},
    {"ApiKeyEnvUnset",
     with_provider("    kind: openai\n    base_url: https://api.openai.com\n"
                   "    api_key_env: NO_SUCH_VAR  # <-\n"),
     "providers.openai.api_key_env", "environment variable NO_SUCH_VAR is not set"},
    {"ApiKeyEnvEmpty",
     with_provider("    kind: openai\n    base_url: https://api.openai.com\n"
                   "    api_key_env: EMPTY_VAR  # <-\n"),
     "providers.openai.api_key_env", "environment variable EMPTY_VAR"},
    {"ApiKeyEnvNotAString",
     with_provider("    kind: openai\n    base_url: https://api.openai.com\n"
                   "    api_key_env: [OPENAI_KEY]  # <-\n"),
     "providers.openai.api_key_env", "must be a string"},
    {"KeepaliveText",
     with_provider("    kind: openai_compatible\n    base_url: http://x\n"
                   "    keepalive: lots  # <-\n"),
     "providers.openai.keepalive", "must be an integer, not \"lots\""},
    {"KeepaliveFraction",
     with_provider("    kind: openai_compatible\n    base_url: http://x\n"
                   "    keepalive: 1.5  # <-\n"),
     "providers.openai.keepalive", "must be an integer, not \"1.5\""},
    {"KeepaliveList",
     with_provider("    kind: openai_compatible\n    base_url: http://x\n"
                   "    keepalive: [8]  # <-\n"),
     "providers.openai.keepalive", "must be an integer"},
    {"KeepaliveOverflow",
     with_provider("    kind: openai_compatible\n    base_url: http://x\n"
                   "    keepalive: 99999999999999999999  # <-\n"),
     "providers.openai.keepalive", "must be an integer"},
    {"KeepaliveTooLarge",
     with_provider("    kind: openai_compatible\n    base_url: http://x\n"
                   "    keepalive: 4097  # <-\n"),
     "providers.openai.keepalive", "must be between 0 and 4096"},
    {"KeepaliveNegative",
     with_provider("    kind: openai_compatible\n    base_url: http://x\n"
                   "    keepalive: -1  # <-\n"),
     "providers.openai.keepalive", "must be between 0 and 4096"},
    {"AnthropicVersionNotAString",
     with_provider("    kind: openai_compatible\n    base_url: http://x\n"
                   "    anthropic_version: [2023-06-01]  # <-\n"),
     "providers.openai.anthropic_version", "must be a string"},

    // models
    {"ModelsNotAMap", kProviders + "models: [gpt-4o]  # <-\n", "models", "must be a mapping"},
    {"ModelsEmpty", kProviders + "models: {}  # <-\n", "models", "must name at least one model"},
    {"ModelNameWithSpace", kProviders + "models:\n  gpt 4o: []  # <-\n", "models.gpt 4o",
     "model names must match"},
    {"ModelNameTooLong", kProviders + "models:\n  " + std::string(129, 'm') + ": []  # <-\n",
     "models." + std::string(129, 'm'), "{1,128}"},
    {"CandidatesNotAList", with_candidates("    provider: openai  # <-\n"), "models.gpt-4o",
     "must be a non-empty list of candidates"},
    {"CandidatesEmpty", kProviders + "models:\n  gpt-4o: []  # <-\n", "models.gpt-4o",
     "must be a non-empty list of candidates"},
    {"CandidatesNullLocatedAtItsKey",
     kProviders + "models:\n  gpt-4o:  # <-\n  gpt-4o-mini:\n    - provider: openai\n",
     "models.gpt-4o", "must be a non-empty list of candidates"},
    {"CandidateNotAMap", with_candidates("    - openai  # <-\n"), "models.gpt-4o[0]",
     "must be a mapping"},
    {"UnknownCandidateKey",
     with_candidates("    - provider: openai\n      model: gpt-4o\n"
                     "      temperature: 0.2  # <-\n"),
     "models.gpt-4o[0].temperature", "unknown key (expected one of: provider, model,"},
    {"CandidateProviderMissing", with_candidates("    - model: gpt-4o  # <-\n"),
     "models.gpt-4o[0].provider", "is required"},
    {"CandidateProviderUnknown", with_candidates("    - provider: azure  # <-\n"),
     "models.gpt-4o[0].provider", "unknown provider \"azure\""},
    {"SecondCandidateProviderUnknown",
     with_candidates("    - provider: openai\n      model: gpt-4o\n"
                     "      price: {input_per_mtok: 1, output_per_mtok: 2}\n"
                     "    - provider: azure  # <-\n"),
     "models.gpt-4o[1].provider", "unknown provider \"azure\""},
    {"CandidateModelMissing", with_candidates("    - provider: openai  # <-\n"),
     "models.gpt-4o[0].model", "is required"},
    {"CandidateModelNotAString",
     with_candidates("    - provider: openai\n      model: {id: gpt-4o}  # <-\n"),
     "models.gpt-4o[0].model", "must be a string"},
    {"CandidateModelEmpty", with_candidates("    - provider: openai\n      model: \"\"  # <-\n"),
     "models.gpt-4o[0].model", "must not be empty"},
    {"CandidatePriceMissing", with_candidates("    - provider: openai  # <-\n      model: x\n"),
     kPriceKey, "is required"},
    {"PriceNotAMap", with_price("2.50  # <-"), kPriceKey, "must be a mapping"},
    {"PriceUnknownKey", with_price("{input_per_mtok: 1, output_per_mtok: 2, per_request: 1}  # <-"),
     kPriceKey + ".per_request", "unknown key"},
    {"PriceInputMissing", with_price("{output_per_mtok: 10}  # <-"), kPriceKey + ".input_per_mtok",
     "is required"},
    {"PriceOutputMissing", with_price("{input_per_mtok: 10}  # <-"), kPriceKey + ".output_per_mtok",
     "is required"},
    {"PriceSevenDecimals", with_price("{input_per_mtok: 0.0000001, output_per_mtok: 1}  # <-"),
     kPriceKey + ".input_per_mtok", "at most 6 decimals"},
    {"PriceNegative", with_price("{input_per_mtok: 1, output_per_mtok: -10}  # <-"),
     kPriceKey + ".output_per_mtok", "must be a non-negative number"},
    {"PriceText", with_price("{input_per_mtok: cheap, output_per_mtok: 1}  # <-"),
     kPriceKey + ".input_per_mtok", "must be a non-negative number"},
    {"PriceExponent", with_price("{input_per_mtok: 1e-3, output_per_mtok: 1}  # <-"),
     kPriceKey + ".input_per_mtok", "must be a non-negative number"},
    {"PriceList", with_price("{input_per_mtok: [1], output_per_mtok: 1}  # <-"),
     kPriceKey + ".input_per_mtok", "must be a non-negative number"},
    {"CachedPriceInvalid",
     with_price("{input_per_mtok: 1, output_per_mtok: 1, cached_input_per_mtok: half}  # <-"),
     kPriceKey + ".cached_input_per_mtok", "must be a non-negative number"},
    {"CacheWritePriceInvalid",
     with_price("{input_per_mtok: 1, output_per_mtok: 1, cache_write_per_mtok: -3.75}  # <-"),
     kPriceKey + ".cache_write_per_mtok", "must be a non-negative number"},
    {"WeightZero",
     with_candidates("    - provider: openai\n      model: gpt-4o\n"
                     "      price: {input_per_mtok: 1, output_per_mtok: 2}\n"
                     "      weight: 0  # <-\n"),
     "models.gpt-4o[0].weight", "must be between 1 and 1000000"},
    {"WeightText",
     with_candidates("    - provider: openai\n      model: gpt-4o\n"
                     "      price: {input_per_mtok: 1, output_per_mtok: 2}\n"
                     "      weight: heavy  # <-\n"),
     "models.gpt-4o[0].weight", "must be an integer, not \"heavy\""},

    // workspaces
    {"WorkspacesNotAMap", with_section("workspaces: [team-a]  # <-\n"), "workspaces",
     "must be a mapping"},
    {"WorkspaceIdWithDot", with_section("workspaces:\n  team.a: {}  # <-\n"), "workspaces.team.a",
     "workspace ids must match"},
    {"WorkspaceIdWithSlash", with_section("workspaces:\n  team/a: {}  # <-\n"), "workspaces.team/a",
     "workspace ids must match"},
    {"WorkspaceBodyNotAMap", with_section("workspaces:\n  team-a: cheapest  # <-\n"),
     "workspaces.team-a", "must be a mapping"},
    {"UnknownWorkspaceKey", with_section("workspaces:\n  team-a:\n    keys: []  # <-\n"),
     "workspaces.team-a.keys", "unknown key (expected one of: api_keys_sha256, strategy)"},
    {"KeyHashesNotAList", with_section("workspaces:\n  team-a:\n    api_keys_sha256: abc  # <-\n"),
     "workspaces.team-a.api_keys_sha256", "must be a list of hex SHA-256 digests"},
    {"KeyHashTooShort",
     with_section("workspaces:\n  team-a:\n    api_keys_sha256:\n      - 9f86d081  # <-\n"),
     kHashKey, "must be 64 hex digits"},
    {"KeyHashNotHex",
     with_section("workspaces:\n  team-a:\n    api_keys_sha256:\n      - " + std::string(63, 'a') +
                  "g  # <-\n"),
     kHashKey, "must be 64 hex digits"},
    {"KeyHashIsTheKeyItself",
     with_section("workspaces:\n  team-a:\n    api_keys_sha256: [sk-perpetuo-team-a]  # <-\n"),
     kHashKey, "must be 64 hex digits"},
    {"KeyHashNotAString",
     with_section("workspaces:\n  team-a:\n    api_keys_sha256:\n      - {sha: x}  # <-\n"),
     kHashKey, "must be a string"},
    // The uppercase copy normalizes to the same digest, so it is the same key.
    {"SameKeyInTwoWorkspaces",
     with_section("workspaces:\n"
                  "  team-a:\n"
                  "    api_keys_sha256: [" +
                  sha256_hex("test") +
                  "]\n"
                  "  team-b:\n"
                  "    api_keys_sha256:\n"
                  "      - " +
                  kTestKeyHashUpper + "  # <-\n"),
     "workspaces.team-b.api_keys_sha256[0]", "already given to workspace team-a"},
    {"StrategyNotAString", with_section("workspaces:\n  team-a:\n    strategy: [fastest]  # <-\n"),
     "workspaces.team-a.strategy", "must be a string"},
    {"UnknownStrategy", with_section("workspaces:\n  team-a:\n    strategy: fastest-first  # <-\n"),
     "workspaces.team-a.strategy", "unknown strategy \"fastest-first\""},

    // auth
    {"AuthNotAMap", with_section("auth: jwt  # <-\n"), "auth", "must be a mapping"},
    {"AuthUnknownKey", with_section("auth:\n  oidc: {}  # <-\n"), "auth.oidc",
     "unknown key (expected one of: jwt)"},
    {"JwtNotAMap", with_section("auth:\n  jwt: true  # <-\n"), "auth.jwt", "must be a mapping"},
    {"JwtUnknownKey", with_jwt("    algorithms: [HS256]\n    leeway: 30  # <-\n"),
     "auth.jwt.leeway", "unknown key"},
    {"JwtAlgorithmsMissing", with_jwt("    issuer: https://idp  # <-\n"), "auth.jwt.algorithms",
     "is required"},
    {"JwtAlgorithmsEmpty", with_jwt("    algorithms: []  # <-\n"), "auth.jwt.algorithms",
     "must be a non-empty list"},
    {"JwtAlgorithmsScalar", with_jwt("    algorithms: HS256  # <-\n"), "auth.jwt.algorithms",
     "must be a non-empty list"},
    {"JwtAlgorithmNone",
     with_jwt("    algorithms: [HS256, none]  # <-\n    hs256_secret_env: JWT_SECRET\n"),
     "auth.jwt.algorithms[1]", "unsupported algorithm \"none\""},
    {"JwtAlgorithmHs512", with_jwt("    algorithms:\n      - HS512  # <-\n"),
     "auth.jwt.algorithms[0]", "unsupported algorithm \"HS512\" (expected HS256, RS256 or ES256)"},
    {"Hs256WithoutSecretEnv", with_jwt("    algorithms: [HS256]  # <-\n"),
     "auth.jwt.hs256_secret_env", "is required"},
    {"Hs256SecretEnvUnset",
     with_jwt("    algorithms: [HS256]\n    hs256_secret_env: NO_SUCH_SECRET  # <-\n"),
     "auth.jwt.hs256_secret_env", "environment variable NO_SUCH_SECRET is not set"},
    {"Rs256WithoutPublicKeyFile", with_jwt("    algorithms: [RS256]  # <-\n"),
     "auth.jwt.public_key_file", "is required"},
    {"Rs256UnreadablePublicKeyFile",
     with_jwt("    algorithms: [RS256]\n"
              "    public_key_file: /nonexistent/perpetuo/jwt.pem  # <-\n"),
     "auth.jwt.public_key_file", "cannot read /nonexistent/perpetuo/jwt.pem"},
    {"Es256FileWithoutPem",
     with_jwt("    algorithms: [ES256]\n    public_key_file: " + fixture("not_a_public_key.pem") +
              "  # <-\n"),
     "auth.jwt.public_key_file", "holds no PEM public key"},
    {"JwtIssuerNotAString",
     with_jwt("    algorithms: [HS256]\n    hs256_secret_env: JWT_SECRET\n"
              "    issuer: [a, b]  # <-\n"),
     "auth.jwt.issuer", "must be a string"},

    // analytics
    {"AnalyticsNotAMap", with_section("analytics: 30  # <-\n"), "analytics", "must be a mapping"},
    {"AnalyticsUnknownKey", with_section("analytics:\n  retention: 30  # <-\n"),
     "analytics.retention", "unknown key"},
    {"RetentionDaysZero", with_section("analytics:\n  retention_days: 0  # <-\n"),
     "analytics.retention_days", "must be between 1 and 3650"},
    {"RetentionDaysTooLarge", with_section("analytics:\n  retention_days: 3651  # <-\n"),
     "analytics.retention_days", "must be between 1 and 3650"},
    {"MaxLogEntriesZero", with_section("analytics:\n  max_log_entries_per_workspace: 0  # <-\n"),
     "analytics.max_log_entries_per_workspace", "must be between 1 and 1000000000"},
};

INSTANTIATE_TEST_SUITE_P(AllMistakes, ConfigErrorTest, ::testing::ValuesIn(kConfigErrors),
                         [](const auto &info) { return info.param.name; });

// YAML forbids duplicate keys, but yaml-cpp keeps both entries; lookups then
// silently use the first, so an operator editing the second sees no effect.
TEST(LoadConfigText, DuplicateModelNameIsRefused) {
    EXPECT_THROW(load(kProviders + kModels +
                      "  gpt-4o:\n"
                      "    - provider: openai\n"
                      "      model: gpt-4o-mini\n"
                      "      price: {input_per_mtok: 0.15, output_per_mtok: 0.60}\n"),
                 ConfigError);
}

TEST(LoadConfigText, DuplicateProviderNameIsRefused) {
    EXPECT_THROW(load(kProviders +
                      "  openai:\n"
                      "    kind: openai_compatible\n"
                      "    base_url: http://localhost:8000\n" +
                      kModels),
                 ConfigError);
}

TEST(LoadConfigFile, MissingFileIsAConfigErrorWithoutLine) {
    const std::string path = "/nonexistent/perpetuo/perpetuo.yaml";
    try {
        load_config_file(path, fake_env());
        FAIL() << "loaded a missing file";
    } catch (const ConfigError &e) {
        EXPECT_EQ(e.file(), path);
        EXPECT_EQ(e.line(), 0);
        EXPECT_EQ(e.key(), "");
        EXPECT_EQ(std::string(e.what()), path + ": cannot open the file");
    }
}

TEST(ConfigError, MessageNamesFileLineAndKey) {
    ConfigError e("perpetuo.yaml", 12, "models.gpt-4o[0].provider", "unknown provider");
    EXPECT_STREQ(e.what(), "perpetuo.yaml:12: models.gpt-4o[0].provider: unknown provider");
}

}  // namespace
}  // namespace perpetuo
