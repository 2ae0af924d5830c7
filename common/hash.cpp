// SPDX-License-Identifier: Apache-2.0
// XXH3-64 through libxxhash (Debian's libxxhash-dev).
#include "hash.hpp"

#include <xxhash.h>

#include <cstdio>
#include <new>

namespace snap::hash {

uint64_t xxh3(const void* data, size_t bytes) noexcept { return XXH3_64bits(data, bytes); }

Xxh3Stream::Xxh3Stream() : state_(XXH3_createState()) {
    if (!state_) throw std::bad_alloc();
    XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}
Xxh3Stream::~Xxh3Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void Xxh3Stream::update(const void* data, size_t bytes) noexcept {
    XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, bytes);
}
uint64_t Xxh3Stream::digest() const noexcept { return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_)); }
void Xxh3Stream::reset() noexcept { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_)); }

std::string to_hex(uint64_t digest) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(digest));
    return buf;
}

bool from_hex(std::string_view text, uint64_t& digest) {
    if (text.size() != 16) return false;
    uint64_t v = 0;
    for (char c : text) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return false;
        v = (v << 4) | static_cast<uint64_t>(d);
    }
    digest = v;
    return true;
}

}  // namespace snap::hash
