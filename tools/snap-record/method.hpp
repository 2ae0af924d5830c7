// SPDX-License-Identifier: Apache-2.0
// The recording methods of snap-record behind one interface (DESIGN.md §5). A method is
// told when the target starts, polled while it runs, and finishes with a final scan while
// the target still exists (stopped at its exit, or being detached from).
#pragma once
#include "common/loadset.hpp"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace snap::record {

struct Options;  // record.hpp

// What the recorder knows about the target and the image while recording.
struct Context {
    pid_t pid = 0;          // the target process (thread-group leader)
    pid_t tid = 0;          // a live thread of it whose /proc entry shows its memory: the
                            // leader, unless the leader already exited while others run
    bool target_alive = true;  // false in finish() when the target vanished without a
                               // final stop (killed by SIGKILL): scanning methods see nothing
    unsigned execs = 0;     // exec()s seen: the address space was replaced that often
    std::string image_path;
    dev_t image_dev = 0;
    ino_t image_ino = 0;
    uint64_t image_bytes = 0;
    uint32_t page_size = 4096;
    uint64_t start_ns = 0;  // CLOCK_MONOTONIC at the start of recording
    const Options* options = nullptr;
};

class Method {
public:
    virtual ~Method() = default;
    virtual std::string name() const = 0;
    // Before the target runs (-- CMD: child stopped before exec; --pid: at attach).
    virtual void prepare(const Context& ctx) = 0;
    // While the target runs: on every interval tick or RSS-growth trigger.
    virtual void poll(const Context& ctx) = 0;
    // Final look, the target still alive (stopped at exit, or about to be detached).
    virtual void finish(const Context& ctx) = 0;
    // True if poll() looks at the process in ctx.tid (so each traced process is polled in
    // turn); false if it looks at something else (the image file, kernel events).
    virtual bool per_process() const { return false; }
    // Fill touches, knows_writes, has_time and meta (including "limitations": what the
    // method cannot see, and any counts such as lost events).
    virtual void result(const Context& ctx, LoadingSet& out) = 0;
};

using MethodFactory = std::function<std::unique_ptr<Method>(const Options&)>;
// Methods register themselves from their own translation unit:
//   static const bool registered = register_method("bpf", [](const Options& o) { … });
bool register_method(const std::string& name, MethodFactory factory);
std::unique_ptr<Method> make_method(const std::string& name, const Options& opt);  // UsageError if unknown
std::vector<std::string> method_names();

}  // namespace snap::record
