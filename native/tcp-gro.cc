// Receive-side coalescing (GRO): the TCP segments of a batch of received
// datagrams — each datagram possibly a UDP_GRO train — are merged, per flow,
// into super-packets that leave through ONE write to the TUN with a GSO
// virtio header, instead of one write (and one pass through the pod's stack)
// per segment. The rules are the kernel's tcp_gro_receive and wireguard-go's
// tcpPacketsCanCoalesce:
//   - same outer sender and overlay prefix, same addresses and ports, same ACK
//     number, window, TCP options and IP header fields (TOS/TC, TTL/hop
//     limit, DF), IPv4 without options, no fragments;
//   - only ACK or ACK|PSH segments with payload; sequence numbers adjacent
//     (append only); nothing after a PSH or after a segment shorter than the
//     first (the MSS); the result fits 64 KiB and the slot;
//   - every merged segment's TCP checksum verifies (the super-packet leaves
//     with VIRTIO_NET_HDR_F_NEEDS_CSUM, which the pod's stack trusts).
// Payloads are moved in place (memmove within the slot, or copied into an
// earlier slot), so the output packets are contiguous: the JS pipeline and
// the policy gate see a super-packet like any packet, with gso = MSS.
#include <cstring>
#include <vector>

#include "args.h"
#include "bytes.h"
#include "checksum.h"
#include "errors.h"
#include "io.h"
#include "tcp-gso.h"
#include "udp.h"

namespace sluice {

namespace {

constexpr uint8_t kAck = 0x10, kPsh = 0x08;
// Open super-packets searched per segment (newest first); older ones are closed.
constexpr size_t kSearch = 32;

struct Item {
  uint32_t out, slot;
  size_t off, len, limit;  // bytes incl. the prefix; may grow up to `limit`
  TcpInfo t;               // t.total grows as segments are appended
  uint32_t nextSeq, mss, merged;
  bool open, verified;
};

enum class Join { Appended, Mismatch, BadSegment };

struct Gro {
  uint8_t* buf;
  size_t prefixLen;
  const uint32_t* addrs;
  const uint16_t* ports;
  int32_t *outOff, *outLen, *outGso, *outSlot;
  size_t cap, np = 0, dropped = 0;
  std::vector<Item>* items;
  std::vector<size_t>* high;  // per slot: end of the bytes already handed out

  int64_t Emit(size_t off, int64_t len, uint32_t slot) {
    if (np == cap) {
      dropped++;
      return -1;
    }
    outOff[np] = static_cast<int32_t>(off);
    outLen[np] = static_cast<int32_t>(len);
    outGso[np] = 0;
    outSlot[np] = static_cast<int32_t>(slot);
    if (len > 0) (*high)[slot] = off + static_cast<size_t>(len);
    return static_cast<int64_t>(np++);
  }

  bool SameFlow(const Item& it, uint32_t slot, const uint8_t* ip, const TcpInfo& t) const {
    if (addrs[it.slot] != addrs[slot] || ports[it.slot] != ports[slot] || it.t.version != t.version) return false;
    const uint8_t* hip = buf + it.off + prefixLen;
    bool addrsEqual = t.version == 4 ? memcmp(hip + 12, ip + 12, 8) == 0 : memcmp(hip + 8, ip + 8, 32) == 0;
    return addrsEqual && memcmp(hip + it.t.l4, ip + t.l4, 4) == 0;
  }

  static bool IpCompatible(const uint8_t* a, const uint8_t* b, int version) {
    if (version == 4) return a[1] == b[1] && (a[6] >> 5) == (b[6] >> 5) && a[8] == b[8];
    return a[0] == b[0] && (a[1] >> 4) == (b[1] >> 4) && a[7] == b[7];
  }

  Join TryAppend(Item& it, size_t off, uint8_t* ip, const TcpInfo& t, size_t payload, uint8_t flags) {
    uint8_t* head = buf + it.off;
    uint8_t* hip = head + prefixLen;
    uint8_t* hth = hip + it.t.l4;
    const uint8_t* th = ip + t.l4;
    if (prefixLen > 0 && memcmp(head, buf + off, prefixLen) != 0) return Join::Mismatch;
    if (Get32(th + 4) != it.nextSeq || memcmp(hth + 8, th + 8, 4) != 0) return Join::Mismatch;
    if (t.tcphl != it.t.tcphl || memcmp(hth + 14, th + 14, 2) != 0 || memcmp(hth + 20, th + 20, t.tcphl - 20) != 0)
      return Join::Mismatch;
    if (!IpCompatible(hip, ip, t.version) || payload > it.mss) return Join::Mismatch;
    size_t end = it.off + it.len;
    size_t maxTotal = t.version == 4 ? 0xffff : 0xffff + 40;
    if ((*high)[it.slot] != end || end + payload > it.limit || it.t.total + payload > maxTotal) return Join::Mismatch;
    if (!it.verified) {
      if (!TcpChecksumValid(hip, it.t)) {
        offloadCounters.groBadChecksum++;
        return Join::Mismatch;
      }
      it.verified = true;
    }
    if (!TcpChecksumValid(ip, t)) {
      offloadCounters.groBadChecksum++;
      return Join::BadSegment;
    }
    memmove(buf + end, ip + t.l4 + t.tcphl, payload);
    it.len += payload;
    it.t.total += payload;
    it.nextSeq += static_cast<uint32_t>(payload);
    it.merged++;
    (*high)[it.slot] = it.off + it.len;
    offloadCounters.groMerged++;
    if (flags & kPsh) {
      hth[13] |= kPsh;
      it.open = false;
    }
    if (payload < it.mss) it.open = false;
    return Join::Appended;
  }

  void Segment(size_t off, size_t len, uint32_t slot, size_t limit) {
    if (len <= prefixLen) {
      Emit(off, static_cast<int64_t>(len), slot);
      return;
    }
    uint8_t* ip = buf + off + prefixLen;
    size_t ipLen = len - prefixLen;
    TcpInfo t;
    if (!ParseTcp(ip, ipLen, &t)) {
      Emit(off, static_cast<int64_t>(len), slot);
      return;
    }
    uint8_t flags = ip[t.l4 + 13];
    size_t payload = t.total - t.l4 - t.tcphl;
    bool candidate = t.total == ipLen && (t.version == 6 || t.l4 == 20) && (flags == kAck || flags == (kAck | kPsh)) &&
                     payload > 0;
    std::vector<Item>& v = *items;
    size_t lo = v.size() > kSearch ? v.size() - kSearch : 0;
    if (!candidate) {
      // A SYN/FIN/RST or pure ACK of the flow: nothing of the flow may be merged past it.
      for (size_t j = v.size(); j > lo; j--)
        if (v[j - 1].open && SameFlow(v[j - 1], slot, ip, t)) v[j - 1].open = false;
      Emit(off, static_cast<int64_t>(len), slot);
      return;
    }
    for (size_t j = v.size(); j > lo; j--) {
      Item& it = v[j - 1];
      if (!it.open || !SameFlow(it, slot, ip, t)) continue;
      Join r = TryAppend(it, off, ip, t, payload, flags);
      if (r == Join::Appended) return;
      if (r == Join::BadSegment) {
        Emit(off, static_cast<int64_t>(len), slot);  // the pod's stack drops it
        return;
      }
      it.open = false;
      break;
    }
    int64_t out = Emit(off, static_cast<int64_t>(len), slot);
    if (out < 0) return;
    Item it{};
    it.out = static_cast<uint32_t>(out);
    it.slot = slot;
    it.off = off;
    it.len = len;
    it.limit = limit;
    it.t = t;
    it.nextSeq = Get32(ip + t.l4 + 4) + static_cast<uint32_t>(payload);
    it.mss = static_cast<uint32_t>(payload);
    it.open = (flags & kPsh) == 0;
    v.push_back(it);
  }

  // Fixes lengths and checksums of every merged super-packet.
  void Finish() {
    for (Item& it : *items) {
      if (it.merged == 0) continue;
      uint8_t* hip = buf + it.off + prefixLen;
      if (it.t.version == 4) {
        Put16(hip + 2, static_cast<uint32_t>(it.t.total));
        hip[10] = hip[11] = 0;
        Put16(hip + 10, static_cast<uint16_t>(~Sum16(hip, it.t.l4)));
      } else {
        Put16(hip + 4, static_cast<uint32_t>(it.t.total - 40));
      }
      StoreTcpPartialChecksum(hip, it.t);
      outLen[it.out] = static_cast<int32_t>(it.len);
      outGso[it.out] = static_cast<int32_t>(it.mss);
      offloadCounters.groSuperPackets++;
    }
  }
};

thread_local std::vector<Item> itemsScratch;
thread_local std::vector<size_t> highScratch;

// groCoalesce(buf, offsets, lengths, gso, addrs, ports, count, maxLen, prefixLen,
//             outOffsets, outLengths, outGso, outSlots) -> np.
// Input: `count` received datagrams, datagram i at buf[offsets[i], +lengths[i])
// (slot room: maxLen bytes), a train of gso[i]-byte datagrams when gso[i] > 0
// (UDP_GRO), sent by addrs[i]:ports[i]. Each datagram is `prefixLen` bytes of
// overlay header then an IP packet. Output: `np` packets in arrival order,
// packet p at buf[outOffsets[p], +outLengths[p]) (prefix included) from
// datagram outSlots[p], a TCP super-packet when outGso[p] (= MSS) > 0 — its
// lengths set, its checksum partial (ready for a GSO virtio header). Negative
// lengths (truncated datagrams) pass through. Datagrams beyond the output
// capacity are dropped (capacity >= 128 * count never drops).
Napi::Value GroCoalesce(const Napi::CallbackInfo& info) {
  const char* fn = "groCoalesce";
  Napi::Env env = info.Env();
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths, gso, outOff, outLen, outGso, outSlot;
  Span<uint32_t> addrs;
  Span<uint16_t> ports;
  int64_t count, maxLen, prefixLen;
  if (!ArgBytes(info, 0, fn, "buf", &buf) || !ArgInt32s(info, 1, fn, "offsets", &offsets) ||
      !ArgInt32s(info, 2, fn, "lengths", &lengths) || !ArgInt32s(info, 3, fn, "gso", &gso) ||
      !ArgUint32s(info, 4, fn, "addrs", &addrs) || !ArgUint16s(info, 5, fn, "ports", &ports) ||
      !ArgInt(info, 6, fn, "count", 0, INT32_MAX, &count) || !ArgInt(info, 7, fn, "maxLen", 1, INT32_MAX, &maxLen) ||
      !ArgInt(info, 8, fn, "prefixLen", 0, static_cast<int64_t>(kMaxPrefix), &prefixLen) ||
      !ArgInt32s(info, 9, fn, "outOffsets", &outOff) || !ArgInt32s(info, 10, fn, "outLengths", &outLen) ||
      !ArgInt32s(info, 11, fn, "outGso", &outGso) || !ArgInt32s(info, 12, fn, "outSlots", &outSlot) ||
      !CheckCount(env, fn, count, "offsets", offsets.len) || !CheckCount(env, fn, count, "lengths", lengths.len) ||
      !CheckCount(env, fn, count, "gso", gso.len) || !CheckCount(env, fn, count, "addrs", addrs.len) ||
      !CheckCount(env, fn, count, "ports", ports.len) || !CheckReadSlots(env, fn, buf, offsets, maxLen, count))
    return Napi::Value();
  size_t cap = outOff.len;
  if (outLen.len < cap) cap = outLen.len;
  if (outGso.len < cap) cap = outGso.len;
  if (outSlot.len < cap) cap = outSlot.len;
  for (int64_t i = 0; i < count; i++) {
    if (lengths.data[i] > maxLen) {
      ThrowRange(env, "%s: lengths[%lld] (%d) exceeds maxLen (%lld)", fn, static_cast<long long>(i), lengths.data[i],
                 static_cast<long long>(maxLen));
      return Napi::Value();
    }
  }
  size_t np = CoalesceLoop(buf.data, offsets.data, lengths.data, gso.data, addrs.data, ports.data,
                           static_cast<size_t>(count), static_cast<size_t>(maxLen), static_cast<size_t>(prefixLen),
                           outOff.data, outLen.data, outGso.data, outSlot.data, cap);
  return Napi::Number::New(env, static_cast<double>(np));
}

}  // namespace

size_t CoalesceLoop(uint8_t* buf, const int32_t* offsets, const int32_t* lengths, const int32_t* gso,
                    const uint32_t* addrs, const uint16_t* ports, size_t count, size_t maxLen, size_t prefixLen,
                    int32_t* outOff, int32_t* outLen, int32_t* outGso, int32_t* outSlot, size_t cap) {
  itemsScratch.clear();
  highScratch.assign(count, 0);
  Gro g{buf, prefixLen, addrs, ports, outOff, outLen, outGso, outSlot, cap, 0, 0, &itemsScratch, &highScratch};
  for (size_t i = 0; i < count; i++) {
    uint32_t slot = static_cast<uint32_t>(i);
    size_t base = static_cast<size_t>(offsets[i]);
    int32_t len = lengths[i];
    highScratch[slot] = base;
    if (len <= 0) {
      g.Emit(base, len, slot);
      continue;
    }
    size_t L = static_cast<size_t>(len);
    size_t seg = gso[i] > 0 && static_cast<size_t>(gso[i]) < L ? static_cast<size_t>(gso[i]) : L;
    for (size_t pos = 0; pos < L; pos += seg) g.Segment(base + pos, L - pos < seg ? L - pos : seg, slot, base + maxLen);
  }
  g.Finish();
  return g.np;
}

void InitGro(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "groCoalesce", GroCoalesce);
}

}  // namespace sluice
