// load_config_text on arbitrary YAML: every mistake must surface as a
// ConfigError; any other exception escaping is a bug (std::terminate aborts).
#include "config_yaml.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string text(perpetuo::fuzz::as_text(data, size));
    // public_key_file is read from disk: keep the fuzzer off endless or
    // blocking files (/dev/zero, /dev/stdin, /proc/...).
    for (const char *special : {"dev/", "proc/", "sys/"})
        if (text.find(special) != std::string::npos) return 0;
    perpetuo::EnvLookup env = [](const std::string &name) -> std::optional<std::string> {
        return "env-value-of-" + name;
    };
    try {
        perpetuo::Config config = perpetuo::load_config_text(text, "fuzz.yaml", env);
        for (const perpetuo::Model &m : config.models)
            perpetuo::fuzz::check(config.find_model(m.name) != nullptr, "every model is found");
    } catch (const perpetuo::ConfigError &) {
    }
    return 0;
}
