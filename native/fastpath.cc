// Native fast path, in the manner of Open vSwitch's datapath: the JS
// forwarder is the slow path that decides (anti-spoofing, routing, TTL/MTU,
// ICMP errors, the policy gate). After it forwarded a packet it installs an
// exact-match entry for the packet's flow, and from then on the poll callback
// forwards the flow's packets natively, without a JS call, until the entry
// expires (fastPathInstall's ttlMs) — so the gate still sees every active flow
// regularly; JS calls fastPathClear when policy or routes change. Anything
// the fast path is not sure about goes to JS:
// unknown or expired flows, IPv6, IPv4 options, fragments, TCP SYN/FIN/RST,
// ICMP other than echo, TTL <= 1, packets (or segments) above the MTU.
//
//   Poller::OnPoll(fd) → FastPathOnReadable(fd), for fds attached by JS:
//     TUN port: read a batch (virtio or plain) → per packet: key → entry →
//               checks → TTL-1 → overlay header written in place → UDP
//               (UDP_SEGMENT trains) | or a write to a local TUN
//     UDP port: recvmmsg (UDP_GRO) → coalesce → per packet: key with the
//               sender → entry → overlay header must match → checks →
//               TTL-1 → write to the TUN
//   Misses are listed in the port's `pending` array and JS is called, which
//   forwards them before anything else. A miss also sends the rest of its
//   flow's packets in that batch to JS, so a flow is never reordered.
#include "fastpath.h"

#include <errno.h>
#include <sys/stat.h>
#include <time.h>

#include <cstring>
#include <vector>

#include "args.h"
#include "checksum.h"
#include "errors.h"
#include "io.h"
#include "tcp-gso.h"

namespace sluice {

namespace {

inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t Get32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline void Put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04;

// Where a packet came in and its IPv4 5-tuple (ICMP echo: the id as both
// ports, the type kept apart). Zero-initialised, compared whole.
struct Key {
  int32_t ingress;     // the fd it was read from
  uint32_t outerAddr;  // underlay sender (underlay ingress), else 0
  uint32_t src, dst;
  uint16_t sport, dport;
  uint16_t outerPort;
  uint8_t proto, icmpType;
};
static_assert(sizeof(Key) == 24, "Key is compared as 24 bytes");

struct Parsed {
  size_t total = 0;   // IP packet length
  size_t tcphl = 0;
  uint8_t tcpFlags = 0;
};

// IPv4 without options, not a fragment; TCP, UDP or ICMP echo.
bool KeyOf(const uint8_t* ip, size_t len, Key* k, Parsed* x) {
  if (len < 20 || ip[0] != 0x45) return false;
  size_t total = Get16(ip + 2);
  if (total < 20 || total > len || (Get16(ip + 6) & 0x3fff) != 0) return false;
  const uint8_t* l4 = ip + 20;
  size_t l4len = total - 20;
  k->proto = ip[9];
  k->src = Get32(ip + 12);
  k->dst = Get32(ip + 16);
  switch (ip[9]) {
    case 6:
      if (l4len < 20) return false;
      x->tcphl = static_cast<size_t>(l4[12] >> 4) * 4;
      if (x->tcphl < 20 || x->tcphl > l4len) return false;
      x->tcpFlags = l4[13];
      k->sport = Get16(l4);
      k->dport = Get16(l4 + 2);
      break;
    case 17:
      if (l4len < 8) return false;
      k->sport = Get16(l4);
      k->dport = Get16(l4 + 2);
      break;
    case 1:
      if (l4len < 8 || (l4[0] != 0 && l4[0] != 8) || l4[1] != 0) return false;
      k->icmpType = l4[0];
      k->sport = k->dport = Get16(l4 + 4);
      break;
    default:
      return false;
  }
  x->total = total;
  return true;
}

struct Entry {
  Key key;
  int64_t expires;  // 0: free slot
  int32_t outFd;
  uint32_t peerAddr;
  uint16_t peerPort, mtu;
  uint8_t toPeer, vnet, prefixLen;
  uint32_t pendingRun;  // the last run in which one of its packets went to JS
  uint64_t packets, bytes;
  uint8_t prefix[kMaxPrefix];  // toPeer: header written in front; underlay ingress: header expected in front
};

constexpr size_t kTableSize = 1 << 14;
constexpr size_t kProbe = 16;
std::vector<Entry> table;

size_t Hash(const Key& k) {
  uint64_t w[3];
  memcpy(w, &k, sizeof w);
  uint64_t h = (w[0] * 0x9e3779b97f4a7c15ULL) ^ (w[1] * 0xc2b2ae3d27d4eb4fULL) ^ (w[2] * 0x165667b19e3779f9ULL);
  return static_cast<size_t>(h ^ (h >> 29));
}

Entry* Lookup(const Key& k, int64_t now) {
  if (table.empty()) return nullptr;
  size_t h = Hash(k);
  for (size_t i = 0; i < kProbe; i++) {
    Entry& e = table[(h + i) & (kTableSize - 1)];
    if (e.expires > now && memcmp(&e.key, &k, sizeof k) == 0) return &e;
  }
  return nullptr;
}

struct Stats {
  uint64_t installs = 0, hits = 0, misses = 0, toJs = 0, evictions = 0, txDrops = 0;
} stats;

// Packets the fast path moved, per fd (rx: read by a port, whether forwarded
// natively or left to JS; tx: sent natively), for the JS counters.
struct FdCounters {
  int fd;
  uint64_t rxPackets, rxBytes, txPackets, txBytes;
};
std::vector<FdCounters> fdCounters;

FdCounters& CountersOf(int fd) {
  for (FdCounters& c : fdCounters)
    if (c.fd == fd) return c;
  fdCounters.push_back(FdCounters{fd, 0, 0, 0, 0});
  return fdCounters.back();
}

// Queued output of one run, flushed at its end.
struct TunOut {
  int fd;
  bool vnet;
  uint8_t* pkt;
  size_t len, mss;
};
struct Outputs {
  int udpFd = -1;
  size_t prefixLen = 0;
  bool useGso = false;
  std::vector<int32_t> off, len, gso;
  std::vector<uint32_t> addr;
  std::vector<uint16_t> port;
  std::vector<TunOut> tun;
} out;

enum Kind { kTunPlain = 1, kTunVnet = 2, kUdp = 3 };

struct Port {
  int fd = -1, kind = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  uint8_t* buf = nullptr;
  int32_t *offsets = nullptr, *lengths = nullptr, *gso = nullptr;
  uint32_t* addrs = nullptr;
  uint16_t* ports = nullptr;
  size_t count = 0, maxLen = 0;
  int32_t* pending = nullptr;  // [0] = n, [1..n] = indices left for JS
  size_t pendingCap = 0;
  int32_t *cOff = nullptr, *cLen = nullptr, *cGso = nullptr, *cSlot = nullptr;  // UDP with GRO: coalesced packets
  size_t cCap = 0, prefixLen = 0;
  bool useGso = false, gro = false;
  std::vector<napi_ref> refs;
  napi_env env = nullptr;
};
std::vector<Port*> portList;
uint32_t runId = 0;

Port* FindPort(int fd) {
  for (Port* p : portList)
    if (p->fd == fd) return p;
  return nullptr;
}

void DropPort(Port* p) {
  for (napi_ref r : p->refs) napi_delete_reference(p->env, r);
  for (size_t i = 0; i < portList.size(); i++) {
    if (portList[i] == p) {
      portList.erase(portList.begin() + static_cast<long>(i));
      break;
    }
  }
  delete p;
}

void ClearOutputs() {
  out.off.clear();
  out.len.clear();
  out.gso.clear();
  out.addr.clear();
  out.port.clear();
  out.tun.clear();
  out.udpFd = -1;
}

void Flush(uint8_t* buf) {
  size_t n = out.off.size();
  if (n > 0) {
    int64_t r = SendGsoLoop(out.udpFd, buf, out.off.data(), out.len.data(), out.addr.data(), out.port.data(),
                            out.gso.data(), n, out.prefixLen, out.useGso && UdpGsoUsable());
    size_t sent = r < 0 ? 0 : static_cast<size_t>(r);
    FdCounters& c = CountersOf(out.udpFd);
    for (size_t i = 0; i < sent; i++) {
      if (out.len[i] < 0) {
        stats.txDrops++;
      } else {
        c.txPackets++;
        c.txBytes += static_cast<uint64_t>(out.len[i]);
      }
    }
    stats.txDrops += n - sent;
  }
  for (const TunOut& t : out.tun) {
    if (WriteGso(t.fd, t.pkt, t.len, t.mss, t.vnet) != 0) {
      stats.txDrops++;
    } else {
      FdCounters& c = CountersOf(t.fd);
      c.txPackets++;
      c.txBytes += t.len;
    }
  }
  ClearOutputs();
}

// RFC 1624: TTL - 1 with the header checksum updated, not recomputed.
void DecrementTtl(uint8_t* ip) {
  uint16_t old = Get16(ip + 8);
  ip[8]--;
  uint16_t now = Get16(ip + 8);
  uint32_t sum = static_cast<uint16_t>(~Get16(ip + 10)) + static_cast<uint16_t>(~old) + now;
  Put16(ip + 10, static_cast<uint16_t>(~Fold(sum)));
}

// The checks the JS pipeline made for this flow that depend on the packet.
bool Forwardable(const Entry& e, const uint8_t* ip, const Parsed& x, size_t mss) {
  if (ip[8] <= 1) return false;
  if (ip[9] == 6 && (x.tcpFlags & (kSyn | kFin | kRst)) != 0) return false;
  if (mss > 0) return ip[9] == 6 && 20 + x.tcphl + mss <= e.mtu;
  return x.total <= e.mtu;
}

// Forwards one packet if its flow has an entry; false: leave it to JS.
bool Forward(Port* p, Key& k, uint8_t* ip, size_t len, size_t mss, const uint8_t* prefixIn, int64_t now) {
  Parsed x;
  if (!KeyOf(ip, len, &k, &x)) return false;
  Entry* e = Lookup(k, now);
  if (e == nullptr) {
    stats.misses++;
    return false;
  }
  if (e->pendingRun == runId) return false;
  bool ok = Forwardable(*e, ip, x, mss);
  if (ok && prefixIn != nullptr) ok = !e->toPeer && e->prefixLen == p->prefixLen && memcmp(prefixIn, e->prefix, e->prefixLen) == 0;
  if (ok && e->toPeer) ok = static_cast<size_t>(ip - p->buf) >= e->prefixLen;  // headroom for the header
  if (!ok) {
    e->pendingRun = runId;
    return false;
  }
  DecrementTtl(ip);
  if (e->toPeer) {
    if (out.udpFd >= 0 && (out.udpFd != e->outFd || out.prefixLen != e->prefixLen)) Flush(p->buf);
    out.udpFd = e->outFd;
    out.prefixLen = e->prefixLen;
    out.useGso = p->useGso;
    uint8_t* start = ip - e->prefixLen;
    memcpy(start, e->prefix, e->prefixLen);
    out.off.push_back(static_cast<int32_t>(start - p->buf));
    out.len.push_back(static_cast<int32_t>(x.total + e->prefixLen));
    out.gso.push_back(static_cast<int32_t>(mss));
    out.addr.push_back(e->peerAddr);
    out.port.push_back(e->peerPort);
  } else {
    out.tun.push_back(TunOut{e->outFd, e->vnet != 0, ip, x.total, mss});
  }
  e->packets++;
  e->bytes += x.total;
  stats.hits++;
  return true;
}

void Pend(Port* p, size_t i) {
  size_t n = static_cast<size_t>(p->pending[0]);
  if (n + 1 < p->pendingCap) {
    p->pending[n + 1] = static_cast<int32_t>(i);
    p->pending[0] = static_cast<int32_t>(n + 1);
  }
  stats.toJs++;
}

// One batch from a TUN port; returns whether JS must be called.
bool RunTun(Port* p, int64_t now) {
  int64_t n = p->kind == kTunVnet
                  ? ReadVnetLoop(p->fd, p->buf, p->offsets, p->lengths, p->gso, p->maxLen, p->count)
                  : ReadPlainLoop(p->fd, p->buf, p->offsets, p->lengths, p->maxLen, p->count);
  if (n < 0) return true;  // JS reads again and reports the error
  for (int64_t i = 0; i < n; i++) {
    if (p->kind == kTunPlain) p->gso[i] = 0;
    size_t len = static_cast<size_t>(p->lengths[i]);
    FdCounters& c = CountersOf(p->fd);
    c.rxPackets++;
    c.rxBytes += len;
    Key k{};
    k.ingress = p->fd;
    size_t mss = p->gso[i] > 0 ? static_cast<size_t>(p->gso[i] & 0xffff) : 0;
    if (len >= p->maxLen || !Forward(p, k, p->buf + p->offsets[i], len, mss, nullptr, now)) Pend(p, static_cast<size_t>(i));
  }
  Flush(p->buf);
  return p->pending[0] > 0;
}

// One batch from the underlay socket; returns whether JS must be called.
bool RunUdp(Port* p, int64_t now) {
  int64_t n = RecvLoop(p->fd, p->buf, p->offsets, p->lengths, p->maxLen, p->addrs, p->ports, p->gro ? p->gso : nullptr,
                       p->count);
  if (n < 0) return true;
  FdCounters& c = CountersOf(p->fd);
  for (int64_t i = 0; i < n; i++) {
    int32_t len = p->lengths[i], g = p->gro ? p->gso[i] : 0;
    if (len < 0) continue;
    c.rxPackets += g > 0 ? static_cast<uint64_t>((len + g - 1) / g) : 1;
    c.rxBytes += static_cast<uint64_t>(len);
  }
  size_t np = static_cast<size_t>(n);
  if (p->gro) {
    np = CoalesceLoop(p->buf, p->offsets, p->lengths, p->gso, p->addrs, p->ports, np, p->maxLen, p->prefixLen, p->cOff,
                      p->cLen, p->cGso, p->cSlot, p->cCap);
  }
  for (size_t q = 0; q < np; q++) {
    int32_t off = p->gro ? p->cOff[q] : p->offsets[q];
    int32_t len = p->gro ? p->cLen[q] : p->lengths[q];
    size_t mss = p->gro && p->cGso[q] > 0 ? static_cast<size_t>(p->cGso[q]) : 0;
    size_t slot = p->gro ? static_cast<size_t>(p->cSlot[q]) : q;
    bool done = false;
    if (len > static_cast<int32_t>(p->prefixLen)) {
      Key k{};
      k.ingress = p->fd;
      k.outerAddr = p->addrs[slot];
      k.outerPort = p->ports[slot];
      uint8_t* d = p->buf + off;
      done = Forward(p, k, d + p->prefixLen, static_cast<size_t>(len) - p->prefixLen, mss, d, now);
    }
    if (!done) Pend(p, q);
  }
  Flush(p->buf);
  return p->pending[0] > 0;
}

// --- JS API -------------------------------------------------------------------

template <typename T>
bool Typed(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, napi_typedarray_type type,
           Port* p, T** data, size_t* len) {
  napi_env env = info.Env();
  bool is = false;
  napi_typedarray_type t;
  void* d = nullptr;
  size_t n = 0;
  if (napi_is_typedarray(env, info[i], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, info[i], &t, &n, &d, nullptr, nullptr) != napi_ok || t != type) {
    ThrowType(env, "%s: %s must be a typed array of the right type", fn, what);
    return false;
  }
  napi_ref r;
  if (napi_create_reference(env, info[i], 1, &r) != napi_ok) {
    ThrowType(env, "%s: cannot hold %s", fn, what);
    return false;
  }
  p->refs.push_back(r);  // the memory stays alive (and in place) while attached
  *data = static_cast<T*>(d);
  if (len != nullptr) *len = n;
  return true;
}

// fastPathAttach(fd, kind, buf, offsets, lengths, gso, addrs, ports, count, maxLen, pending, prefixLen, flags
//                [, cOffsets, cLengths, cGso, cSlots]): from now on, the Poller of `fd` runs the fast path
// on this batch memory first. kind 1 plain TUN, 2 TUN with virtio header, 3 underlay UDP socket.
// flags: 1 = sends may use UDP_SEGMENT, 2 = UDP_GRO is on (the c* arrays receive coalesced packets).
Napi::Value Attach(const Napi::CallbackInfo& info) {
  const char* fn = "fastPathAttach";
  Napi::Env env = info.Env();
  int fd;
  int64_t kind, count, maxLen, prefixLen, flags;
  if (!ArgFd(info, 0, fn, &fd) || !ArgInt(info, 1, fn, "kind", 1, 3, &kind) ||
      !ArgInt(info, 8, fn, "count", 1, UIO_MAXIOV, &count) || !ArgInt(info, 9, fn, "maxLen", 1, INT32_MAX, &maxLen) ||
      !ArgInt(info, 11, fn, "prefixLen", 0, static_cast<int64_t>(kMaxPrefix), &prefixLen) ||
      !ArgInt(info, 12, fn, "flags", 0, 3, &flags))
    return Napi::Value();
  struct stat st;
  if (fstat(fd, &st) < 0) {
    ThrowErrno(env, errno, "fstat");
    return Napi::Value();
  }
  Port* p = new Port();
  p->env = env;
  size_t bufLen = 0, n = 0, pendLen = 0;
  bool ok = Typed(info, 2, fn, "buf", napi_uint8_array, p, &p->buf, &bufLen) &&
            Typed(info, 3, fn, "offsets", napi_int32_array, p, &p->offsets, &n) && n >= static_cast<size_t>(count) &&
            Typed(info, 4, fn, "lengths", napi_int32_array, p, &p->lengths, &n) && n >= static_cast<size_t>(count) &&
            Typed(info, 5, fn, "gso", napi_int32_array, p, &p->gso, &n) && n >= static_cast<size_t>(count) &&
            Typed(info, 6, fn, "addrs", napi_uint32_array, p, &p->addrs, &n) && n >= static_cast<size_t>(count) &&
            Typed(info, 7, fn, "ports", napi_uint16_array, p, &p->ports, &n) && n >= static_cast<size_t>(count) &&
            Typed(info, 10, fn, "pending", napi_int32_array, p, &p->pending, &pendLen);
  p->gro = kind == kUdp && (flags & 2) != 0;
  if (ok && p->gro) {
    size_t a = 0, b = 0, c = 0, d = 0;
    ok = Typed(info, 13, fn, "cOffsets", napi_int32_array, p, &p->cOff, &a) &&
         Typed(info, 14, fn, "cLengths", napi_int32_array, p, &p->cLen, &b) &&
         Typed(info, 15, fn, "cGso", napi_int32_array, p, &p->cGso, &c) &&
         Typed(info, 16, fn, "cSlots", napi_int32_array, p, &p->cSlot, &d);
    p->cCap = std::min(std::min(a, b), std::min(c, d));
  }
  if (!ok) {
    if (!env.IsExceptionPending()) ThrowRange(env, "%s: a batch array is shorter than count (%lld)", fn, static_cast<long long>(count));
    DropPort(p);
    return Napi::Value();
  }
  for (int64_t i = 0; i < count; i++) {
    int64_t off = p->offsets[i];
    if (off < static_cast<int64_t>(kVnetHdrLen) || off + maxLen > static_cast<int64_t>(bufLen)) {
      ThrowRange(env, "%s: slot %lld does not fit buf", fn, static_cast<long long>(i));
      DropPort(p);
      return Napi::Value();
    }
  }
  if (pendLen < static_cast<size_t>(count) + 1 || (p->gro && pendLen < p->cCap + 1)) {
    ThrowRange(env, "%s: pending must hold 1 + the most packets of a batch", fn);
    DropPort(p);
    return Napi::Value();
  }
  if (Port* old = FindPort(fd)) DropPort(old);
  p->fd = fd;
  p->kind = static_cast<int>(kind);
  p->dev = st.st_dev;
  p->ino = st.st_ino;
  p->count = static_cast<size_t>(count);
  p->maxLen = static_cast<size_t>(maxLen);
  p->pendingCap = pendLen;
  p->prefixLen = static_cast<size_t>(prefixLen);
  p->useGso = (flags & 1) != 0;
  p->pending[0] = 0;
  portList.push_back(p);
  if (table.empty()) table.assign(kTableSize, Entry{});
  return Napi::Value();
}

// fastPathInstall(buf, ipOff, ipLen, prefixOff, prefixLen, ingressFd, outerAddr, outerPort, outFd, flags, mtu,
//                 peerAddr, peerPort, ttlMs) -> boolean: the JS pipeline forwarded the IPv4 packet at
// buf[ipOff, +ipLen], which came in on ingressFd (from outerAddr:outerPort for the underlay), to outFd:
// flags 1 = to a peer (outFd the underlay socket, buf[prefixOff, +prefixLen] the overlay header it wrote),
// 2 = outFd is a TUN with a virtio header. For underlay ingress buf[prefixOff, +prefixLen] is the overlay
// header the flow's datagrams carry. False when the packet is not one the fast path handles.
Napi::Value Install(const Napi::CallbackInfo& info) {
  const char* fn = "fastPathInstall";
  Napi::Env env = info.Env();
  Span<uint8_t> buf;
  int64_t ipOff, ipLen, prefixOff, prefixLen, ingress, outerAddr, outerPort, outFd, flags, mtu, peerAddr, peerPort,
      ttlMs;
  if (!ArgBytes(info, 0, fn, "buf", &buf) || !ArgInt(info, 1, fn, "ipOff", 0, INT32_MAX, &ipOff) ||
      !ArgInt(info, 2, fn, "ipLen", 0, INT32_MAX, &ipLen) || !ArgInt(info, 3, fn, "prefixOff", 0, INT32_MAX, &prefixOff) ||
      !ArgInt(info, 4, fn, "prefixLen", 0, static_cast<int64_t>(kMaxPrefix), &prefixLen) ||
      !ArgInt(info, 5, fn, "ingressFd", 0, INT32_MAX, &ingress) ||
      !ArgInt(info, 6, fn, "outerAddr", 0, UINT32_MAX, &outerAddr) || !ArgInt(info, 7, fn, "outerPort", 0, 65535, &outerPort) ||
      !ArgInt(info, 8, fn, "outFd", 0, INT32_MAX, &outFd) || !ArgInt(info, 9, fn, "flags", 0, 3, &flags) ||
      !ArgInt(info, 10, fn, "mtu", 68, 65535, &mtu) || !ArgInt(info, 11, fn, "peerAddr", 0, UINT32_MAX, &peerAddr) ||
      !ArgInt(info, 12, fn, "peerPort", 0, 65535, &peerPort) || !ArgInt(info, 13, fn, "ttlMs", 1, 600000, &ttlMs) ||
      !CheckRange(env, fn, "ipOff..ipOff+ipLen", ipOff, ipLen, buf.len) ||
      !CheckRange(env, fn, "prefixOff..prefixOff+prefixLen", prefixOff, prefixLen, buf.len))
    return Napi::Value();
  if (table.empty()) table.assign(kTableSize, Entry{});
  Key k{};
  k.ingress = static_cast<int32_t>(ingress);
  k.outerAddr = static_cast<uint32_t>(outerAddr);
  k.outerPort = static_cast<uint16_t>(outerPort);
  Parsed x;
  if (!KeyOf(buf.data + ipOff, static_cast<size_t>(ipLen), &k, &x)) return Napi::Boolean::New(env, false);
  int64_t now = NowNs();
  size_t h = Hash(k);
  Entry* slot = nullptr;
  for (size_t i = 0; i < kProbe; i++) {
    Entry& e = table[(h + i) & (kTableSize - 1)];
    if (e.expires != 0 && memcmp(&e.key, &k, sizeof k) == 0) {
      slot = &e;
      break;
    }
    if (slot == nullptr && e.expires <= now) slot = &e;
  }
  if (slot == nullptr) {  // all live: replace the one closest to expiring
    slot = &table[h & (kTableSize - 1)];
    for (size_t i = 1; i < kProbe; i++) {
      Entry& e = table[(h + i) & (kTableSize - 1)];
      if (e.expires < slot->expires) slot = &e;
    }
    stats.evictions++;
  }
  if (slot->expires == 0 || memcmp(&slot->key, &k, sizeof k) != 0) {
    slot->packets = slot->bytes = 0;
    slot->pendingRun = 0;
  }
  slot->key = k;
  slot->expires = now + ttlMs * 1000000;
  slot->outFd = static_cast<int32_t>(outFd);
  slot->toPeer = (flags & 1) != 0;
  slot->vnet = (flags & 2) != 0;
  slot->mtu = static_cast<uint16_t>(mtu);
  slot->peerAddr = static_cast<uint32_t>(peerAddr);
  slot->peerPort = static_cast<uint16_t>(peerPort);
  slot->prefixLen = static_cast<uint8_t>(prefixLen);
  if (prefixLen > 0) memcpy(slot->prefix, buf.data + prefixOff, static_cast<size_t>(prefixLen));
  stats.installs++;
  return Napi::Boolean::New(env, true);
}

// fastPathForget(fd): the fd is about to close — its port and every entry in or out through it go.
Napi::Value Forget(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, "fastPathForget", &fd)) return Napi::Value();
  if (Port* p = FindPort(fd)) DropPort(p);
  for (size_t i = 0; i < fdCounters.size(); i++) {
    if (fdCounters[i].fd == fd) {
      fdCounters.erase(fdCounters.begin() + static_cast<long>(i));
      break;
    }
  }
  for (Entry& e : table)
    if (e.expires != 0 && (e.key.ingress == fd || e.outFd == fd)) e.expires = 0;
  return Napi::Value();
}

// fastPathClear(): every entry goes (a policy change): flows go through JS again.
Napi::Value Clear(const Napi::CallbackInfo&) {
  for (Entry& e : table) e.expires = 0;
  return Napi::Value();
}

// fastPathStats() -> counters; fastPathFdStats(fd) -> { rxPackets, rxBytes, txPackets, txBytes } of the
// packets the fast path read from / wrote to fd (zeros when none).
Napi::Value GetStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int64_t now = NowNs();
  double live = 0;
  for (const Entry& e : table) live += e.expires > now ? 1 : 0;
  o.Set("entries", live);
  o.Set("installs", static_cast<double>(stats.installs));
  o.Set("hits", static_cast<double>(stats.hits));
  o.Set("misses", static_cast<double>(stats.misses));
  o.Set("toJs", static_cast<double>(stats.toJs));
  o.Set("evictions", static_cast<double>(stats.evictions));
  o.Set("txDrops", static_cast<double>(stats.txDrops));
  return o;
}

Napi::Value GetFdStats(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, "fastPathFdStats", &fd)) return Napi::Value();
  FdCounters c{fd, 0, 0, 0, 0};
  for (const FdCounters& x : fdCounters)
    if (x.fd == fd) c = x;
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("rxPackets", static_cast<double>(c.rxPackets));
  o.Set("rxBytes", static_cast<double>(c.rxBytes));
  o.Set("txPackets", static_cast<double>(c.txPackets));
  o.Set("txBytes", static_cast<double>(c.txBytes));
  return o;
}

}  // namespace

bool FastPathOnReadable(int fd) {
  Port* p = FindPort(fd);
  if (p == nullptr) return true;
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino) {  // closed and reused: not ours
    DropPort(p);
    return true;
  }
  if (p->pending[0] != 0) return true;  // JS has not taken the last leftovers yet
  runId++;
  int64_t now = NowNs();
  return p->kind == kUdp ? RunUdp(p, now) : RunTun(p, now);
}

void InitFastPath(Napi::Env env, Napi::Object exports) {
  exports.Set("fastPathAttach", Napi::Function::New(env, Attach, "fastPathAttach"));
  exports.Set("fastPathInstall", Napi::Function::New(env, Install, "fastPathInstall"));
  exports.Set("fastPathForget", Napi::Function::New(env, Forget, "fastPathForget"));
  exports.Set("fastPathClear", Napi::Function::New(env, Clear, "fastPathClear"));
  exports.Set("fastPathStats", Napi::Function::New(env, GetStats, "fastPathStats"));
  exports.Set("fastPathFdStats", Napi::Function::New(env, GetFdStats, "fastPathFdStats"));
}

}  // namespace sluice
