#include "config.hpp"

namespace perpetuo {

namespace {

std::string locate(const std::string &file, int line, const std::string &key,
                   const std::string &message) {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!key.empty()) out += key + ": ";
    return out + message;
}

}  // namespace

ConfigError::ConfigError(const std::string &file, int line, const std::string &key,
                         const std::string &message)
    : std::runtime_error(locate(file, line, key, message)), file_(file), line_(line), key_(key) {}

const Model *Config::find_model(std::string_view name) const {
    auto it = model_index_.find(std::string(name));
    return it == model_index_.end() ? nullptr : &models[it->second];
}

const Workspace *Config::find_workspace_by_key_hash(const std::string &sha256_hex) const {
    auto it = key_index_.find(sha256_hex);
    return it == key_index_.end() ? nullptr : &workspaces[it->second];
}

void Config::index() {
    model_index_.clear();
    key_index_.clear();
    for (std::size_t i = 0; i < models.size(); ++i) model_index_.emplace(models[i].name, i);
    for (std::size_t i = 0; i < workspaces.size(); ++i)
        for (const std::string &hash : workspaces[i].api_key_sha256) key_index_.emplace(hash, i);
}

}  // namespace perpetuo
