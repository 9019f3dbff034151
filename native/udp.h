// IPv4 UDP sockets with batched I/O: udpOpen, udpLocalPort, recvBatch, sendBatch.
#pragma once

#include <napi.h>

namespace sluice {

void InitUdp(Napi::Env env, Napi::Object exports);

}  // namespace sluice
