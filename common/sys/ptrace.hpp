// SPDX-License-Identifier: Apache-2.0
// ptrace, narrowly: seize a thread with event options, decode what waitpid() reports, and
// resume it the right way (re-deliver signals, LISTEN in a group-stop). Used by snap-record
// to hold a target at its exit while its address space still exists.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace snap::sys::ptrace {

// Options (values of PTRACE_O_*; repeated so that callers need no <sys/ptrace.h>).
constexpr unsigned kTraceFork = 0x02;
constexpr unsigned kTraceVfork = 0x04;
constexpr unsigned kTraceClone = 0x08;
constexpr unsigned kTraceExec = 0x10;
constexpr unsigned kTraceExit = 0x40;
constexpr unsigned kExitKill = 0x100000;

// Events (PTRACE_EVENT_*).
enum Event : int { kNone = 0, kFork = 1, kVfork = 2, kClone = 3, kExec = 4, kExit = 6, kStop = 128 };

// What waitpid() said about one thread.
struct WaitEvent {
    enum Kind { exited, killed, signal_stop, group_stop, event_stop } kind = exited;
    int code = 0;    // exit code (exited), signal (killed, signal_stop, group_stop, event_stop)
    int event = 0;   // Event for event_stop
    bool core = false;
};
// Pure: decode a wait status of a PTRACE_SEIZE'd tracee.
WaitEvent decode_wait_status(int status) noexcept;
// Shell-style status: code, or 128 + signal.
int shell_status(const WaitEvent& e) noexcept;

// PTRACE_SEIZE with options. EPERM → CapabilityError with a hint, ESRCH → Error.
void seize(pid_t tid, unsigned options);
// Resume after a stop. Errors on vanished threads (ESRCH) are ignored: the thread is dying.
void resume(pid_t tid, int signal = 0);
void listen(pid_t tid);
bool interrupt(pid_t tid);
bool detach(pid_t tid, int signal = 0);
unsigned long event_message(pid_t tid);

}  // namespace snap::sys::ptrace
