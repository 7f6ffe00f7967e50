// Helpers shared by the unit test files: fixtures, SSE reshaping, and the
// every-chunking check the framer and meter suites use, so a framing bug is
// reported once per test with the offsets where it shows.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "usage.hpp"

namespace perpetuo {
namespace testing_support {

inline std::string read_fixture(const std::string &name) {
    std::ifstream in(std::string(PERPETUO_FIXTURES) + "/" + name, std::ios::binary);
    if (!in) throw std::runtime_error("missing fixture " + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

struct LineEnd {
    const char *name;
    const char *eol;
};

inline void PrintTo(const LineEnd &e, std::ostream *os) {
    *os << e.name;
}

inline const LineEnd kLineEnds[] = {{"LF", "\n"}, {"CRLF", "\r\n"}, {"CR", "\r"}};

// A gtest parameter name made of `text`'s letters and digits.
inline std::string test_name(std::string text) {
    std::replace_if(
        text.begin(), text.end(),
        [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
    return text;
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

using Chunks = std::vector<std::string_view>;

enum class Cuts {
    kTwoChunks,              // every split offset, then one byte at a time
    kWithEmptyChunksBetween  // the same with an empty chunk at every cut
};

inline Chunks cut(std::string_view text, const std::vector<std::size_t> &offsets, Cuts cuts) {
    Chunks chunks;
    std::size_t from = 0;
    for (std::size_t at : offsets) {
        chunks.push_back(text.substr(from, at - from));
        if (cuts == Cuts::kWithEmptyChunksBetween) chunks.push_back(std::string_view());
        from = at;
    }
    chunks.push_back(text.substr(from));
    return chunks;
}

// "" when equal, else a line saying what differed.
template <typename T>
std::string differs(const char *what, const T &actual, const T &expected) {
    if (actual == expected) return "";
    return std::string(what) + ": got " + ::testing::PrintToString(actual) + "\n  want " +
           ::testing::PrintToString(expected) + "\n";
}

// Long texts are shown around their first difference only.
inline std::string differs(const char *what, const std::string &actual,
                           const std::string &expected) {
    if (actual == expected) return "";
    std::size_t at = 0;
    while (at < actual.size() && at < expected.size() && actual[at] == expected[at]) ++at;
    std::size_t from = at < 40 ? 0 : at - 40;
    return std::string(what) + ": first difference at byte " + std::to_string(at) + " (sizes " +
           std::to_string(actual.size()) + " vs " + std::to_string(expected.size()) +
           ")\n  got  ..." + ::testing::PrintToString(actual.substr(from, 80)) + "\n  want ..." +
           ::testing::PrintToString(expected.substr(from, 80)) + "\n";
}

inline std::string describe(const Usage &u) {
    return "uncached=" + std::to_string(u.uncached_input_tokens) +
           " cache_read=" + std::to_string(u.cache_read_tokens) +
           " cache_write=" + std::to_string(u.cache_write_tokens) +
           " output=" + std::to_string(u.output_tokens) + (u.reported ? " reported" : "") +
           (u.estimated ? " estimated" : "");
}

inline Usage make_usage(std::int64_t uncached, std::int64_t cache_read, std::int64_t cache_write,
                        std::int64_t output, bool reported, bool estimated) {
    Usage u;
    u.uncached_input_tokens = uncached;
    u.cache_read_tokens = cache_read;
    u.cache_write_tokens = cache_write;
    u.output_tokens = output;
    u.reported = reported;
    u.estimated = estimated;
    return u;
}

// Runs `check` on `text` cut every way `cuts` names. `check` returns "" when
// that chunking behaved, else what differed. Fails once, listing the failing
// offsets and describing the first, so one framing bug is not a page per offset.
template <typename Check>
void expect_every_chunking(std::string_view text, Check check, Cuts cuts = Cuts::kTwoChunks) {
    std::vector<std::size_t> failed_offsets;
    std::string first_failure;
    auto run = [&](const std::string &how, const Chunks &chunks) {
        std::string why = check(chunks);
        if (why.empty()) return false;
        if (first_failure.empty()) first_failure = how + ":\n" + why;
        return true;
    };
    for (std::size_t offset = 0; offset <= text.size(); ++offset)
        if (run("split at " + std::to_string(offset), cut(text, {offset}, cuts)))
            failed_offsets.push_back(offset);
    std::vector<std::size_t> every_byte;
    for (std::size_t i = 1; i < text.size(); ++i) every_byte.push_back(i);
    bool bytewise_failed = run("one byte at a time", cut(text, every_byte, cuts));

    std::string offsets;
    for (std::size_t i = 0; i < failed_offsets.size(); ++i) {
        // Runs of consecutive offsets are shown as ranges.
        std::size_t j = i;
        while (j + 1 < failed_offsets.size() && failed_offsets[j + 1] == failed_offsets[j] + 1) ++j;
        offsets += (offsets.empty() ? "" : ", ") + std::to_string(failed_offsets[i]);
        if (j > i) offsets += "-" + std::to_string(failed_offsets[j]);
        i = j;
    }
    EXPECT_TRUE(failed_offsets.empty() && !bytewise_failed)
        << "differs when split at offsets [" << offsets << "] of " << text.size()
        << (bytewise_failed ? " and when fed one byte at a time" : "")
        << "\nfirst: " << first_failure;
}

}  // namespace testing_support
}  // namespace perpetuo
