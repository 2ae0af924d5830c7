// SPDX-License-Identifier: Apache-2.0
// The method registry: methods register a factory from their own translation unit.
#include "method.hpp"

#include "common/error.hpp"

namespace snap::record {

namespace {
std::map<std::string, MethodFactory>& registry() {
    static std::map<std::string, MethodFactory> r;  // function-local: safe during static init
    return r;
}
}  // namespace

bool register_method(const std::string& name, MethodFactory factory) {
    registry()[name] = std::move(factory);
    return true;
}

std::unique_ptr<Method> make_method(const std::string& name, const Options& opt) {
    auto it = registry().find(name);
    if (it == registry().end()) {
        std::string known;
        for (auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
        throw UsageError("unknown method '" + name + "' (available: " + known + ")");
    }
    return it->second(opt);
}

std::vector<std::string> method_names() {
    std::vector<std::string> out;
    for (auto& [n, f] : registry()) out.push_back(n);
    return out;
}

}  // namespace snap::record
