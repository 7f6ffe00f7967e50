// Loads and validates the operator's YAML into a Config.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "config.hpp"

namespace perpetuo {

// Secrets come from the environment; tests inject their own lookup.
using EnvLookup = std::function<std::optional<std::string>(const std::string &name)>;

EnvLookup process_env();

// Throws ConfigError naming file, line and key for every mistake.
Config load_config_file(const std::string &path, const EnvLookup &env);
Config load_config_text(const std::string &text, const std::string &path_for_errors,
                        const EnvLookup &env);

}  // namespace perpetuo
