// Reads what the gateway needs from a client's request body, and rewrites
// only the bytes it must change so everything else reaches the provider as
// the client sent it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace perpetuo {

struct RequestFacts {
    std::string model;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage was already true
    std::int64_t max_output_tokens = -1;  // max_tokens / max_completion_tokens, -1 if absent
    std::int64_t prompt_bytes = 0;        // text the model reads, for estimates
};

struct RequestError {
    std::string message;
};

inline constexpr std::size_t kDefaultMaxJsonDepth = 64;

// Validates the whole document (invalid JSON, or JSON nested deeper than
// `max_depth`, is refused, not half-read). Returns facts or, through *error,
// why the request is not acceptable.
std::optional<RequestFacts> parse_request(std::string_view body, RequestError *error,
                                          std::size_t max_depth = kDefaultMaxJsonDepth);

struct Rewrite {
    std::string_view model;  // replaces the top-level "model" value when not empty
    bool add_include_usage = false;
};

// Returns the body with the rewrites applied; requires a body that
// parse_request accepted.
std::string rewrite_request(std::string_view body, const Rewrite &rewrite);

// Rough token count for text of this many bytes, used only when a provider
// reports nothing (records say the numbers are estimated).
std::int64_t estimate_tokens(std::int64_t bytes);

}  // namespace perpetuo
