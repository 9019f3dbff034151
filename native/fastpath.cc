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
//
// The same runs happen on the native datapath threads (datapath.cc), against
// the same table, for the TUN queues and SO_REUSEPORT sockets attached to
// them; their misses go to JS through a ring. See fastpath-core.h for who
// may touch what from which thread.
#include "fastpath.h"

#include <errno.h>
#include <sys/stat.h>
#include <time.h>

#include <cstring>
#include <vector>

#include "args.h"
#include "bytes.h"
#include "checksum.h"
#include "errors.h"
#include "fastpath-core.h"
#include "io.h"
#include "tcp-gso.h"

namespace sluice {
namespace fp {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

pthread_rwlock_t tableLock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

namespace {

// Holds tableLock exclusively for a JS call that changes the table or ports.
struct WriteLock {
  WriteLock() { pthread_rwlock_wrlock(&tableLock); }
  ~WriteLock() { pthread_rwlock_unlock(&tableLock); }
};

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04;

// Where a packet came in and its IPv4 5-tuple (ICMP echo: the id as both
// ports, the type kept apart). Zero-initialised, compared whole.
struct Key {
  int32_t ingress;     // the fd it was read from (a port's keyFd)
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
  uint8_t prefix[kMaxPrefix];  // toPeer: header written in front; underlay ingress: header expected in front
  // Forwarded natively since the install (relaxed atomic adds: any thread may forward the flow);
  // handed to JS when the flow is installed again (fastPathInstall's `harvest`).
  uint64_t packets, bytes;
};

constexpr size_t kTableSize = 1 << 14;
constexpr size_t kProbe = 16;
// Never destroyed: a datapath thread may still read it while the process exits.
std::vector<Entry>& table = *new std::vector<Entry>();

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

Ctx mainCtx;

// Packets the JS thread's fast path moved, per fd (rx: read by a port, whether
// forwarded natively or left to JS; tx: sent natively), for the JS counters.
// The native threads count in their ports instead (SumThreadFdStats).
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

std::vector<Port*> portList;  // the JS thread's ports

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

// Per-peer counters (native forwarding only; JS counts its own).
PeerSlot* PeerOf(Ctx& c, uint32_t addr, uint16_t port) {
  uint64_t key = ((static_cast<uint64_t>(addr) << 16) | port) + 1;
  PeerSlot* last = &c.peers[c.lastPeer];
  if (last->key.load(std::memory_order_relaxed) == key) return last;
  size_t h = static_cast<size_t>((key * 0x9e3779b97f4a7c15ULL) >> 40) & (kPeerSlots - 1);
  for (size_t i = 0; i < kPeerSlots; i++) {
    size_t at = (h + i) & (kPeerSlots - 1);
    PeerSlot& s = c.peers[at];
    uint64_t k = s.key.load(std::memory_order_relaxed);
    if (k == key || k == 0) {
      if (k == 0) s.key.store(key, std::memory_order_release);  // its counters are still zero
      c.lastPeer = at;
      return &s;
    }
  }
  return nullptr;  // more peers than slots: not counted per peer
}

// Packets (segments of a super-packet) and their IP bytes on the wire.
void WireSize(const Parsed& x, size_t mss, uint64_t* packets, uint64_t* bytes) {
  size_t hdr = 20 + x.tcphl;
  if (mss == 0 || x.total <= hdr) {
    *packets = 1;
    *bytes = x.total;
    return;
  }
  size_t n = (x.total - hdr + mss - 1) / mss;
  *packets = n;
  *bytes = x.total + (n - 1) * hdr;
}

void ClearOutputs(Outputs& out) {
  out.off.clear();
  out.len.clear();
  out.gso.clear();
  out.addr.clear();
  out.port.clear();
  out.tun.clear();
  out.udpFd = -1;
  out.udpPort = nullptr;
}

void Flush(Ctx& c, uint8_t* buf) {
  Outputs& out = c.out;
  size_t n = out.off.size();
  if (n > 0) {
    int64_t r = SendGsoLoop(out.udpFd, buf, out.off.data(), out.len.data(), out.addr.data(), out.port.data(),
                            out.gso.data(), n, out.prefixLen, out.useGso && UdpGsoUsable());
    size_t sent = r < 0 ? 0 : static_cast<size_t>(r);
    uint64_t pk = 0, by = 0, drops = n - sent;
    for (size_t i = 0; i < sent; i++) {
      if (out.len[i] < 0) {
        drops++;
      } else {
        pk++;
        by += static_cast<uint64_t>(out.len[i]);
      }
    }
    c.stats.txDrops += drops;
    if (out.udpPort != nullptr) {
      out.udpPort->txPackets += pk;
      out.udpPort->txBytes += by;
    } else if (c.index == 0) {
      FdCounters& fc = CountersOf(out.udpFd);
      fc.txPackets += pk;
      fc.txBytes += by;
    }
  }
  for (const TunOut& t : out.tun) {
    if (WriteGso(t.fd, t.pkt, t.len, t.mss, t.vnet) != 0) {
      c.stats.txDrops++;
    } else if (t.port != nullptr) {
      t.port->txPackets++;
      t.port->txBytes += t.len;
    } else if (t.q0 != nullptr) {
      t.q0->q0TxPackets++;
      t.q0->q0TxBytes += t.len;
    } else if (c.index == 0) {
      FdCounters& fc = CountersOf(t.fd);
      fc.txPackets++;
      fc.txBytes += t.len;
    }
  }
  ClearOutputs(out);
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
bool Forward(Ctx& c, Port* p, Key& k, uint8_t* ip, size_t len, size_t mss, const uint8_t* prefixIn, int64_t now) {
  Parsed x;
  if (!KeyOf(ip, len, &k, &x)) return false;
  Entry* e = Lookup(k, now);
  if (e == nullptr) {
    c.stats.misses++;
    return false;
  }
  uint32_t& pended = c.pendRun[static_cast<size_t>(e - table.data())];
  if (pended == c.runId) return false;
  bool ok = Forwardable(*e, ip, x, mss);
  if (ok && prefixIn != nullptr) ok = !e->toPeer && e->prefixLen == p->prefixLen && memcmp(prefixIn, e->prefix, e->prefixLen) == 0;
  if (ok && e->toPeer) ok = static_cast<size_t>(ip - p->buf) >= e->prefixLen;  // headroom for the header
  if (!ok) {
    pended = c.runId;
    return false;
  }
  DecrementTtl(ip);
  Outputs& out = c.out;
  uint64_t wp, wb;
  WireSize(x, mss, &wp, &wb);
  if (e->toPeer) {
    // A native thread sends on its own socket (same address and port: SO_REUSEPORT).
    Port* up = c.udp != nullptr && c.udp->keyFd == e->outFd ? c.udp : nullptr;
    int fd = up != nullptr ? up->fd : e->outFd;
    if (out.udpFd >= 0 && (out.udpFd != fd || out.prefixLen != e->prefixLen)) Flush(c, p->buf);
    out.udpFd = fd;
    out.udpPort = up;
    out.prefixLen = e->prefixLen;
    out.useGso = p->useGso;
    uint8_t* start = ip - e->prefixLen;
    memcpy(start, e->prefix, e->prefixLen);
    out.off.push_back(static_cast<int32_t>(start - p->buf));
    out.len.push_back(static_cast<int32_t>(x.total + e->prefixLen));
    out.gso.push_back(static_cast<int32_t>(mss));
    out.addr.push_back(e->peerAddr);
    out.port.push_back(e->peerPort);
    if (PeerSlot* ps = PeerOf(c, e->peerAddr, e->peerPort)) {
      ps->txPackets += wp;
      ps->txBytes += wb;
    }
  } else {
    // With several queues, the flow's queue by its hash: the kernel sends the workload's packets of
    // the flow back on the queue they were last written to, so that thread handles them.
    int fd = e->outFd;
    Port* tp = nullptr;
    bool q0 = false;
    if (QueueSet* qs = QueuesOf(e->outFd)) {
      uint32_t h = FlowSpread(k.src, k.dst, k.sport, k.dport, k.proto);
      size_t nq = qs->fds.size();
      size_t q = MainOffFastPath() && nq > 1 ? 1 + h % (nq - 1) : h % nq;
      if (qs->fds[q] >= 0) {
        fd = qs->fds[q];
        tp = qs->ports[q];
      }
      q0 = tp == nullptr && c.index > 0;
    }
    out.tun.push_back(TunOut{fd, e->vnet != 0, ip, x.total, mss, tp, q0 ? QueuesOf(e->outFd) : nullptr});
    if (prefixIn != nullptr) {
      if (PeerSlot* ps = PeerOf(c, k.outerAddr, k.outerPort)) {
        ps->rxPackets += wp;
        ps->rxBytes += wb;
      }
    }
  }
  c.stats.hits++;
  __atomic_fetch_add(&e->packets, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&e->bytes, x.total, __ATOMIC_RELAXED);
  return true;
}

// Leaves packet `i` of the run to JS: the JS thread lists it in the port's pending array, a native
// thread copies it into its ring.
void Miss(Ctx& c, Port* p, size_t i, const uint8_t* data, int32_t len, int32_t gso, uint32_t addr, uint16_t port) {
  c.stats.toJs++;
  if (c.index > 0) {
    RingPush(c, p->keyFd, p->kind, data, len, gso, addr, port);
    c.pushed = true;
    return;
  }
  size_t n = static_cast<size_t>(p->pending[0]);
  if (n + 1 < p->pendingCap) {
    p->pending[n + 1] = static_cast<int32_t>(i);
    p->pending[0] = static_cast<int32_t>(n + 1);
  }
}

void CountRx(Ctx& c, Port* p, uint64_t packets, uint64_t bytes) {
  if (c.index > 0) {
    p->rxPackets += packets;
    p->rxBytes += bytes;
  } else {
    FdCounters& fc = CountersOf(p->fd);
    fc.rxPackets += packets;
    fc.rxBytes += bytes;
  }
}

// One batch from a TUN port.
bool RunTun(Ctx& c, Port* p, int64_t now, int* readErr) {
  int64_t n = p->kind == kTunVnet
                  ? ReadVnetLoop(p->fd, p->buf, p->offsets, p->lengths, p->gso, p->maxLen, p->count)
                  : ReadPlainLoop(p->fd, p->buf, p->offsets, p->lengths, p->maxLen, p->count);
  if (n < 0) {
    *readErr = static_cast<int>(-n);
    return true;  // JS reads again and reports the error
  }
  uint64_t bytes = 0;
  for (int64_t i = 0; i < n; i++) {
    if (p->kind == kTunPlain) p->gso[i] = 0;
    size_t len = static_cast<size_t>(p->lengths[i]);
    bytes += len;
    Key k{};
    k.ingress = p->keyFd;
    size_t mss = p->gso[i] > 0 ? static_cast<size_t>(p->gso[i] & 0xffff) : 0;
    uint8_t* ip = p->buf + p->offsets[i];
    if (len >= p->maxLen || !Forward(c, p, k, ip, len, mss, nullptr, now))
      Miss(c, p, static_cast<size_t>(i), ip, static_cast<int32_t>(len), p->gso[i], 0, 0);
  }
  CountRx(c, p, static_cast<uint64_t>(n), bytes);
  Flush(c, p->buf);
  return c.index > 0 ? c.pushed : p->pending[0] > 0;
}

// One batch from the underlay socket.
bool RunUdp(Ctx& c, Port* p, int64_t now, int* readErr) {
  int64_t n = RecvLoop(p->fd, p->buf, p->offsets, p->lengths, p->maxLen, p->addrs, p->ports, p->gro ? p->gso : nullptr,
                       p->count);
  if (n < 0) {
    *readErr = static_cast<int>(-n);
    return true;
  }
  uint64_t packets = 0, bytes = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t len = p->lengths[i], g = p->gro ? p->gso[i] : 0;
    if (len < 0) continue;
    packets += g > 0 ? static_cast<uint64_t>((len + g - 1) / g) : 1;
    bytes += static_cast<uint64_t>(len);
  }
  CountRx(c, p, packets, bytes);
  size_t np = static_cast<size_t>(n);
  if (p->gro) {
    np = CoalesceLoop(p->buf, p->offsets, p->lengths, p->gso, p->addrs, p->ports, np, p->maxLen, p->prefixLen, p->cOff,
                      p->cLen, p->cGso, p->cSlot, p->cCap);
  }
  for (size_t q = 0; q < np; q++) {
    int32_t off = p->gro ? p->cOff[q] : p->offsets[q];
    int32_t len = p->gro ? p->cLen[q] : p->lengths[q];
    int32_t g = p->gro ? p->cGso[q] : 0;
    size_t mss = g > 0 ? static_cast<size_t>(g) : 0;
    size_t slot = p->gro ? static_cast<size_t>(p->cSlot[q]) : q;
    bool done = false;
    uint8_t* d = p->buf + off;
    if (len > static_cast<int32_t>(p->prefixLen)) {
      Key k{};
      k.ingress = p->keyFd;
      k.outerAddr = p->addrs[slot];
      k.outerPort = p->ports[slot];
      done = Forward(c, p, k, d + p->prefixLen, static_cast<size_t>(len) - p->prefixLen, mss, d, now);
    }
    if (!done) Miss(c, p, q, d, len, g, p->addrs[slot], p->ports[slot]);
  }
  Flush(c, p->buf);
  return c.index > 0 ? c.pushed : p->pending[0] > 0;
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
  p->fd = p->keyFd = fd;
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
  EnsureTable();
  return Napi::Value();
}

// fastPathInstall(buf, ipOff, ipLen, prefixOff, prefixLen, ingressFd, outerAddr, outerPort, outFd, flags, mtu,
//                 peerAddr, peerPort, ttlMs, harvest?) -> boolean: the JS pipeline forwarded the IPv4 packet at
// buf[ipOff, +ipLen], which came in on ingressFd (from outerAddr:outerPort for the underlay), to outFd:
// flags 1 = to a peer (outFd the underlay socket, buf[prefixOff, +prefixLen] the overlay header it wrote),
// 2 = outFd is a TUN with a virtio header. For underlay ingress buf[prefixOff, +prefixLen] is the overlay
// header the flow's datagrams carry. False when the packet is not one the fast path handles.
// harvest (Float64Array[2]): set to the packets and bytes the flow's previous entry forwarded
// natively (0, 0 if there was none).
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
  EnsureTable();
  Key k{};
  k.ingress = static_cast<int32_t>(ingress);
  k.outerAddr = static_cast<uint32_t>(outerAddr);
  k.outerPort = static_cast<uint16_t>(outerPort);
  Parsed x;
  Napi::Float64Array harvest;
  if (info.Length() > 14 && !info[14].IsUndefined()) {
    if (!info[14].IsTypedArray() || info[14].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        info[14].As<Napi::Float64Array>().ElementLength() < 2) {
      ThrowType(env, "%s: harvest must be a Float64Array of at least 2 elements", fn);
      return Napi::Value();
    }
    harvest = info[14].As<Napi::Float64Array>();
    harvest[0] = harvest[1] = 0;
  }
  if (!KeyOf(buf.data + ipOff, static_cast<size_t>(ipLen), &k, &x)) return Napi::Boolean::New(env, false);
  int64_t now = NowNs();
  size_t h = Hash(k);
  WriteLock lock;
  Entry* slot = nullptr;
  bool same = false;
  for (size_t i = 0; i < kProbe; i++) {
    Entry& e = table[(h + i) & (kTableSize - 1)];
    if (e.expires != 0 && memcmp(&e.key, &k, sizeof k) == 0) {
      slot = &e;
      same = true;
      break;
    }
    if (slot == nullptr && e.expires <= now) slot = &e;
  }
  // The flow's earlier entry: what it forwarded natively goes to JS's flow counters.
  if (same && !harvest.IsEmpty()) {
    harvest[0] = static_cast<double>(slot->packets);
    harvest[1] = static_cast<double>(slot->bytes);
  }
  if (slot == nullptr) {  // all live: replace the one closest to expiring
    slot = &table[h & (kTableSize - 1)];
    for (size_t i = 1; i < kProbe; i++) {
      Entry& e = table[(h + i) & (kTableSize - 1)];
      if (e.expires < slot->expires) slot = &e;
    }
    mainCtx.stats.evictions++;
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
  slot->packets = slot->bytes = 0;
  mainCtx.stats.installs++;
  return Napi::Boolean::New(env, true);
}

// fastPathClear(): every entry goes (a policy change): flows go through JS again, on every thread.
Napi::Value Clear(const Napi::CallbackInfo&) {
  WriteLock lock;
  for (Entry& e : table) e.expires = 0;
  return Napi::Value();
}

void Totals(Stats& s) {
  s.Add(mainCtx.stats);
  SumThreadStats(&s);
}

void SetStats(Napi::Object o, const Stats& s) {
  o.Set("installs", static_cast<double>(s.installs));
  o.Set("hits", static_cast<double>(s.hits));
  o.Set("misses", static_cast<double>(s.misses));
  o.Set("toJs", static_cast<double>(s.toJs));
  o.Set("evictions", static_cast<double>(s.evictions));
  o.Set("txDrops", static_cast<double>(s.txDrops));
  o.Set("ringDrops", static_cast<double>(s.ringDrops));
}

// fastPathStats() -> counters summed over every datapath thread; fastPathFdStats(fd) ->
// { rxPackets, rxBytes, txPackets, txBytes } of the packets the fast path read from / wrote to fd
// (for an endpoint's queue 0 or the main underlay socket: with its other queues / sockets).
Napi::Value GetStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int64_t now = NowNs();
  double live = 0;
  for (const Entry& e : table) live += e.expires > now ? 1 : 0;
  o.Set("entries", live);
  Stats s;
  Totals(s);
  SetStats(o, s);
  o.Set("perThread", ThreadStatsArray(env));
  return o;
}

Napi::Value GetFdStats(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, "fastPathFdStats", &fd)) return Napi::Value();
  FdCounters c{fd, 0, 0, 0, 0};
  for (const FdCounters& x : fdCounters)
    if (x.fd == fd) c = x;
  SumThreadFdStats(fd, &c.rxPackets, &c.rxBytes, &c.txPackets, &c.txBytes);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("rxPackets", static_cast<double>(c.rxPackets));
  o.Set("rxBytes", static_cast<double>(c.rxBytes));
  o.Set("txPackets", static_cast<double>(c.txPackets));
  o.Set("txBytes", static_cast<double>(c.txBytes));
  return o;
}

// fastPathPeerStats() -> [{ addr, port, txPackets, txBytes, rxPackets, rxBytes }]: what the fast path
// (every thread) forwarded to / received from each peer (underlay address:port).
struct PeerSum {
  uint64_t key, txP, txB, rxP, rxB;
};
void AddPeers(const Ctx& c, void* arg) {
  auto* sums = static_cast<std::vector<PeerSum>*>(arg);
  for (const PeerSlot& s : c.peers) {
    uint64_t k = s.key.load(std::memory_order_acquire);
    if (k == 0) continue;
    PeerSum* into = nullptr;
    for (PeerSum& x : *sums)
      if (x.key == k) into = &x;
    if (into == nullptr) {
      sums->push_back(PeerSum{k, 0, 0, 0, 0});
      into = &sums->back();
    }
    into->txP += s.txPackets;
    into->txB += s.txBytes;
    into->rxP += s.rxPackets;
    into->rxB += s.rxBytes;
  }
}

Napi::Value GetPeerStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<PeerSum> sums;
  ForEachCtx(AddPeers, &sums);
  Napi::Array a = Napi::Array::New(env, sums.size());
  for (size_t i = 0; i < sums.size(); i++) {
    uint64_t k = sums[i].key - 1;
    Napi::Object o = Napi::Object::New(env);
    o.Set("addr", static_cast<double>(static_cast<uint32_t>(k >> 16)));
    o.Set("port", static_cast<double>(k & 0xffff));
    o.Set("txPackets", static_cast<double>(sums[i].txP));
    o.Set("txBytes", static_cast<double>(sums[i].txB));
    o.Set("rxPackets", static_cast<double>(sums[i].rxP));
    o.Set("rxBytes", static_cast<double>(sums[i].rxB));
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

}  // namespace

Ctx& MainCtx() { return mainCtx; }

void EnsureTable() {
  if (!table.empty()) return;
  WriteLock lock;
  table.assign(kTableSize, Entry{});
  mainCtx.pendRun.assign(kTableSize, 0);
}

bool RunPort(Ctx& c, Port* p, int64_t now, int* readErr) {
  *readErr = 0;
  c.runId++;
  c.pushed = false;
  if (c.pendRun.size() != kTableSize) c.pendRun.assign(kTableSize, 0);
  return p->kind == kUdp ? RunUdp(c, p, now, readErr) : RunTun(c, p, now, readErr);
}

void ForgetEntries(int fd) {
  for (Entry& e : table)
    if (e.expires != 0 && (e.key.ingress == fd || e.outFd == fd)) e.expires = 0;
}

void MainPacketTotals(uint64_t* rx, uint64_t* tx) {
  for (const FdCounters& c : fdCounters) {
    *rx += c.rxPackets;
    *tx += c.txPackets;
  }
}

// Forgets the JS thread's port and counters of fd (datapath.cc's Forget calls it under the lock).
void ForgetMainPort(int fd) {
  if (Port* p = FindPort(fd)) DropPort(p);
  for (size_t i = 0; i < fdCounters.size(); i++) {
    if (fdCounters[i].fd == fd) {
      fdCounters.erase(fdCounters.begin() + static_cast<long>(i));
      break;
    }
  }
}

}  // namespace fp

bool FastPathOnReadable(int fd) {
  using namespace fp;
  Port* p = FindPort(fd);
  if (p == nullptr) return true;
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino) {  // closed and reused: not ours
    DropPort(p);
    return true;
  }
  if (p->pending[0] != 0) return true;  // JS has not taken the last leftovers yet
  int err;
  return RunPort(mainCtx, p, NowNs(), &err);
}

void InitFastPath(Napi::Env env, Napi::Object exports) {
  using namespace fp;
  Export(env, exports, "fastPathAttach", Attach);
  Export(env, exports, "fastPathInstall", Install);
  Export(env, exports, "fastPathClear", Clear);
  Export(env, exports, "fastPathStats", GetStats);
  Export(env, exports, "fastPathFdStats", GetFdStats);
  Export(env, exports, "fastPathPeerStats", GetPeerStats);
  InitDatapath(env, exports);  // datapath.cc: fastPathForget and the datapath threads
}

}  // namespace sluice
