// SPDX-License-Identifier: Apache-2.0
// Event decoding for the bpf recording method: layouts, address resolution, first touches.
#include "common/bpf/decode.hpp"

#include "common/error.hpp"

#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace snap::bpf {

namespace {

constexpr uint64_t kGiB = 1ull << 30;

std::string hex(uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

std::optional<uint64_t> parse_size(const std::string& text) {
    if (text.empty()) return std::nullopt;
    std::string s = text;
    unsigned shift = 0;
    switch (s.back()) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: break;
    }
    if (shift) s.pop_back();
    if (s.empty()) return std::nullopt;
    int base = 10;
    size_t i = 0;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    uint64_t v = 0;
    for (; i < s.size(); ++i) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return std::nullopt;
        if (v > (UINT64_MAX - d) / base) return std::nullopt;
        v = v * base + d;
    }
    if (shift && v > (UINT64_MAX >> shift)) return std::nullopt;
    return v << shift;
}

GpaMap GpaMap::identity(uint64_t image_bytes) {
    if (image_bytes > 3 * kGiB)
        throw UsageError("image is larger than 3 GiB: its guest-physical layout is not the identity",
                         "give the VMM's layout with --gpa-map, e.g. --gpa-map 0:0:3G,4G:3G:REST_BYTES");
    GpaMap m;
    m.regions_.push_back({0, 0, image_bytes});
    return m;
}

GpaMap GpaMap::parse(const std::string& text, uint64_t image_bytes) {
    GpaMap m;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        size_t a = item.find(':');
        size_t b = a == std::string::npos ? a : item.find(':', a + 1);
        if (b == std::string::npos || item.find(':', b + 1) != std::string::npos)
            throw UsageError("--gpa-map: '" + item + "': expected GPA:OFFSET:SIZE");
        auto gpa = parse_size(item.substr(0, a));
        auto off = parse_size(item.substr(a + 1, b - a - 1));
        auto size = parse_size(item.substr(b + 1));
        if (!gpa || !off || !size) throw UsageError("--gpa-map: '" + item + "': bad number");
        if (*size == 0) throw UsageError("--gpa-map: '" + item + "': empty region");
        if ((*gpa | *off | *size) % kKernelPageBytes)
            throw UsageError("--gpa-map: '" + item + "': not aligned to 4 KiB");
        if (*gpa + *size < *gpa || *off + *size < *off || *off + *size > image_bytes)
            throw UsageError("--gpa-map: '" + item + "': region ends past the image (" +
                             std::to_string(image_bytes) + " bytes)");
        m.regions_.push_back({*gpa, *off, *size});
    }
    if (m.regions_.empty()) throw UsageError("--gpa-map: no regions");
    std::sort(m.regions_.begin(), m.regions_.end(),
              [](const GpaRegion& x, const GpaRegion& y) { return x.gpa < y.gpa; });
    for (size_t i = 1; i < m.regions_.size(); ++i)
        if (m.regions_[i - 1].gpa + m.regions_[i - 1].bytes > m.regions_[i].gpa)
            throw UsageError("--gpa-map: guest-physical regions overlap");
    auto by_off = m.regions_;
    std::sort(by_off.begin(), by_off.end(),
              [](const GpaRegion& x, const GpaRegion& y) { return x.offset < y.offset; });
    for (size_t i = 1; i < by_off.size(); ++i)
        if (by_off[i - 1].offset + by_off[i - 1].bytes > by_off[i].offset)
            throw UsageError("--gpa-map: image regions overlap");
    return m;
}

std::optional<uint64_t> GpaMap::to_offset(uint64_t gpa) const {
    auto it = std::upper_bound(regions_.begin(), regions_.end(), gpa,
                               [](uint64_t g, const GpaRegion& r) { return g < r.gpa; });
    if (it == regions_.begin()) return std::nullopt;
    --it;
    if (gpa - it->gpa >= it->bytes) return std::nullopt;
    return it->offset + (gpa - it->gpa);
}

std::string GpaMap::to_string() const {
    std::string s;
    for (auto& r : regions_) {
        if (!s.empty()) s += ',';
        s += hex(r.gpa) + ':' + hex(r.offset) + ':' + hex(r.bytes);
    }
    return s;
}

VaddrResolver::VaddrResolver(dev_t image_dev, uint64_t image_ino, std::string image_path, MapsReader reader)
    : dev_(image_dev), ino_(image_ino), path_(std::move(image_path)), reader_(std::move(reader)) {}

// 1: inside a mapping of the image (offset set); 0: inside another mapping; -1: unknown.
int VaddrResolver::lookup(pid_t tgid, uint64_t vaddr, uint64_t& offset) const {
    auto it = regions_.find(tgid);
    if (it == regions_.end()) return -1;
    for (auto& r : it->second.image)
        if (vaddr >= r.start && vaddr < r.end) {
            offset = r.file_offset + (vaddr - r.start);
            return 1;
        }
    for (auto& [start, end] : it->second.other)
        if (vaddr >= start && vaddr < end) return 0;
    return -1;
}

std::optional<uint64_t> VaddrResolver::to_offset(pid_t tgid, uint64_t vaddr) {
    uint64_t off;
    int known = lookup(tgid, vaddr, off);
    if (known == 1) return off;
    if (known == 0) return std::nullopt;  // heap, stack, libraries: no need to re-read
    std::vector<sys::MapsEntry> entries;
    try {
        entries = reader_(tgid);
        ++maps_reads_;
    } catch (const Error&) {
        return std::nullopt;  // gone: keep what we knew
    }
    Regions r;
    r.image = sys::find_image_regions(entries, dev_, ino_);
    for (auto& e : entries) {
        bool same_file = e.inode == ino_ && e.dev_major == major(dev_) && e.dev_minor == minor(dev_);
        // Stacked filesystems (overlayfs) show another device in maps: fall back to the path.
        if (!same_file && !path_.empty() && e.path == path_ && e.end > e.start)
            r.image.push_back({e.start, e.end, e.offset, e.shared, e.write});
        else if (!same_file)
            r.other.emplace_back(e.start, e.end);
    }
    regions_[tgid] = std::move(r);
    return lookup(tgid, vaddr, off) == 1 ? std::optional<uint64_t>(off) : std::nullopt;
}

const char* source_name(uint8_t source) {
    switch (source) {
        case SNAPBPF_SRC_FILE: return "fault";
        case SNAPBPF_SRC_VADDR: return "fault_maps";
        case SNAPBPF_SRC_KVM_FAULT: return "kvm_page_fault";
        case SNAPBPF_SRC_KVM_SPTE: return "kvm_mmu_set_spte";
        default: return "unknown";
    }
}

TouchLog::TouchLog(uint64_t image_bytes, uint32_t page_size) : image_bytes_(image_bytes), page_size_(page_size) {}

void TouchLog::add(const snapbpf_event& ev, std::optional<uint64_t> image_offset) {
    ++counters_.events;
    if (ev.source < SNAPBPF_SRC_COUNT) ++counters_.by_source[ev.source];
    if (ev.flags & SNAPBPF_EV_UPGRADE) ++counters_.upgrades;
    if (ev.level > 1) ++counters_.huge;
    if (!image_offset || *image_offset >= image_bytes_ || page_size_ == 0) {
        ++counters_.outside_image;
        return;
    }
    uint8_t access = (ev.access & SNAPBPF_WRITE) ? (kAccessRead | kAccessWrite) : kAccessRead;
    entries_.push_back({ev.time_ns, ev.seq, *image_offset / page_size_, access});
}

std::vector<Touch> TouchLog::touches(uint64_t start_ns) const {
    auto order = entries_;
    std::sort(order.begin(), order.end(), [](const Entry& a, const Entry& b) {
        if (a.time_ns != b.time_ns) return a.time_ns < b.time_ns;
        return a.seq < b.seq;
    });
    std::vector<Touch> out;
    std::unordered_map<uint64_t, size_t> index;
    index.reserve(order.size());
    for (auto& e : order) {
        auto [it, fresh] = index.try_emplace(e.page, out.size());
        if (fresh) {
            Touch t;
            t.page = e.page;
            t.time_ns = e.time_ns > start_ns ? e.time_ns - start_ns : 0;
            t.rank = static_cast<uint32_t>(out.size());
            t.access = e.access;
            out.push_back(t);
        } else {
            out[it->second].access |= e.access;  // a later write upgrades the first touch
        }
    }
    return out;
}

nlohmann::json counters_json(const Counters& c) {
    nlohmann::json by = nlohmann::json::object();
    for (uint8_t s = 0; s < SNAPBPF_SRC_COUNT; ++s)
        if (c.by_source[s]) by[source_name(s)] = c.by_source[s];
    return {
        {"events", c.events},
        {"events_by_source", by},
        {"upgrades", c.upgrades},
        {"lost_events", c.lost},
        {"dedup_full_events", c.dedup_full},
        {"user_resolved_events", c.vma_busy},
        {"prefetch_skipped_events", c.prefetch_skipped},
        {"outside_image_faults", c.other_file},
        {"seen_faults", c.faults},
        {"outside_image_events", c.outside_image},
        {"huge_mappings", c.huge},
    };
}

}  // namespace snap::bpf
