// IPv4 UDP sockets with batched I/O: udpOpen, udpLocalPort, recvBatch, sendBatch.
#pragma once

#include <napi.h>

namespace sluice {

void InitUdp(Napi::Env env, Napi::Object exports);

// udp-gso.cc: sendBatchGso (UDP_SEGMENT), udpSetGro, udpGsoSupported, offloadStats.
void InitUdpGso(Napi::Env env, Napi::Object exports);

// sched.cc: setRealtime (latency).
void InitSched(Napi::Env env, Napi::Object exports);
// memory.cc: mallocTrim.
void InitMemory(Napi::Env env, Napi::Object exports);

// tcp-gro.cc: groCoalesce (TCP segments of received datagrams → super-packets).
void InitGro(Napi::Env env, Napi::Object exports);

}  // namespace sluice
