// SPDX-License-Identifier: Apache-2.0
// IdlePolling: a CPU latency request (PM QoS, /dev/cpu_dma_latency) that makes idle cores
// poll instead of halting, held for the windows in which a wake-up is near.
//
// A fault served from a remote store is a chain of sleeps: the guest's thread waits on the
// fault, the store's server on its socket, and each is woken in turn. On a virtual machine
// whose idle cores halt at once (no halt polling in the guest kernel: these machines boot with
// haltpoll.guest_halt_poll_ns=0), each wake-up of a halted core goes through the hypervisor
// and costs tens of µs, on every hop. A core polling in its idle loop is woken by a flag, with
// no interrupt at all. While a latency request of 0 µs is held, the cpuidle governor picks
// its polling state on every core; writing "no constraint" lets them halt again, and closing
// the descriptor drops the request. It is the guest kernel's halt polling, turned on by the
// one process that knows when the next wake-up is near, for as long as it polls itself.
// (Spinning threads at SCHED_IDLE do not do it: a core running one is not idle, so a wake-up
// there still takes an interrupt; measured, they made pool faults no faster.)
// The device is root's: elsewhere the request is unavailable and hold() does nothing.
#pragma once
#include <cstdint>
#include <string>

namespace snap::sys {

class IdlePolling {
public:
    IdlePolling();  // opens the device: a request with no constraint, or unavailable
    ~IdlePolling();
    IdlePolling(const IdlePolling&) = delete;
    IdlePolling& operator=(const IdlePolling&) = delete;

    bool available() const { return fd_ >= 0; }
    const std::string& why_unavailable() const { return why_; }
    // Idle cores poll from now on (a request of 0 µs). Does nothing while held.
    void hold();
    // They may halt again. Does nothing while not held.
    void release();
    bool held() const { return held_; }
    uint64_t windows() const { return windows_; }  // holds so far
    uint64_t held_ns() const;                      // time held so far, the current window too

    // The CPU latency every core's idle state must meet now (all requests), µs; -1 if it
    // cannot be read.
    static int64_t current_limit_us();

private:
    int fd_ = -1;
    std::string why_;
    bool held_ = false;
    uint64_t windows_ = 0, held_ns_ = 0, since_ = 0;
};

// CLOCK_MONOTONIC in ns.
uint64_t monotonic_ns();

}  // namespace snap::sys
