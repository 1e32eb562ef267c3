/* Force-included into the mlx-c build. mlx-c's private/io.h calls std::format, which libstdc++ before
 * GCC 13 lacks; this supplies the "{}"-only subset it uses when <format> is missing. */
#pragma once
#ifdef __cplusplus
#include <version>
#ifdef __cpp_lib_format
#include <format>
#else
#include <sstream>
#include <string>
#include <string_view>
namespace mlx_sys_compat {
inline void format_to(std::ostringstream& os, std::string_view fmt) { os << fmt; }
template <typename T, typename... Rest>
void format_to(std::ostringstream& os, std::string_view fmt, const T& v, const Rest&... rest) {
  auto at = fmt.find("{}");
  if (at == std::string_view::npos) {
    os << fmt;
    return;
  }
  os << fmt.substr(0, at) << v;
  format_to(os, fmt.substr(at + 2), rest...);
}
template <typename... Args>
std::string format(std::string_view fmt, const Args&... args) {
  std::ostringstream os;
  format_to(os, fmt, args...);
  return os.str();
}
} // namespace mlx_sys_compat
namespace std {
using ::mlx_sys_compat::format;
}
#endif
#endif
