// parse_request on arbitrary bodies; whatever it accepts, rewrite_request
// must turn into a body it accepts again, naming the new model. (Whether it
// then asks for usage is not checked: the rewrite appends include_usage and
// relies on providers taking the last duplicate, parse_request reads the
// first.) Byte 0 picks the model, among names the configuration allows.
#include "fuzz_support.hpp"
#include "request_body.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using perpetuo::fuzz::check;
    if (size < 1) return 0;
    static const char *const kModels[] = {"gpt-4o-mini", "openai/gpt-4o", "llama3:8b",
                                          "claude-3-5-sonnet@20240620", "m.x_y-z+1"};
    const char *model = kModels[data[0] % 5];
    std::string_view body = perpetuo::fuzz::as_text(data + 1, size - 1);
    perpetuo::RequestError error;
    std::optional<perpetuo::RequestFacts> facts = perpetuo::parse_request(body, &error);
    if (!facts) return 0;
    check(!facts->model.empty(), "an accepted request names a model");

    perpetuo::Rewrite rewrite;
    rewrite.model = model;
    rewrite.add_include_usage = true;
    std::string rewritten = perpetuo::rewrite_request(body, rewrite);
    std::optional<perpetuo::RequestFacts> again = perpetuo::parse_request(rewritten, &error);
    check(again.has_value(), "a rewritten request is still accepted");
    check(again->model == model, "the rewritten request names the new model");
    check(again->stream == facts->stream, "the rewrite keeps stream");
    return 0;
}
