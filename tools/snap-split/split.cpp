// SPDX-License-Identifier: Apache-2.0
#include "split.hpp"

#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/split.hpp"

#include <optional>

namespace snap::split_tool {

int run(const Options& opt) {
    if (opt.common.output.empty()) throw UsageError("no output given", "use -o FILE (or -o - for stdout)");
    if (opt.common.output == "-" && opt.common.json && opt.common.report.empty())
        throw UsageError("--json and -o - both want stdout", "write the split to a file with -o FILE");
    MergeSpec spec = parse_merge_spec(opt.merge);

    std::vector<LoadingSet> sets;
    std::vector<uint64_t> digests;
    nlohmann::json sources = nlohmann::json::array();
    for (auto& path : opt.loadsets) {
        uint64_t d = 0;
        sets.push_back(read_loadset(path, &d));
        digests.push_back(d);
        sources.push_back({{"digest", hash::to_hex(d)}, {"method", sets.back().method},
                           {"touched_pages", sets.back().touches.size()}});
    }
    if (opt.loadsets.size() > 1 && spec.mode == MergeMode::at_least && spec.k > opt.loadsets.size())
        throw UsageError("--merge atleast:" + std::to_string(spec.k) + " needs at least that many loading sets");

    // The image must hold still for the whole pass (classify, fingerprint, copy): a VM still
    // running on it, or a copy still being written, would give a split of no real image.
    const auto image_state = file::stamp_of(opt.mem);
    Image image(opt.mem, opt.page_size);
    for (size_t i = 0; i < sets.size(); ++i) {
        const auto& id = sets[i].image;
        const std::string& name = opt.loadsets[i] == "-" ? "<stdin>" : opt.loadsets[i];
        if (id.page_size != image.page_size())
            throw BadInput(name, "recorded with page size " + std::to_string(id.page_size) + ", " + opt.mem + " is split with " +
                                     std::to_string(image.page_size()) + " (see --page-size)");
        if (id.size_bytes != image.size_bytes())
            throw BadInput(name, "recorded against an image of " + std::to_string(id.size_bytes) + " bytes, " + opt.mem +
                                     " has " + std::to_string(image.size_bytes()));
    }
    LoadingSet merged = merge_loadsets(sets, spec);
    SplitOptions sopt;
    sopt.assume_written = opt.assume_written;
    sopt.threads = opt.threads;
    // The fingerprint of an unchanged image is remembered (verified.hpp): then the pass only
    // classifies. Otherwise it hashes on the way and the result is remembered below.
    if (!opt.rehash) image.recall_fingerprint();
    cli::Progress progress(image.has_fingerprint() ? "classifying" : "classifying and fingerprinting", image.pages());
    SplitPlan plan = plan_split(image, merged, sopt, [&](uint64_t done) { progress.update(done); });
    progress.finish();
    auto check_image_unchanged = [&] {
        if (image_state && !(file::stamp_of(opt.mem) == image_state))
            throw Error(opt.mem + ": the image changed while it was being split (size, mtime or ctime): no split written",
                        ExitCode::runtime, "split a copy that nothing writes to (is a VM still running on it?)");
    };
    check_image_unchanged();  // first: a change during the pass would also spoil the fingerprint
    if (image.fingerprint_source() == FingerprintSource::hashed) image.keep_fingerprint();
    // The fingerprint came with the classifying pass; a loading set of another image is
    // refused before anything is written.
    uint64_t fp = image.fingerprint();
    for (size_t i = 0; i < sets.size(); ++i)
        if (sets[i].image.fingerprint != fp)
            throw BadInput(opt.loadsets[i] == "-" ? "<stdin>" : opt.loadsets[i],
                           "recorded against another image (fingerprint " + hash::to_hex(sets[i].image.fingerprint) + ", " +
                               opt.mem + " has " + hash::to_hex(fp) + ")");
    plan.meta["sources"] = sources;
    plan.meta["merge"] = opt.merge;
    plan.meta["image_fingerprint"] = hash::to_hex(fp);
    if (!merged.knows_writes && !opt.assume_written)
        cli::note("the loading set has no read/write information: touched pages are classed RO (use --assume-written to class them RW)");

    // The parent digest: the loading set's digest, or a digest over all of them.
    uint64_t parent = digests.size() == 1 ? digests[0] : hash::xxh3(digests.data(), digests.size() * sizeof(uint64_t));
    bool unchanged = false;
    uint64_t digest = write_split(image, plan, opt.common.output, parent, check_image_unchanged, opt.threads, &unchanged);

    const auto& n = plan.pages_per_class;
    if (opt.common.json || !opt.common.report.empty()) {
        // The plan's description (common/split.hpp, as snap-stat gives it) and the run's facts.
        nlohmann::json j = describe_plan(plan);
        j.update({
            {"output", opt.common.output},
            {"output_unchanged", unchanged},
            {"digest", hash::to_hex(digest)},
            {"parent_digest", hash::to_hex(parent)},
            {"image", opt.mem},
            {"fingerprint_source", fingerprint_source_name(image.fingerprint_source())},
            {"threads", split_threads(opt.threads)},
            {"merge", opt.merge},
            {"sources", sources},
            {"assume_written", opt.assume_written},
            {"writes_known", merged.knows_writes},
        });
        cli::print_report(opt.common.report, j);
    } else {
        cli::info((unchanged ? "kept " : "wrote ") + opt.common.output + ": zero " + std::to_string(n[0]) + ", ro " + std::to_string(n[1]) + ", rw " +
                  std::to_string(n[2]) + ", cold " + std::to_string(n[3]) + " pages");
    }
    return 0;
}

}  // namespace snap::split_tool
