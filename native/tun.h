// TUN devices and batched fd I/O: openTun, closeFd, readBatch, writeBatch.
#pragma once

#include <napi.h>

namespace sluice {

// openTun `flags` bits (mirrored as TunFlags in src/native/binding.ts).
constexpr int kTunMultiQueue = 1;  // IFF_MULTI_QUEUE
constexpr int kTunVnetHdr = 2;     // IFF_VNET_HDR: every packet is prefixed by a virtio_net_hdr

void InitTun(Napi::Env env, Napi::Object exports);

// tun-vnet.cc: tunSetOffload, readBatchVnet, writeBatchGso (IFF_VNET_HDR offloads).
void InitTunVnet(Napi::Env env, Napi::Object exports);

}  // namespace sluice
