// Python-compatible number formatting shared by escape.cpp (json_encode)
// and the template engine (str() of a value). Private to src/web/.
#pragma once

#include <string>

namespace squall::web::detail {

/// Appends Python's repr(float): the shortest text that reads back as `d`,
/// fixed notation for decimal exponents -4..15 ("0.0001", "1e+16", "3.0"),
/// "inf", "-inf", "nan".
void append_python_float(std::string& out, double d);

}  // namespace squall::web::detail
