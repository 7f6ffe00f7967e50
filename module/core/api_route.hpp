// Which LLM API a request path names, whatever location prefix it came under.
#pragma once

#include <string_view>

namespace perpetuo {

enum class Api { kUnknown, kChatCompletions, kCompletions, kEmbeddings, kMessages };

// Matches the path's suffix ("/team-a/v1/chat/completions" -> chat
// completions); the query string must already be stripped.
Api api_from_path(std::string_view path);

// The provider-side path for an API, e.g. "/v1/chat/completions".
std::string_view canonical_path(Api api);

}  // namespace perpetuo
