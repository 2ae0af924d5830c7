// SPDX-License-Identifier: Apache-2.0
// XXH3-64 everywhere (STYLE.md): one-shot, streaming, and the 16-hex-digit text form that
// `xxhsum -H3` prints.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace snap::hash {

uint64_t xxh3(const void* data, size_t bytes) noexcept;
inline uint64_t xxh3(std::span<const std::byte> s) noexcept { return xxh3(s.data(), s.size()); }

class Xxh3Stream {
public:
    Xxh3Stream();
    ~Xxh3Stream();
    Xxh3Stream(const Xxh3Stream&) = delete;
    Xxh3Stream& operator=(const Xxh3Stream&) = delete;
    void update(const void* data, size_t bytes) noexcept;
    uint64_t digest() const noexcept;
    void reset() noexcept;

private:
    void* state_;
};

std::string to_hex(uint64_t digest);                     // 16 lower-case hex digits
bool from_hex(std::string_view text, uint64_t& digest);  // false if not 16 hex digits

}  // namespace snap::hash
