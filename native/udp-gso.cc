// UDP offloads. Send: a TCP super-packet (gso[i] = MSS) behind an overlay
// prefix is cut into segments whose headers are built in scratch memory and
// whose payloads stay where they are (iovecs), and each train of up to 64
// segments goes out as ONE datagram-train message with a UDP_SEGMENT cmsg:
// the kernel emits ordinary, equally sized UDP datagrams (the last may be
// shorter), so the wire format is unchanged. Consecutive ordinary datagrams to
// the same peer are trained the same way. Receive: UDP_GRO (see recvBatch).
//
// If the kernel refuses UDP_SEGMENT with EIO (egress device without checksum
// offload), GSO is turned off for the process and the same segments go out
// one datagram each (as wireguard-go does).
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "args.h"
#include "errors.h"
#include "io.h"
#include "tcp-gso.h"
#include "udp.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace sluice {

namespace {

constexpr size_t kWinMsgs = UIO_MAXIOV;  // sendmmsg's vlen cap
constexpr size_t kWinSegs = 4096;        // segment headers per window
constexpr size_t kWinIovs = 2 * kWinSegs + kWinMsgs;
constexpr size_t kMaxTrain = 64;          // UDP_MAX_SEGMENTS before Linux 6.x raised it to 128
constexpr size_t kMaxUdpPayload = 65507;  // 65535 - IPv4 header - UDP header

union Ctrl {
  char buf[CMSG_SPACE(sizeof(uint16_t))];
  cmsghdr align;
};

struct MsgInfo {
  uint32_t first, last;  // entries carried (a train of ordinary datagrams may carry several)
  bool firstOfEntry;     // false for the 2nd.. message of one super-packet
  bool plain;            // ordinary datagrams (extendable train) rather than segments
  bool closed;           // no more datagrams may join the train
  uint16_t segSize;
  uint32_t segs, bytes;
  uint32_t iovStart, iovCount;
};

struct Scratch {
  std::vector<mmsghdr> msgs;
  std::vector<MsgInfo> info;
  std::vector<sockaddr_in> addrs;
  std::vector<Ctrl> ctrl;
  std::vector<iovec> iovs;
  std::vector<uint8_t> hdrs;
  void Init() {
    if (!msgs.empty()) return;
    msgs.resize(kWinMsgs);
    info.resize(kWinMsgs);
    addrs.resize(kWinMsgs);
    ctrl.resize(kWinMsgs);
    iovs.resize(kWinIovs);
    hdrs.resize(kWinSegs * kSegHdrStride);
  }
};
thread_local Scratch scratch;

// Process-wide: set once the kernel refused UDP_SEGMENT (by any datapath thread).
std::atomic<bool> gsoRefused{false};

struct Batch {
  uint8_t* buf;
  const int32_t* offsets;
  int32_t* lengths;
  const uint32_t* addrs;
  const uint16_t* ports;
  const int32_t* gso;
  size_t count;
  size_t prefixLen;
  bool useGso;
};

struct Window {
  size_t msgs = 0, iovs = 0, hdrs = 0;
};

MsgInfo& NewMsg(Window& w, uint32_t e, uint32_t addr, uint16_t port) {
  MsgInfo& m = scratch.info[w.msgs];
  m = MsgInfo{e, e, true, false, true, 0, 0, 0, static_cast<uint32_t>(w.iovs), 0};
  sockaddr_in& sa = scratch.addrs[w.msgs];
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(addr);
  sa.sin_port = htons(port);
  w.msgs++;
  return m;
}

void AddIov(Window& w, MsgInfo& m, void* base, size_t len) {
  scratch.iovs[w.iovs++] = iovec{base, len};
  m.iovCount++;
}

// Fills a window with messages for entries [e0, e1); returns e1. Entries that
// are malformed super-packets are marked -EINVAL and carried by no message.
size_t Build(const Batch& b, size_t e0, Window& w) {
  size_t e = e0;
  for (; e < b.count; e++) {
    uint8_t* pkt = b.buf + b.offsets[e];
    size_t len = static_cast<size_t>(b.lengths[e]);
    uint32_t addr = b.addrs[e];
    uint16_t port = b.ports[e];
    size_t mss = b.gso[e] > 0 ? static_cast<size_t>(b.gso[e] & 0xffff) : 0;
    if (mss == 0) {
      if (w.msgs > 0) {
        MsgInfo& last = scratch.info[w.msgs - 1];
        const sockaddr_in& sa = scratch.addrs[w.msgs - 1];
        if (last.plain && !last.closed && len > 0 && len <= last.segSize && last.segs < kMaxTrain &&
            last.bytes + len <= kMaxUdpPayload && w.iovs < kWinIovs && sa.sin_addr.s_addr == htonl(addr) &&
            sa.sin_port == htons(port)) {
          AddIov(w, last, pkt, len);
          last.segs++;
          last.bytes += static_cast<uint32_t>(len);
          last.last = static_cast<uint32_t>(e);
          if (len < last.segSize) last.closed = true;
          continue;
        }
      }
      if (w.msgs == kWinMsgs || w.iovs == kWinIovs) break;
      MsgInfo& m = NewMsg(w, static_cast<uint32_t>(e), addr, port);
      m.plain = true;
      m.closed = !b.useGso || len == 0 || len > 0xffff;
      m.segSize = static_cast<uint16_t>(len);
      m.segs = 1;
      m.bytes = static_cast<uint32_t>(len);
      AddIov(w, m, pkt, len);
      continue;
    }
    TcpInfo t;
    size_t nseg = 0;
    if (b.prefixLen <= kMaxPrefix && b.prefixLen < len && ParseTcp(pkt + b.prefixLen, len - b.prefixLen, &t))
      nseg = SegmentCount(t, mss);
    if (nseg == 0) {
      b.lengths[e] = -EINVAL;
      continue;
    }
    size_t segSize = b.prefixLen + t.l4 + t.tcphl + mss;
    size_t perMsg = 1;
    if (b.useGso && segSize <= kMaxUdpPayload) {
      perMsg = kMaxUdpPayload / segSize;
      if (perMsg > kMaxTrain) perMsg = kMaxTrain;
    }
    size_t msgsNeeded = (nseg + perMsg - 1) / perMsg;
    if (w.msgs + msgsNeeded > kWinMsgs || w.iovs + 2 * nseg > kWinIovs || w.hdrs + nseg > kWinSegs) break;
    uint8_t* inner = pkt + b.prefixLen;
    size_t payloadOff = t.l4 + t.tcphl;
    MsgInfo* m = nullptr;
    for (size_t k = 0; k < nseg; k++) {
      if (k % perMsg == 0) {
        m = &NewMsg(w, static_cast<uint32_t>(e), addr, port);
        m->firstOfEntry = k == 0;
        m->segSize = static_cast<uint16_t>(segSize);
      }
      uint8_t* h = scratch.hdrs.data() + (w.hdrs++) * kSegHdrStride;
      size_t hl = BuildSegmentHeader(pkt, b.prefixLen, inner, t, mss, k, nseg, h);
      size_t pay = SegmentPayload(t, mss, k);
      AddIov(w, *m, h, hl);
      if (pay > 0) AddIov(w, *m, inner + payloadOff + k * mss, pay);
      m->segs++;
      m->bytes += static_cast<uint32_t>(hl + pay);
    }
    offloadCounters.gsoSegments += nseg;
  }
  for (size_t i = 0; i < w.msgs; i++) {
    const MsgInfo& m = scratch.info[i];
    msghdr& h = scratch.msgs[i].msg_hdr;
    memset(&h, 0, sizeof h);
    h.msg_name = &scratch.addrs[i];
    h.msg_namelen = sizeof(sockaddr_in);
    h.msg_iov = &scratch.iovs[m.iovStart];
    h.msg_iovlen = m.iovCount;
    if (m.segs > 1) {
      Ctrl& c = scratch.ctrl[i];
      memset(&c, 0, sizeof c);
      h.msg_control = c.buf;
      h.msg_controllen = sizeof c.buf;
      cmsghdr* cm = CMSG_FIRSTHDR(&h);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t gs = m.segSize;
      memcpy(CMSG_DATA(cm), &gs, sizeof gs);
    }
  }
  return e;
}

// Outcome of sending one window.
enum class Sent { All, Stopped, Retry, Fatal };

// Sends the window; on Stopped/Fatal `*consumed` is the entry count consumed,
// on Retry `*consumed` is the entry to rebuild from (GSO now off), on Fatal
// `*err` is the errno.
Sent SendWindow(int fd, const Batch& b, const Window& w, size_t* consumed, int* err) {
  size_t m = 0;
  while (m < w.msgs) {
    int r = sendmmsg(fd, scratch.msgs.data() + m, static_cast<unsigned>(w.msgs - m), MSG_DONTWAIT);
    if (r > 0) {
      for (int i = 0; i < r; i++)
        if (scratch.info[m + i].segs > 1) offloadCounters.udpGsoSends++;
      m += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) break;
    int e = errno;
    if (e == EINTR) continue;
    const MsgInfo& mi = scratch.info[m];  // sendmmsg reports the error of message m
    size_t done = mi.firstOfEntry ? mi.first : mi.first + 1;
    WriteFailure how = ClassifyWriteError(e);
    if (how == WriteFailure::kStop) {
      *consumed = done;
      return Sent::Stopped;
    }
    if (e == EIO && mi.segs > 1) {
      gsoRefused = true;
      offloadCounters.udpGsoDisabled = 1;
      *consumed = mi.first;  // a super-packet sent in part is sent again whole: TCP drops the duplicate
      return Sent::Retry;
    }
    if (how == WriteFailure::kFatal) {
      *consumed = done;
      *err = e;
      return Sent::Fatal;
    }
    for (uint32_t i = mi.first; i <= mi.last; i++) b.lengths[i] = -e;
    uint32_t last = mi.last;
    while (m < w.msgs && scratch.info[m].first <= last) m++;
  }
  return Sent::All;
}

// sendBatchGso(fd, buf, offsets, lengths, addrs, ports, gso, count, prefixLen, useGso) -> n.
// sendBatch for packets with GSO meta: entry i is an overlay prefix of
// `prefixLen` bytes followed by an IP packet; gso[i] > 0 marks a TCP
// super-packet cut into segments of gso[i] payload bytes, each behind a copy
// of the prefix. useGso 1 = send trains with UDP_SEGMENT (until the kernel
// refuses it). Same return contract as sendBatch.
Napi::Value SendBatchGso(const Napi::CallbackInfo& info) {
  const char* fn = "sendBatchGso";
  Napi::Env env = info.Env();
  int fd;
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths, gso;
  Span<uint32_t> addrs;
  Span<uint16_t> ports;
  int64_t count, prefixLen, useGso;
  if (!ArgFd(info, 0, fn, &fd) || !ArgBytes(info, 1, fn, "buf", &buf) ||
      !ArgInt32s(info, 2, fn, "offsets", &offsets) || !ArgInt32s(info, 3, fn, "lengths", &lengths) ||
      !ArgUint32s(info, 4, fn, "addrs", &addrs) || !ArgUint16s(info, 5, fn, "ports", &ports) ||
      !ArgInt32s(info, 6, fn, "gso", &gso) || !ArgInt(info, 7, fn, "count", 0, INT32_MAX, &count) ||
      !ArgInt(info, 8, fn, "prefixLen", 0, static_cast<int64_t>(kMaxPrefix), &prefixLen) ||
      !ArgInt(info, 9, fn, "useGso", 0, 1, &useGso) || !CheckCount(env, fn, count, "offsets", offsets.len) ||
      !CheckCount(env, fn, count, "lengths", lengths.len) || !CheckCount(env, fn, count, "addrs", addrs.len) ||
      !CheckCount(env, fn, count, "ports", ports.len) || !CheckCount(env, fn, count, "gso", gso.len) ||
      !CheckWriteSlots(env, fn, buf, offsets, lengths, count))
    return Napi::Value();
  int64_t n = SendGsoLoop(fd, buf.data, offsets.data, lengths.data, addrs.data, ports.data, gso.data,
                          static_cast<size_t>(count), static_cast<size_t>(prefixLen), useGso == 1);
  if (n < 0) {
    ThrowErrno(env, static_cast<int>(-n), "sendmmsg");
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// udpSetGro(fd, on): setsockopt(SOL_UDP, UDP_GRO). With it on, one received
// datagram may be a train of equally sized datagrams (recvBatch reports the
// size in gso[i]). Throws the kernel's refusal (ENOPROTOOPT before 5.0).
Napi::Value UdpSetGro(const Napi::CallbackInfo& info) {
  int fd;
  int64_t on;
  if (!ArgFd(info, 0, "udpSetGro", &fd) || !ArgInt(info, 1, "udpSetGro", "on", 0, 1, &on)) return Napi::Value();
  int v = static_cast<int>(on);
  if (setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) < 0) {
    ThrowErrno(info.Env(), errno, "setsockopt", "UDP_GRO");
    return Napi::Value();
  }
  return Napi::Value();
}

// udpGsoSupported(fd) -> boolean: whether the kernel knows UDP_SEGMENT (and
// has not refused it since).
Napi::Value UdpGsoSupported(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, "udpGsoSupported", &fd)) return Napi::Value();
  int v = 0;
  socklen_t len = sizeof v;
  bool ok = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0 && !gsoRefused;
  return Napi::Boolean::New(info.Env(), ok);
}

// offloadStats() -> { counter: number }: the process-wide offload counters.
Napi::Value OffloadStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const OffloadCounters& c = offloadCounters;
  o.Set("tunGsoRead", static_cast<double>(c.tunGsoRead));
  o.Set("tunBadVnet", static_cast<double>(c.tunBadVnet));
  o.Set("gsoSegments", static_cast<double>(c.gsoSegments));
  o.Set("udpGsoSends", static_cast<double>(c.udpGsoSends));
  o.Set("udpGsoDisabled", static_cast<double>(c.udpGsoDisabled));
  o.Set("groMessages", static_cast<double>(c.groMessages));
  o.Set("groMerged", static_cast<double>(c.groMerged));
  o.Set("groBadChecksum", static_cast<double>(c.groBadChecksum));
  o.Set("groSuperPackets", static_cast<double>(c.groSuperPackets));
  return o;
}

}  // namespace

bool UdpGsoUsable() { return !gsoRefused; }

int64_t SendGsoLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, const uint32_t* addrs,
                    const uint16_t* ports, const int32_t* gso, size_t count, size_t prefixLen, bool useGso) {
  scratch.Init();
  Batch b{buf, offsets, lengths, addrs, ports, gso, count, prefixLen, useGso && !gsoRefused};
  size_t e = 0;
  while (e < b.count) {
    Window w;
    size_t next = Build(b, e, w);
    size_t consumed = 0;
    int err = 0;
    switch (SendWindow(fd, b, w, &consumed, &err)) {
      case Sent::All:
        e = next;
        break;
      case Sent::Stopped:
        return static_cast<int64_t>(consumed);
      case Sent::Retry:
        b.useGso = false;
        e = consumed;
        break;
      case Sent::Fatal:
        return consumed == 0 ? -err : static_cast<int64_t>(consumed);
    }
  }
  return static_cast<int64_t>(b.count);
}

void InitUdpGso(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "sendBatchGso", SendBatchGso);
  Export(env, exports, "udpSetGro", UdpSetGro);
  Export(env, exports, "udpGsoSupported", UdpGsoSupported);
  Export(env, exports, "offloadStats", OffloadStats);
}

}  // namespace sluice
