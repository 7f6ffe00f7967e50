#include "usage_json.hpp"

#include <simdjson.h>

namespace perpetuo {

namespace {

namespace od = simdjson::ondemand;

od::parser &event_parser() {
    thread_local od::parser parser;
    return parser;
}

std::int64_t int_or_zero(od::value value) {
    std::int64_t n = 0;
    if (value.get_int64().get(n) != simdjson::SUCCESS || n < 0) return 0;
    return n;
}

bool is_null(od::value value) {
    bool null = false;
    return value.is_null().get(null) == simdjson::SUCCESS && null;
}

// {"prompt_tokens", "completion_tokens", "prompt_tokens_details": {"cached_tokens"}};
// the Responses API spells them input_tokens / output_tokens / input_tokens_details.
bool read_openai_usage(od::object usage, Usage *out) {
    std::int64_t prompt = 0, completion = 0, cached = 0;
    for (auto field : usage) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
        od::value v;
        if (field.value().get(v) != simdjson::SUCCESS) return false;
        if (key == "prompt_tokens" || key == "input_tokens") {
            prompt = int_or_zero(v);
        } else if (key == "completion_tokens" || key == "output_tokens") {
            completion = int_or_zero(v);
        } else if (key == "prompt_tokens_details" || key == "input_tokens_details") {
            od::object details;
            if (v.get_object().get(details) != simdjson::SUCCESS) continue;
            for (auto d : details) {
                std::string_view dkey;
                od::value dv;
                if (d.unescaped_key().get(dkey) != simdjson::SUCCESS) return false;
                if (d.value().get(dv) != simdjson::SUCCESS) return false;
                if (dkey == "cached_tokens") cached = int_or_zero(dv);
            }
        }
    }
    if (cached > prompt) cached = prompt;
    out->uncached_input_tokens = prompt - cached;
    out->cache_read_tokens = cached;
    out->cache_write_tokens = 0;
    out->output_tokens = completion;
    out->reported = true;
    return true;
}

// Sums the generated text in choices[].delta.content / message.content / text.
std::int64_t openai_choice_text(od::array choices, std::size_t *count) {
    std::int64_t n = 0;
    for (auto choice_result : choices) {
        ++*count;
        od::object choice;
        if (choice_result.get_object().get(choice) != simdjson::SUCCESS) continue;
        for (auto field : choice) {
            std::string_view key;
            if (field.unescaped_key().get(key) != simdjson::SUCCESS) break;
            od::value v;
            if (field.value().get(v) != simdjson::SUCCESS) break;
            if (key == "text") {
                std::string_view text;
                if (v.get_string().get(text) == simdjson::SUCCESS) n += text.size();
            } else if (key == "delta" || key == "message") {
                od::object msg;
                if (v.get_object().get(msg) != simdjson::SUCCESS) continue;
                od::value content;
                if (msg.find_field_unordered("content").get(content) != simdjson::SUCCESS)
                    continue;
                std::string_view text;
                if (content.get_string().get(text) == simdjson::SUCCESS) n += text.size();
            }
        }
    }
    return n;
}

}  // namespace

UsageReading read_openai_json(std::string_view json, std::size_t capacity) {
    UsageReading reading;
    od::document doc;
    if (event_parser().iterate(json.data(), json.size(), capacity).get(doc) != simdjson::SUCCESS)
        return reading;
    od::object top;
    if (doc.get_object().get(top) != simdjson::SUCCESS) return reading;
    bool choices_empty = false;
    for (auto field : top) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return reading;
        od::value v;
        if (field.value().get(v) != simdjson::SUCCESS) return reading;
        if (key == "usage") {
            if (is_null(v)) continue;
            od::object usage;
            if (v.get_object().get(usage) != simdjson::SUCCESS) return reading;
            if (!read_openai_usage(usage, &reading.usage)) return reading;
            reading.has_usage = true;
        } else if (key == "choices") {
            od::array choices;
            if (v.get_array().get(choices) != simdjson::SUCCESS) return reading;
            std::size_t count = 0;
            reading.text_bytes += openai_choice_text(choices, &count);
            choices_empty = count == 0;
        }
    }
    reading.usage_only = reading.has_usage && choices_empty;
    reading.ok = true;
    return reading;
}

AnthropicPart anthropic_part(std::string_view event_type) {
    if (event_type == "message_start") return AnthropicPart::kMessageStart;
    if (event_type == "message_delta") return AnthropicPart::kMessageDelta;
    if (event_type == "content_block_delta") return AnthropicPart::kContentDelta;
    return AnthropicPart::kOther;
}

namespace {

void read_anthropic_usage(od::object usage, Usage *out) {
    for (auto field : usage) {
        std::string_view key;
        od::value v;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return;
        if (field.value().get(v) != simdjson::SUCCESS) return;
        if (key == "input_tokens") {
            out->uncached_input_tokens = int_or_zero(v);
        } else if (key == "cache_read_input_tokens") {
            out->cache_read_tokens = int_or_zero(v);
        } else if (key == "cache_creation_input_tokens") {
            out->cache_write_tokens = int_or_zero(v);
        } else if (key == "output_tokens") {
            out->output_tokens = int_or_zero(v);
        }
    }
    out->reported = true;
}

std::int64_t anthropic_content_text(od::array content) {
    std::int64_t n = 0;
    for (auto block_result : content) {
        od::object block;
        if (block_result.get_object().get(block) != simdjson::SUCCESS) continue;
        od::value text;
        std::string_view s;
        if (block.find_field_unordered("text").get(text) == simdjson::SUCCESS &&
            text.get_string().get(s) == simdjson::SUCCESS)
            n += s.size();
    }
    return n;
}

}  // namespace

UsageReading read_anthropic_json(std::string_view json, std::size_t capacity, AnthropicPart part) {
    UsageReading reading;
    od::document doc;
    if (event_parser().iterate(json.data(), json.size(), capacity).get(doc) != simdjson::SUCCESS)
        return reading;
    od::object top;
    if (doc.get_object().get(top) != simdjson::SUCCESS) return reading;
    for (auto field : top) {
        std::string_view key;
        od::value v;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return reading;
        if (field.value().get(v) != simdjson::SUCCESS) return reading;
        if (key == "usage" && (part == AnthropicPart::kBody || part == AnthropicPart::kMessageDelta)) {
            od::object usage;
            if (v.get_object().get(usage) != simdjson::SUCCESS) continue;
            read_anthropic_usage(usage, &reading.usage);
            reading.has_usage = true;
        } else if (key == "message" && part == AnthropicPart::kMessageStart) {
            od::object message;
            if (v.get_object().get(message) != simdjson::SUCCESS) return reading;
            od::value usage_value;
            od::object usage;
            if (message.find_field_unordered("usage").get(usage_value) == simdjson::SUCCESS &&
                usage_value.get_object().get(usage) == simdjson::SUCCESS) {
                read_anthropic_usage(usage, &reading.usage);
                reading.has_usage = true;
            }
        } else if (key == "content" && part == AnthropicPart::kBody) {
            od::array content;
            if (v.get_array().get(content) == simdjson::SUCCESS)
                reading.text_bytes += anthropic_content_text(content);
        } else if (key == "delta" && part == AnthropicPart::kContentDelta) {
            od::object delta;
            od::value text;
            std::string_view s;
            if (v.get_object().get(delta) == simdjson::SUCCESS &&
                delta.find_field_unordered("text").get(text) == simdjson::SUCCESS &&
                text.get_string().get(s) == simdjson::SUCCESS)
                reading.text_bytes += s.size();
        }
    }
    reading.ok = true;
    return reading;
}

}  // namespace perpetuo
