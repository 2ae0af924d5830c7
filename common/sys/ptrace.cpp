// SPDX-License-Identifier: Apache-2.0
#include "ptrace.hpp"

#include "common/error.hpp"

#include <sys/ptrace.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace snap::sys::ptrace {

static_assert(kTraceClone == PTRACE_O_TRACECLONE && kTraceExec == PTRACE_O_TRACEEXEC &&
              kTraceExit == PTRACE_O_TRACEEXIT && kExitKill == PTRACE_O_EXITKILL);
static_assert(int(kFork) == int(PTRACE_EVENT_FORK) && int(kVfork) == int(PTRACE_EVENT_VFORK) &&
              kTraceFork == PTRACE_O_TRACEFORK && kTraceVfork == PTRACE_O_TRACEVFORK);
static_assert(int(kClone) == int(PTRACE_EVENT_CLONE) && int(kExec) == int(PTRACE_EVENT_EXEC) && int(kExit) == int(PTRACE_EVENT_EXIT) &&
              int(kStop) == int(PTRACE_EVENT_STOP));

WaitEvent decode_wait_status(int status) noexcept {
    WaitEvent e;
    if (WIFEXITED(status)) {
        e.kind = WaitEvent::exited;
        e.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        e.kind = WaitEvent::killed;
        e.code = WTERMSIG(status);
        e.core = WCOREDUMP(status);
    } else if (WIFSTOPPED(status)) {
        e.code = WSTOPSIG(status);
        int ev = (status >> 16) & 0xff;
        if (ev == PTRACE_EVENT_STOP) {
            // With PTRACE_SEIZE a group-stop is an event stop carrying a stopping signal;
            // SIGTRAP marks the initial stop of an auto-attached thread or an INTERRUPT.
            bool stopping = e.code == SIGSTOP || e.code == SIGTSTP || e.code == SIGTTIN || e.code == SIGTTOU;
            e.kind = stopping ? WaitEvent::group_stop : WaitEvent::event_stop;
            e.event = ev;
        } else if (ev != 0) {
            e.kind = WaitEvent::event_stop;
            e.event = ev;
        } else {
            e.kind = WaitEvent::signal_stop;
        }
    }
    return e;
}

int shell_status(const WaitEvent& e) noexcept { return e.kind == WaitEvent::exited ? e.code : 128 + e.code; }

void seize(pid_t tid, unsigned options) {
    if (::ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(static_cast<unsigned long>(options))) == 0)
        return;
    int e = errno;
    if (e == ESRCH) throw Error("no process " + std::to_string(tid));
    if (e == EPERM)
        throw CapabilityError("cannot trace process " + std::to_string(tid) + ": " + std::strerror(e),
                              "run as root (or as its owner with kernel.yama.ptrace_scope=0); a process "
                              "already traced (TracerPid in /proc/PID/status) cannot be traced twice");
    throw_errno("ptrace(SEIZE, " + std::to_string(tid) + ")", e);
}

void resume(pid_t tid, int signal) {
    if (::ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(signal))) < 0 && errno != ESRCH)
        throw_errno("ptrace(CONT, " + std::to_string(tid) + ")");
}

void listen(pid_t tid) {
    if (::ptrace(PTRACE_LISTEN, tid, nullptr, nullptr) < 0 && errno != ESRCH)
        throw_errno("ptrace(LISTEN, " + std::to_string(tid) + ")");
}

bool interrupt(pid_t tid) { return ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0; }

bool detach(pid_t tid, int signal) {
    return ::ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(signal))) == 0;
}

unsigned long event_message(pid_t tid) {
    unsigned long msg = 0;
    if (::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &msg) < 0) return 0;
    return msg;
}

}  // namespace snap::sys::ptrace
