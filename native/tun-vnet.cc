// TUN offloads (IFF_VNET_HDR): every packet read or written is prefixed by a
// 10-byte virtio_net_hdr. With TUNSETOFFLOAD(CSUM|TSO4|TSO6) the kernel hands
// us TCP super-packets of up to 64 KiB with a partial checksum, and accepts
// super-packets we write, so one read()/write() moves ~45 MTU-sized segments.
//
// Read: ordinary packets with VIRTIO_NET_HDR_F_NEEDS_CSUM get their checksum
// finished here, so JS always sees complete packets; TCP super-packets are
// passed whole with gso[i] = MSS (the JS pipeline acts once per super-packet).
// Write: gso[i] > 0 packets go out with a GSO header — or, on a TUN without
// IFF_VNET_HDR, are cut into segments here (gsoSplit).
#include <errno.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "args.h"
#include "errors.h"
#include "io.h"
#include "tcp-gso.h"
#include "tun.h"

namespace sluice {

namespace {

// struct virtio_net_hdr of <linux/virtio_net.h> (which C++ cannot include: a
// later struct there has a member named `class`). Fields in host byte order,
// as a TUN without TUNSETVNETBE uses them on little-endian hosts.
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(virtio_net_hdr) == kVnetHdrLen, "virtio_net_hdr is 10 bytes");
constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV4 = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV6 = 4;
constexpr uint8_t VIRTIO_NET_HDR_GSO_ECN = 0x80;

// tunSetOffload(fd, offloads): TUNSETVNETHDRSZ(10) then TUNSETOFFLOAD(offloads)
// (TUN_F_* bits). The fd must have been opened with IFF_VNET_HDR. Throws the
// kernel's refusal (EINVAL for unknown bits) so the caller can fall back.
Napi::Value TunSetOffload(const Napi::CallbackInfo& info) {
  const char* fn = "tunSetOffload";
  int fd;
  int64_t offloads;
  if (!ArgFd(info, 0, fn, &fd) || !ArgInt(info, 1, fn, "offloads", 0, 0xff, &offloads)) return Napi::Value();
  int sz = static_cast<int>(kVnetHdrLen);
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
    ThrowErrno(info.Env(), errno, "ioctl", "TUNSETVNETHDRSZ");
    return Napi::Value();
  }
  if (ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(offloads)) < 0) {
    ThrowErrno(info.Env(), errno, "ioctl", "TUNSETOFFLOAD");
    return Napi::Value();
  }
  return Napi::Value();
}

// Checks a freshly read packet against its virtio header. Returns the GSO
// meta (MSS, or 0), or -1 when the packet must be dropped.
int32_t AcceptRead(const virtio_net_hdr& h, uint8_t* pkt, size_t len) {
  uint8_t type = h.gso_type & static_cast<uint8_t>(~VIRTIO_NET_HDR_GSO_ECN);
  if (type == VIRTIO_NET_HDR_GSO_NONE) {
    if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !CompletePartialChecksum(pkt, len, h.csum_start, h.csum_offset))
      return -1;
    return 0;
  }
  if (type != VIRTIO_NET_HDR_GSO_TCPV4 && type != VIRTIO_NET_HDR_GSO_TCPV6) return -1;
  // Not trusting hdr_len/csum_start (wireguard-go: hdr_len may cover the whole
  // packet on the forward path): the TCP header is found by parsing.
  TcpInfo t;
  if (!ParseTcp(pkt, len, &t) || t.version != (type == VIRTIO_NET_HDR_GSO_TCPV4 ? 4 : 6) || h.gso_size == 0)
    return -1;
  if (t.total - t.l4 - t.tcphl <= h.gso_size) {  // one segment: an ordinary packet after all
    StoreTcpChecksum(pkt, t);
    return 0;
  }
  if (SegmentCount(t, h.gso_size) == 0) return -1;
  offloadCounters.tunGsoRead++;
  return h.gso_size;
}

// readBatchVnet(fd, buf, offsets, lengths, gso, maxLen, count) -> n. Like
// readBatch on an IFF_VNET_HDR TUN: packet i's header lands in the 10 bytes
// before offsets[i] (so offsets[i] >= 10), the packet at offsets[i] with its
// size in lengths[i] and its GSO meta in gso[i]. Packets whose header the
// addon cannot honour are dropped and counted (offloadStats().tunBadVnet).
Napi::Value ReadBatchVnet(const Napi::CallbackInfo& info) {
  const char* fn = "readBatchVnet";
  Napi::Env env = info.Env();
  int fd;
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths, gso;
  int64_t maxLen, count;
  if (!ArgFd(info, 0, fn, &fd) || !ArgBytes(info, 1, fn, "buf", &buf) ||
      !ArgInt32s(info, 2, fn, "offsets", &offsets) || !ArgInt32s(info, 3, fn, "lengths", &lengths) ||
      !ArgInt32s(info, 4, fn, "gso", &gso) || !ArgInt(info, 5, fn, "maxLen", 1, INT32_MAX, &maxLen) ||
      !ArgInt(info, 6, fn, "count", 0, INT32_MAX, &count) || !CheckCount(env, fn, count, "offsets", offsets.len) ||
      !CheckCount(env, fn, count, "lengths", lengths.len) || !CheckCount(env, fn, count, "gso", gso.len) ||
      !CheckReadSlots(env, fn, buf, offsets, maxLen, count))
    return Napi::Value();
  for (int64_t i = 0; i < count; i++) {
    if (offsets.data[i] < static_cast<int32_t>(kVnetHdrLen)) {
      ThrowRange(env, "%s: offsets[%lld] (%d) leaves no room for the %zu-byte virtio header", fn,
                 static_cast<long long>(i), offsets.data[i], kVnetHdrLen);
      return Napi::Value();
    }
  }
  int64_t n = ReadVnetLoop(fd, buf.data, offsets.data, lengths.data, gso.data, static_cast<size_t>(maxLen),
                           static_cast<size_t>(count));
  if (n < 0) {
    ThrowErrno(env, static_cast<int>(-n), "read");
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// Writes one packet: 0 or an errno.
int WriteOne(int fd, const iovec* iov, int iovcnt) {
  for (;;) {
    if (writev(fd, iov, iovcnt) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

thread_local std::vector<uint8_t> splitHdr(kSegHdrStride);

// One GSO packet to a TUN without virtio headers: segment by segment.
int WriteSplit(int fd, uint8_t* pkt, size_t len, size_t mss) {
  TcpInfo t;
  if (!ParseTcp(pkt, len, &t)) return EINVAL;
  size_t nseg = SegmentCount(t, mss);
  if (nseg == 0) return EINVAL;
  size_t payloadOff = t.l4 + t.tcphl;
  for (size_t k = 0; k < nseg; k++) {
    iovec iov[2];
    iov[0].iov_base = splitHdr.data();
    iov[0].iov_len = BuildSegmentHeader(nullptr, 0, pkt, t, mss, k, nseg, splitHdr.data());
    iov[1].iov_base = pkt + payloadOff + k * mss;
    iov[1].iov_len = SegmentPayload(t, mss, k);
    int err = WriteOne(fd, iov, iov[1].iov_len > 0 ? 2 : 1);
    offloadCounters.gsoSegments++;
    if (err != 0) return err;
  }
  return 0;
}

// One packet to a TUN with virtio headers: a zero header for an ordinary
// packet, a TCP GSO header (checksum left partial) for a super-packet.
int WriteVnet(int fd, uint8_t* pkt, size_t len, size_t mss) {
  virtio_net_hdr h;
  memset(&h, 0, sizeof h);
  if (mss > 0) {
    TcpInfo t;
    if (!ParseTcp(pkt, len, &t) || SegmentCount(t, mss) == 0) return EINVAL;
    StoreTcpPartialChecksum(pkt, t);
    h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h.gso_type = t.version == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
    if (pkt[t.l4 + 13] & 0x80) h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;  // CWR on the first segment
    h.hdr_len = static_cast<uint16_t>(t.l4 + t.tcphl);
    h.gso_size = static_cast<uint16_t>(mss);
    h.csum_start = static_cast<uint16_t>(t.l4);
    h.csum_offset = 16;
    len = t.total;
  }
  iovec iov[2];
  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof h;
  iov[1].iov_base = pkt;
  iov[1].iov_len = len;
  return WriteOne(fd, iov, 2);
}

// writeBatchGso(fd, buf, offsets, lengths, gso, count, vnet) -> n. writeBatch
// for packets with GSO meta: `vnet` 1 = the TUN has IFF_VNET_HDR (a virtio
// header goes in front of every packet), 0 = plain TUN (super-packets are
// split into segments here). Same return contract as writeBatch; a
// super-packet that is not a well-formed TCP packet is marked -EINVAL.
Napi::Value WriteBatchGso(const Napi::CallbackInfo& info) {
  const char* fn = "writeBatchGso";
  Napi::Env env = info.Env();
  int fd;
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths, gso;
  int64_t count, vnet;
  if (!ArgFd(info, 0, fn, &fd) || !ArgBytes(info, 1, fn, "buf", &buf) ||
      !ArgInt32s(info, 2, fn, "offsets", &offsets) || !ArgInt32s(info, 3, fn, "lengths", &lengths) ||
      !ArgInt32s(info, 4, fn, "gso", &gso) || !ArgInt(info, 5, fn, "count", 0, INT32_MAX, &count) ||
      !ArgInt(info, 6, fn, "vnet", 0, 1, &vnet) || !CheckCount(env, fn, count, "offsets", offsets.len) ||
      !CheckCount(env, fn, count, "lengths", lengths.len) || !CheckCount(env, fn, count, "gso", gso.len) ||
      !CheckWriteSlots(env, fn, buf, offsets, lengths, count))
    return Napi::Value();

  int64_t n = WriteLoop(fd, buf.data, offsets.data, lengths.data, gso.data, static_cast<size_t>(count), vnet == 1);
  if (n < 0) {
    ThrowErrno(env, static_cast<int>(-n), "write");
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace

int64_t ReadVnetLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, int32_t* gso, size_t maxLen,
                     size_t count) {
  size_t n = 0;
  while (n < count) {
    uint8_t* p = buf + offsets[n] - kVnetHdrLen;
    ssize_t r = read(fd, p, maxLen + kVnetHdrLen);
    if (r > 0) {
      if (static_cast<size_t>(r) <= kVnetHdrLen) {
        offloadCounters.tunBadVnet++;
        continue;
      }
      virtio_net_hdr h;
      memcpy(&h, p, sizeof h);
      size_t len = static_cast<size_t>(r) - kVnetHdrLen;
      int32_t meta = AcceptRead(h, p + kVnetHdrLen, len);
      if (meta < 0) {
        offloadCounters.tunBadVnet++;
        continue;
      }
      lengths[n] = static_cast<int32_t>(len);
      gso[n] = meta;
      n++;
      continue;
    }
    if (r == 0) break;
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) break;
    if (n == 0) return -err;
    break;  // the error recurs on the next call, which then reports it
  }
  return static_cast<int64_t>(n);
}

int WriteGso(int fd, uint8_t* pkt, size_t len, size_t mss, bool vnet) {
  if (vnet) return WriteVnet(fd, pkt, len, mss);
  if (mss > 0) return WriteSplit(fd, pkt, len, mss);
  iovec iov = {pkt, len};
  return WriteOne(fd, &iov, 1);
}

int64_t WriteLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, const int32_t* gso, size_t count,
                  bool vnet) {
  int64_t n = 0;
  while (n < static_cast<int64_t>(count)) {
    size_t mss = gso != nullptr && gso[n] > 0 ? static_cast<size_t>(gso[n] & 0xffff) : 0;
    int err = WriteGso(fd, buf + offsets[n], static_cast<size_t>(lengths[n]), mss, vnet);
    if (err == 0) {
      n++;
      continue;
    }
    bool throwIt;
    if (OnWriteError(err, &n, lengths, &throwIt)) continue;
    if (throwIt) return -err;
    break;
  }
  return n;
}

void InitTunVnet(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "tunSetOffload", TunSetOffload);
  Export(env, exports, "readBatchVnet", ReadBatchVnet);
  Export(env, exports, "writeBatchGso", WriteBatchGso);
}

}  // namespace sluice
