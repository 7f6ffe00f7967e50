#include "api_route.hpp"

namespace perpetuo {

namespace {

bool ends_with_segment(std::string_view path, std::string_view suffix) {
    if (path.size() < suffix.size()) return false;
    if (path.substr(path.size() - suffix.size()) != suffix) return false;
    // "/xchat/completions" must not match "chat/completions".
    return path.size() == suffix.size() || path[path.size() - suffix.size() - 1] == '/';
}

}  // namespace

Api api_from_path(std::string_view path) {
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (ends_with_segment(path, "chat/completions")) return Api::kChatCompletions;
    if (ends_with_segment(path, "completions")) return Api::kCompletions;
    if (ends_with_segment(path, "embeddings")) return Api::kEmbeddings;
    if (ends_with_segment(path, "messages")) return Api::kMessages;
    return Api::kUnknown;
}

std::string_view canonical_path(Api api) {
    switch (api) {
        case Api::kChatCompletions:
            return "/v1/chat/completions";
        case Api::kCompletions:
            return "/v1/completions";
        case Api::kEmbeddings:
            return "/v1/embeddings";
        case Api::kMessages:
            return "/v1/messages";
        case Api::kUnknown:
            break;
    }
    return "";
}

}  // namespace perpetuo
