// Batched I/O engines shared by the functions JS calls (which check their
// arguments first) and the native fast path (fastpath.cc), which runs them on
// the same batch memory from the poll callback. Errors are returned, not
// thrown: n >= 0 on success, -errno when the first operation failed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice {

// tun-vnet.cc: readBatchVnet's loop (packets with a header the addon cannot honour are dropped and counted).
int64_t ReadVnetLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, int32_t* gso, size_t maxLen,
                     size_t count);
// tun.cc: readBatch's loop.
int64_t ReadPlainLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, size_t maxLen, size_t count);
// tun-vnet.cc: one packet to a TUN — behind a virtio header when `vnet`, else cut into segments if mss > 0.
// 0 or an errno.
int WriteGso(int fd, uint8_t* pkt, size_t len, size_t mss, bool vnet);
// tun-vnet.cc: writeBatch's and writeBatchGso's loop (gso may be null: no super-packets). Returns the
// packets consumed (rejected ones marked lengths[i] = -errno), or -errno for a fatal error before any.
int64_t WriteLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, const int32_t* gso, size_t count,
                  bool vnet);
// udp.cc: recvBatch's recvmmsg; gso (may be null) receives UDP_GRO train sizes.
int64_t RecvLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, size_t maxLen, uint32_t* addrs,
                 uint16_t* ports, int32_t* gso, size_t count);
// udp-gso.cc: sendBatchGso's engine. Returns the entries consumed (rejected ones marked lengths[i] = -errno),
// or -errno for a fatal error before anything was consumed.
int64_t SendGsoLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, const uint32_t* addrs,
                    const uint16_t* ports, const int32_t* gso, size_t count, size_t prefixLen, bool useGso);
// udp-gso.cc: false once the kernel refused UDP_SEGMENT.
bool UdpGsoUsable();
// tcp-gro.cc: groCoalesce's engine; returns the number of output packets.
size_t CoalesceLoop(uint8_t* buf, const int32_t* offsets, const int32_t* lengths, const int32_t* gso,
                    const uint32_t* addrs, const uint16_t* ports, size_t count, size_t maxLen, size_t prefixLen,
                    int32_t* outOff, int32_t* outLen, int32_t* outGso, int32_t* outSlot, size_t cap);

}  // namespace sluice
