// Module init for the `sluice` addon. One concern per file: tun.cc (TUN +
// batched fd I/O), tun-vnet.cc (TUN offloads), udp.cc (UDP +
// recvmmsg/sendmmsg), udp-gso.cc (UDP_SEGMENT/UDP_GRO), tcp-gso.cc (cutting
// TCP super-packets), tcp-gro.cc (coalescing received TCP segments),
// fastpath.cc (native forwarding of decided flows), datapath.cc (the native
// datapath threads running it on more cores), sched.cc (real-time
// priority), memory.cc (malloc_trim), poller.cc (uv_poll), checksum.cc (RFC 1071/1624). Typed from JS
// by src/native/binding.ts.
#include <napi.h>

#include "checksum.h"
#include "fastpath.h"
#include "poller.h"
#include "tun.h"
#include "udp.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  sluice::InitTun(env, exports);
  sluice::InitTunVnet(env, exports);
  sluice::InitUdp(env, exports);
  sluice::InitUdpGso(env, exports);
  sluice::InitGro(env, exports);
  sluice::InitSched(env, exports);
  sluice::InitMemory(env, exports);
  sluice::InitFastPath(env, exports);
  sluice::InitChecksum(env, exports);
  sluice::Poller::Init(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(sluice, Init)
