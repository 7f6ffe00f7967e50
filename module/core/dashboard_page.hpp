// The built-in dashboard: dashboard/index.html, embedded at build time so
// the module serves it with no files to install and nothing fetched from
// the network.
#pragma once

#include <string_view>

namespace perpetuo {

std::string_view dashboard_page();

}  // namespace perpetuo
