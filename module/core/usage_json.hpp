// Reads token usage out of provider JSON documents (whole bodies or single
// SSE event payloads). Inputs must be readable 64 bytes past their end
// (`capacity`), as simdjson requires; malformed input yields `ok == false`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "usage.hpp"

namespace perpetuo {

struct UsageReading {
    bool ok = false;           // the document parsed
    bool has_usage = false;    // it carried a usage object
    bool usage_only = false;   // OpenAI: an empty "choices" next to usage (the include_usage chunk)
    Usage usage;               // meaningful when has_usage
    std::int64_t text_bytes = 0;  // generated text it carried, for estimates
};

// OpenAI (chat, completions, embeddings): a whole response body or a stream chunk.
UsageReading read_openai_json(std::string_view json, std::size_t capacity);

// Anthropic Messages: a whole response body, or one stream event's data.
// For message_start the usage is the input side and the first output count;
// for message_delta it is the cumulative output count only.
enum class AnthropicPart { kBody, kMessageStart, kMessageDelta, kContentDelta, kOther };
AnthropicPart anthropic_part(std::string_view event_type);
UsageReading read_anthropic_json(std::string_view json, std::size_t capacity, AnthropicPart part);

}  // namespace perpetuo
