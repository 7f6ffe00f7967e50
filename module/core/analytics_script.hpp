// The Redis side of the log endpoint: a page of a workspace's request log,
// newest first, filtered through the per-provider/model/status indexes so a
// filtered page never walks the whole log.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "analytics_request.hpp"

namespace perpetuo {

std::string_view logs_script();
const std::string &logs_script_sha1();

// EVALSHA argv for one page (asks one entry past the page to learn has_more).
std::vector<std::string> logs_command(const AnalyticsRequest &request);

}  // namespace perpetuo
