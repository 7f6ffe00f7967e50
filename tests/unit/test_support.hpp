// Helpers shared by the unit test files: fixture loading and the SSE
// reshaping that several suites use to check framing at every split.
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace perpetuo {
namespace testing_support {

inline std::string read_fixture(const std::string &name) {
    std::ifstream in(std::string(PERPETUO_FIXTURES) + "/" + name, std::ios::binary);
    if (!in) throw std::runtime_error("missing fixture " + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Fixtures are stored with LF line ends; CRLF and CR variants are derived.
inline std::string with_line_ends(std::string_view lf_text, std::string_view eol) {
    std::string out;
    for (char c : lf_text) {
        if (c == '\n') {
            out.append(eol);
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// Splits an LF-terminated SSE stream into the raw byte ranges of its events:
// each block runs through the blank line that ends it. A trailing unterminated
// block, if any, is the last element.
inline std::vector<std::string> sse_blocks(std::string_view lf_text) {
    std::vector<std::string> blocks;
    std::string current;
    std::size_t pos = 0;
    while (pos < lf_text.size()) {
        std::size_t end = lf_text.find('\n', pos);
        if (end == std::string_view::npos) {
            current.append(lf_text.substr(pos));
            break;
        }
        std::string_view line = lf_text.substr(pos, end - pos);
        current.append(lf_text.substr(pos, end - pos + 1));
        pos = end + 1;
        if (line.empty()) {
            blocks.push_back(current);
            current.clear();
        }
    }
    if (!current.empty()) blocks.push_back(current);
    return blocks;
}

// The first chunks of `text` up to (not including) the first occurrence of
// `marker`: a stream cut off by the provider at that point.
inline std::string cut_before(const std::string &text, std::string_view marker) {
    std::size_t at = text.find(marker);
    if (at == std::string::npos) throw std::runtime_error("marker not in text");
    return text.substr(0, at);
}

}  // namespace testing_support
}  // namespace perpetuo
