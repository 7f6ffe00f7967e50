// Token usage in one normalized form, whichever provider reported it.
#pragma once

#include <cstdint>

#include "money.hpp"

namespace perpetuo {

// Input is split by how it is priced, so each token is priced exactly once:
// OpenAI's prompt_tokens includes its cached tokens, Anthropic's input_tokens
// excludes cache reads and writes; both are brought to this shape.
struct Usage {
    std::int64_t uncached_input_tokens = 0;
    std::int64_t cache_read_tokens = 0;
    std::int64_t cache_write_tokens = 0;
    std::int64_t output_tokens = 0;
    bool reported = false;   // the provider told us (at least part of) the usage
    bool estimated = false;  // some of these numbers are our estimate

    std::int64_t input_tokens() const {
        return uncached_input_tokens + cache_read_tokens + cache_write_tokens;
    }
    std::int64_t total_tokens() const { return input_tokens() + output_tokens; }
};

// Prices in micro-dollars per million tokens.
struct Price {
    Micros input_per_mtok = 0;
    Micros output_per_mtok = 0;
    Micros cached_input_per_mtok = 0;  // defaults to the input price when not configured
    Micros cache_write_per_mtok = 0;   // defaults to the input price when not configured
};

// Cost of a usage at a price, rounded half up to the micro-dollar once, after
// summing every kind, so a request is never billed for rounding four times.
Micros cost_micros(const Usage &usage, const Price &price);

}  // namespace perpetuo
