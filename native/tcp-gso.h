// TCP super-packets: the facts needed to cut one into MSS-sized segments
// (GSO, for the TUN → UDP path) and to write its virtio_net_hdr. The GSO
// "meta" of a packet, carried per packet from JS as one int32, is the
// segment payload size (MSS) of a TCP super-packet, or 0 for an ordinary
// packet (src/native/binding.ts, `gso` arrays).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice {

constexpr size_t kVnetHdrLen = 10;  // sizeof(struct virtio_net_hdr)
// Most segments one super-packet may be cut into: 64 KiB at Linux's minimum
// MSS (88) is 745; anything needing more is refused as malformed.
constexpr size_t kMaxSegments = 1024;
// Room for one segment's headers: overlay prefix + IPv4 with options + TCP with options.
constexpr size_t kMaxPrefix = 64;
constexpr size_t kSegHdrStride = kMaxPrefix + 60 + 60;

// A TCP packet as seen from its IP header. Offsets are from the IP header.
struct TcpInfo {
  int version = 0;    // 4 or 6
  size_t l4 = 0;      // TCP header offset (IPv4 IHL*4, IPv6 40)
  size_t tcphl = 0;   // TCP header length
  size_t total = 0;   // IP packet length by its own length field
};

// Parses a TCP packet of `len` bytes: IPv4 (any options, not a fragment) or
// IPv6 with TCP as the first next header. False for anything else or when the
// header lengths disagree with `len` (total must be <= len).
bool ParseTcp(const uint8_t* ip, size_t len, TcpInfo* t);

// One's-complement sum (folded, not inverted) of the pseudo-header of `ip`
// for protocol 6 and an upper-layer length of `l4len`.
uint16_t TcpPseudoSum(const uint8_t* ip, const TcpInfo& t, size_t l4len);

// Number of segments of at most `mss` payload bytes, or 0 if `mss` is 0 or
// the count would exceed kMaxSegments. A packet without payload has 1.
size_t SegmentCount(const TcpInfo& t, size_t mss);

// Writes the headers of segment k of n (prefix copy, IP, TCP with a complete
// checksum) into `out` and returns their length; the segment's payload is
// ip[t.l4 + t.tcphl + k*mss, +SegmentPayload(t, mss, k)). IPv4: ID + k, new
// length and header checksum. TCP: seq + k*mss; FIN/PSH only on the last
// segment, CWR only on the first (as the kernel's tcp_gso_segment does).
size_t BuildSegmentHeader(const uint8_t* prefix, size_t prefixLen, const uint8_t* ip, const TcpInfo& t,
                          size_t mss, size_t k, size_t n, uint8_t* out);
size_t SegmentPayload(const TcpInfo& t, size_t mss, size_t k);

// Completes a CHECKSUM_PARTIAL packet: sums from csumStart to the end (the
// field already holds the pseudo-header sum) and stores the complement at
// csumStart + csumOffset. False if the offsets do not fit `len`.
bool CompletePartialChecksum(uint8_t* pkt, size_t len, size_t csumStart, size_t csumOffset);

// Computes and stores the full TCP checksum of a (non-super) TCP packet.
void StoreTcpChecksum(uint8_t* ip, const TcpInfo& t);

// Stores the pseudo-header sum for the whole packet in the TCP checksum
// field: the form a CHECKSUM_PARTIAL (VIRTIO_NET_HDR_F_NEEDS_CSUM) packet carries.
void StoreTcpPartialChecksum(uint8_t* ip, const TcpInfo& t);

// Whether the TCP checksum of the packet verifies.
bool TcpChecksumValid(const uint8_t* ip, const TcpInfo& t);

// A counter bumped from any datapath thread (the JS thread and the native
// ones, native/datapath.cc): a relaxed atomic, so counts are never lost or
// torn; stats read it with a relaxed load.
struct RelaxedCounter {
  std::atomic<uint64_t> v{0};
  void operator++(int) { v.fetch_add(1, std::memory_order_relaxed); }
  RelaxedCounter& operator+=(uint64_t n) {
    v.fetch_add(n, std::memory_order_relaxed);
    return *this;
  }
  RelaxedCounter& operator=(uint64_t n) {
    v.store(n, std::memory_order_relaxed);
    return *this;
  }
  operator uint64_t() const { return v.load(std::memory_order_relaxed); }
};

// Offload counters, per process, summed over every datapath thread.
struct OffloadCounters {
  RelaxedCounter tunGsoRead;        // super-packets read from TUNs
  RelaxedCounter tunBadVnet;        // TUN reads dropped: unsupported or inconsistent virtio header
  RelaxedCounter gsoSegments;       // segments cut from super-packets (UDP or TUN without offload)
  RelaxedCounter udpGsoSends;       // sendmmsg messages carrying UDP_SEGMENT
  RelaxedCounter udpGsoDisabled;    // 1 once the kernel refused UDP_SEGMENT (EIO/EINVAL)
  RelaxedCounter groMessages;       // received datagrams that were UDP_GRO trains
  RelaxedCounter groMerged;         // TCP segments appended to a super-packet
  RelaxedCounter groBadChecksum;    // segments not merged because their TCP checksum failed
  RelaxedCounter groSuperPackets;   // super-packets produced by coalescing
};
extern OffloadCounters offloadCounters;

}  // namespace sluice
