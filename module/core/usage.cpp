#include "usage.hpp"

namespace perpetuo {

Micros cost_micros(const Usage &usage, const Price &price) {
    // tokens * micro-dollars-per-Mtok = pico-dollars; __int128 keeps a month
    // of heavy traffic at premium prices far from overflow.
    __int128 pico = static_cast<__int128>(usage.uncached_input_tokens) * price.input_per_mtok +
                    static_cast<__int128>(usage.cache_read_tokens) * price.cached_input_per_mtok +
                    static_cast<__int128>(usage.cache_write_tokens) * price.cache_write_per_mtok +
                    static_cast<__int128>(usage.output_tokens) * price.output_per_mtok;
    return static_cast<Micros>((pico + 500000) / 1000000);
}

}  // namespace perpetuo
