#include "request_body.hpp"

#include <simdjson.h>

#include <algorithm>
#include <new>
#include <vector>

#include "json_text.hpp"

namespace perpetuo {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr std::size_t kMaxDepth = 64;

std::int64_t text_bytes(element value, std::size_t depth) {
    // Counts the string content anywhere inside messages/prompt/system/input:
    // content may be a string, a list of parts, or nested tool structures.
    if (depth > kMaxDepth) return 0;
    switch (value.type()) {
        case element_type::STRING:
            return static_cast<std::int64_t>(std::string_view(value).size());
        case element_type::ARRAY: {
            std::int64_t n = 0;
            for (element item : simdjson::dom::array(value)) n += text_bytes(item, depth + 1);
            return n;
        }
        case element_type::OBJECT: {
            std::int64_t n = 0;
            for (auto field : simdjson::dom::object(value)) {
                if (field.key == "image_url" || field.key == "source") continue;  // not text
                n += text_bytes(field.value, depth + 1);
            }
            return n;
        }
        default:
            return 0;
    }
}

simdjson::dom::parser &dom_parser(std::size_t max_depth) {
    thread_local simdjson::dom::parser parser;
    if (parser.max_depth() != max_depth &&
        parser.allocate(std::max<std::size_t>(parser.capacity(), 4096), max_depth) !=
            simdjson::SUCCESS)
        throw std::bad_alloc();
    return parser;
}

}  // namespace

std::optional<RequestFacts> parse_request(std::string_view body, RequestError *error,
                                          std::size_t max_depth) {
    element root;
    if (auto err = dom_parser(max_depth).parse(body.data(), body.size()).get(root)) {
        error->message = std::string("request body is not valid JSON: ") +
                         simdjson::error_message(err);
        return std::nullopt;
    }
    if (root.type() != element_type::OBJECT) {
        error->message = "request body must be a JSON object";
        return std::nullopt;
    }
    RequestFacts facts;
    simdjson::dom::object top(root);
    // The gateway reads the first of duplicate keys while providers keep the
    // last: a client could be billed for one model and served another.
    std::vector<std::string_view> keys;
    for (auto field : top) {
        if (std::find(keys.begin(), keys.end(), field.key) != keys.end()) {
            error->message = "duplicate key \"" + std::string(field.key) + "\" in request body";
            return std::nullopt;
        }
        keys.push_back(field.key);
    }
    element model;
    if (top["model"].get(model) != simdjson::SUCCESS) {
        error->message = "request body has no \"model\"";
        return std::nullopt;
    }
    std::string_view model_name;
    if (model.get(model_name) != simdjson::SUCCESS || model_name.empty()) {
        error->message = "\"model\" must be a non-empty string";
        return std::nullopt;
    }
    facts.model = std::string(model_name);
    element value;
    if (top["stream"].get(value) == simdjson::SUCCESS && !value.is_null()) {
        bool stream = false;
        if (value.get(stream) != simdjson::SUCCESS) {
            error->message = "\"stream\" must be a boolean";
            return std::nullopt;
        }
        facts.stream = stream;
    }
    if (top["stream_options"].get(value) == simdjson::SUCCESS && !value.is_null()) {
        if (!value.is_object()) {
            error->message = "\"stream_options\" must be an object";
            return std::nullopt;
        }
        int seen = 0;
        for (auto option : simdjson::dom::object(value)) {
            if (option.key != "include_usage") continue;
            // One boolean only: a rewrite must never meet an object here, and
            // a duplicate would be read one way here and another by providers.
            if (++seen > 1 || !option.value.is_bool()) {
                error->message = "\"stream_options.include_usage\" must be one boolean";
                return std::nullopt;
            }
            facts.include_usage = bool(option.value);
        }
    }
    for (const char *key : {"max_completion_tokens", "max_tokens"}) {
        std::int64_t n = 0;
        if (top[key].get(n) == simdjson::SUCCESS && n >= 0) {
            facts.max_output_tokens = n;
            break;
        }
    }
    for (const char *key : {"messages", "prompt", "system", "input"})
        if (top[key].get(value) == simdjson::SUCCESS) facts.prompt_bytes += text_bytes(value, 0);
    return facts;
}

std::string rewrite_request(std::string_view body, const Rewrite &rewrite) {
    // On-demand parsing hands back views into the input, so each change is a
    // splice at a known offset and every other byte stays as the client sent it.
    simdjson::padded_string padded(body);
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document doc = parser.iterate(padded);
    std::string_view model_span, options_span;
    for (auto field : doc.get_object()) {
        std::string_view key = field.unescaped_key().value();
        if (key == "model" && !rewrite.model.empty()) {
            model_span = field.value().raw_json_token();
        } else if (key == "stream_options" && rewrite.add_include_usage) {
            simdjson::ondemand::value v = field.value();
            if (v.type().value() == simdjson::ondemand::json_type::object) {
                simdjson::ondemand::object options = v.get_object().value();
                options_span = options.raw_json().value();
            } else {
                options_span = v.raw_json_token();
            }
        }
    }
    auto offset = [&](std::string_view span) {
        return static_cast<std::size_t>(span.data() - padded.data());
    };
    struct Splice {
        std::size_t at, len;
        std::string text;
    };
    Splice splices[2];
    int count = 0;
    if (!model_span.empty()) {
        std::string quoted;
        append_json_string(quoted, rewrite.model);
        // Trim trailing whitespace the tokenizer may include.
        while (!model_span.empty() && model_span.back() != '"') model_span.remove_suffix(1);
        splices[count++] = {offset(model_span), model_span.size(), quoted};
    }
    if (rewrite.add_include_usage) {
        if (!options_span.empty()) {
            std::string_view inner = options_span;
            while (!inner.empty() && inner.back() != '}' && inner.front() == '{')
                inner.remove_suffix(1);
            bool object = !inner.empty() && inner.front() == '{';
            if (object) {
                // Keep the client's other stream options; set include_usage in
                // place when the client gave it (as false), else add it.
                simdjson::padded_string options(inner);
                simdjson::ondemand::parser options_parser;
                simdjson::ondemand::document options_doc = options_parser.iterate(options);
                std::string_view flag;
                for (auto field : options_doc.get_object())
                    if (field.unescaped_key().value() == "include_usage")
                        flag = field.value().raw_json_token();
                if (!flag.empty()) {
                    while (!flag.empty() && std::isspace(static_cast<unsigned char>(flag.back())))
                        flag.remove_suffix(1);
                    std::size_t at = offset(inner) + static_cast<std::size_t>(flag.data() -
                                                                              options.data());
                    splices[count++] = {at, flag.size(), "true"};
                } else {
                    std::string_view content = inner.substr(1, inner.size() - 2);
                    bool empty = content.find_first_not_of(" \t\r\n") == std::string_view::npos;
                    splices[count++] = {offset(inner) + inner.size() - 1, 0,
                                        std::string(empty ? "" : ",") + "\"include_usage\":true"};
                }
            } else {
                while (!options_span.empty() && std::isspace(static_cast<unsigned char>(
                                                    options_span.back())))
                    options_span.remove_suffix(1);
                splices[count++] = {offset(options_span), options_span.size(),
                                    "{\"include_usage\":true}"};
            }
        } else {
            std::size_t close = body.find_last_of('}');
            std::size_t open = body.find_first_of('{');
            bool empty_object =
                body.substr(open + 1, close - open - 1).find_first_not_of(" \t\r\n") ==
                std::string_view::npos;
            splices[count++] = {close, 0,
                                std::string(empty_object ? "" : ",") +
                                    "\"stream_options\":{\"include_usage\":true}"};
        }
    }
    if (count == 2 && splices[0].at > splices[1].at) std::swap(splices[0], splices[1]);
    std::string out;
    out.reserve(body.size() + 64);
    std::size_t pos = 0;
    for (int i = 0; i < count; ++i) {
        out.append(body.substr(pos, splices[i].at - pos));
        out.append(splices[i].text);
        pos = splices[i].at + splices[i].len;
    }
    out.append(body.substr(pos));
    return out;
}

std::int64_t estimate_tokens(std::int64_t bytes) { return bytes <= 0 ? 0 : (bytes + 3) / 4; }

}  // namespace perpetuo
