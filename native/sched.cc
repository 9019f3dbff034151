// Scheduling for latency: setRealtime(priority) puts the calling thread — the
// JS thread, which runs the data path — in SCHED_FIFO at `priority` (1..99),
// or back in SCHED_OTHER for 0. A real-time data path is not made to wait by
// CPU-bound neighbours: on the 2-vCPU test VM with builds running, ping p99
// through Sluice went from 3-33 ms to 0.6 ms, throughput unchanged.
// (Spin-polling on the JS thread did not pay: a ping's answer takes longer
// than a spin budget the event loop can afford. The native datapath threads
// busy-poll instead: --busy-poll, datapath.cc.)
#include <errno.h>
#include <sched.h>

#include "args.h"
#include "errors.h"
#include "udp.h"

namespace sluice {

namespace {

Napi::Value SetRealtime(const Napi::CallbackInfo& info) {
  int64_t prio;
  if (!ArgInt(info, 0, "setRealtime", "priority", 0, 99, &prio)) return Napi::Value();
  sched_param sp = {};
  sp.sched_priority = static_cast<int>(prio);
  // SCHED_RESET_ON_FORK: threads this one starts later (libuv's pool, policy
  // workers) get normal scheduling instead of inheriting the real-time class.
  int policy = prio > 0 ? (SCHED_FIFO | SCHED_RESET_ON_FORK) : SCHED_OTHER;
  if (sched_setscheduler(0, policy, &sp) < 0) {
    ThrowErrno(info.Env(), errno, "sched_setscheduler");
    return Napi::Value();
  }
  return Napi::Value();
}

}  // namespace

void InitSched(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "setRealtime", SetRealtime);
}

}  // namespace sluice
