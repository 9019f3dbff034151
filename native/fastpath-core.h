// Internals shared by the fast path (fastpath.cc: the flow table, forwarding,
// the JS thread's ports) and the native datapath threads (datapath.cc).
//
// Threads and memory:
//   - The flow table is shared by every datapath thread. Only the JS thread
//     writes it (install, forget, clear), holding tableLock exclusively; a
//     native thread reads it holding tableLock shared for a whole run (read a
//     batch, forward, flush), so an entry it uses — and the fds the entry
//     names — cannot be forgotten (and then closed) under it. The JS thread
//     reads it without the lock: it is the only writer.
//   - Everything a run writes is its thread's own (Ctx): outputs, counters,
//     the "pended in this run" marks. Counters are RelaxedCounters, summed by
//     the stats functions on the JS thread.
//   - A Ctx's port list is changed only by the JS thread, under tableLock
//     exclusively; its thread reads it under tableLock shared.
#pragma once

#include <napi.h>
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tcp-gso.h"

namespace sluice {
namespace fp {

int64_t NowNs();

enum Kind { kTunPlain = 1, kTunVnet = 2, kUdp = 3 };

struct Ring;  // datapath.cc: misses of a native thread on their way to JS

// An fd the fast path reads: for the JS thread, its batch memory is JS's
// (PacketBatch arrays, held by refs); for a native thread, the thread's own.
struct Port {
  int fd = -1, kind = 0;
  // The fd flows are keyed and installed by: the endpoint's queue 0 (ep.fd) for
  // each of its TUN queues, the main underlay socket for every SO_REUSEPORT one.
  int keyFd = -1;
  uint64_t id = 0;  // native threads: the epoll cookie (never reused)
  dev_t dev = 0;
  ino_t ino = 0;
  uint8_t* buf = nullptr;
  int32_t *offsets = nullptr, *lengths = nullptr, *gso = nullptr;
  uint32_t* addrs = nullptr;
  uint16_t* ports = nullptr;
  size_t count = 0, maxLen = 0;
  int32_t* pending = nullptr;  // JS thread: [0] = n, [1..n] = indices left for JS
  size_t pendingCap = 0;
  int32_t *cOff = nullptr, *cLen = nullptr, *cGso = nullptr, *cSlot = nullptr;  // UDP with GRO: coalesced packets
  size_t cCap = 0, prefixLen = 0;
  bool useGso = false, gro = false;
  std::atomic<bool> dead{false};  // native threads: the fd failed; no longer polled
  // Native threads: what this port read and what its thread sent through it.
  RelaxedCounter rxPackets, rxBytes, txPackets, txBytes;
  std::vector<napi_ref> refs;  // JS thread: the batch arrays, kept alive while attached
  napi_env env = nullptr;
};

// Per-peer (underlay address:port) counters of one thread: written by that
// thread only (a slot's key is published last), summed by the JS thread.
struct PeerSlot {
  std::atomic<uint64_t> key{0};  // (addr << 16 | port) + 1; 0 = free
  RelaxedCounter txPackets, txBytes, rxPackets, rxBytes;
};
constexpr size_t kPeerSlots = 1024;

struct Stats {
  RelaxedCounter installs, hits, misses, toJs, evictions, txDrops, ringDrops, wakeups;
  RelaxedCounter busyPollHits;  // datapath threads: polls that found packets while busy polling

  // Adds every counter of `m` (totals over the threads).
  void Add(const Stats& m) {
    installs += m.installs;
    hits += m.hits;
    misses += m.misses;
    toJs += m.toJs;
    evictions += m.evictions;
    txDrops += m.txDrops;
    ringDrops += m.ringDrops;
    wakeups += m.wakeups;
    busyPollHits += m.busyPollHits;
  }
};

// Queued output of one run, flushed at its end.
struct TunOut {
  int fd;
  bool vnet;
  uint8_t* pkt;
  size_t len, mss;
  Port* port;  // native threads: the port counted (null: the JS thread's fd counters)
  struct QueueSet* q0;  // a native thread wrote to the endpoint's queue 0: counted there
};
struct Outputs {
  int udpFd = -1;
  size_t prefixLen = 0;
  bool useGso = false;
  Port* udpPort = nullptr;
  std::vector<int32_t> off, len, gso;
  std::vector<uint32_t> addr;
  std::vector<uint16_t> port;
  std::vector<TunOut> tun;
};

// One datapath thread: index 0 is the JS thread (ports polled by Poller),
// 1..n-1 native threads (datapath.cc).
struct Ctx {
  int index = 0;
  uint32_t runId = 0;
  std::vector<uint32_t> pendRun;  // per table slot: the last run that sent one of the flow's packets to JS
  Outputs out;
  Stats stats;
  std::vector<PeerSlot> peers = std::vector<PeerSlot>(kPeerSlots);
  size_t lastPeer = 0;
  // Native threads only.
  std::vector<Port*> ports;
  Port* udp = nullptr;  // its SO_REUSEPORT underlay socket
  Ring* ring = nullptr;
  bool pushed = false;  // this round handed misses to the ring
};

// The JS thread's context (its stats are summed with the native threads').
Ctx& MainCtx();

// Reader/writer lock of the flow table and the native threads' port lists
// (writer-preferring, so installs are not starved by busy threads).
extern pthread_rwlock_t tableLock;

// Allocates the flow table (idempotent; JS thread).
void EnsureTable();

// One batch from a port. Returns whether something was left for JS (the
// JS thread: in p->pending; a native thread: pushed to its ring) or the read
// failed (n < 0 in *readErr, else 0).
bool RunPort(Ctx& c, Port* p, int64_t now, int* readErr);

// Drops every entry in or out through fd (tableLock held exclusively, or no native thread).
void ForgetEntries(int fd);

// Packets the JS thread's fast path read / sent over all its fds (fastpath.cc).
void MainPacketTotals(uint64_t* rx, uint64_t* tx);

// The JS thread's port and fd counters of fd go (fastpath.cc).
void ForgetMainPort(int fd);

// Adds the native threads' counters to the JS-visible stats (datapath.cc).
void SumThreadStats(Stats* into);
void SumThreadFdStats(int fd, uint64_t* rxP, uint64_t* rxB, uint64_t* txP, uint64_t* txB);
void ForEachCtx(void (*fn)(const Ctx&, void*), void* arg);
Napi::Value ThreadStatsArray(Napi::Env env);

// An endpoint's TUN queues (datapath threads > 1): fds[q] is queue q (fds[0] = keyFd), ports[q] its
// native thread's port (null for queue 0, counted in q0Tx* when a native thread writes to it).
struct QueueSet {
  int keyFd = -1;
  std::vector<int> fds;
  std::vector<Port*> ports;
  RelaxedCounter q0TxPackets, q0TxBytes;
};
// Whether decided flows are kept off the JS thread (datapathStart flag 4): queues 1..n-1 only.
bool MainOffFastPath();

// The endpoint's queues, or null (one queue). Changed under tableLock exclusively (datapath.cc).
QueueSet* QueuesOf(int keyFd);

// The symmetric flow hash that picks a thread (the BPF steering program computes the same):
// addresses, and TCP/UDP ports or the ICMP echo id, mixed; then modulo the threads.
inline uint32_t FlowSpread(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto) {
  uint32_t a = src ^ dst;
  if (proto == 6 || proto == 17) a ^= static_cast<uint32_t>(sport ^ dport) & 0xffff;
  else if (proto == 1) a ^= sport;  // the echo id
  a ^= a >> 16;
  a *= 0x9e3779b1u;
  return a >> 16;
}

// A miss of a native thread: copied into its ring (datapath.cc). False: the ring is full (counted).
bool RingPush(Ctx& c, int keyFd, int kind, const uint8_t* data, int32_t len, int32_t gso, uint32_t addr,
              uint16_t port);

}  // namespace fp
}  // namespace sluice
