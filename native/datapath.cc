// Native datapath threads: the fast path (fastpath.cc) on more cores.
//
//   thread 0  the JS thread: Poller → FastPathOnReadable → JS for misses (as with one thread)
//   thread k  a pthread blocked in epoll_wait over its own fds (with --busy-poll: polling for a
//             while after each packet before it blocks again): every endpoint's TUN queue k
//             (IFF_MULTI_QUEUE) and its own underlay socket (SO_REUSEPORT, same address:port);
//             on wake-up it runs the same fast path at once, against the shared flow table.
//             A miss is copied into the thread's ring (bounded; full: dropped and counted as
//             ringDrops) and the JS thread is woken (a threadsafe function, at most one call
//             in flight per thread); JS drains every ring with datapathDrain, one call per
//             batch, and forwards the packets through its slow path as if it had read them.
//
// Flows are spread over threads by hashing (FlowSpread, symmetric in the flow's two directions):
//   - TUN side: the kernel sends a workload's packets of a flow to the queue the flow's packets
//     were last written to (else by its own hash), and the fast path writes a flow to the queue
//     FlowSpread picks — so that thread handles the flow's outbound packets;
//   - underlay side: without UDP_GRO, a classic BPF program on the SO_REUSEPORT group
//     (udpSetSteering) picks the socket by the same hash of the inner packet, so a flow is on the
//     same thread index on both hosts. With UDP_GRO it is not used: the kernel picks the socket
//     of merged trains by its own hash of the outer addresses and ports (the BPF program is not
//     run for them), so single datagrams must go the same way or a flow would be split over two
//     threads (reordered); then all traffic from one peer is received by one thread.
// Which thread a packet lands on never matters for correctness: the table is shared and a miss
// goes to JS.
//
// Lifetime: fastPathForget(fd) takes the table lock exclusively, so no run is using fd when it
// returns (runs hold the lock shared) and no later one will (the port is gone; a stale epoll
// event finds no port by its id). datapathStop joins the threads; an env cleanup hook does the
// same if the env goes first. Nothing here throws on a packet: bad packets go to JS or are
// dropped and counted; an fd that fails is dropped from the thread's epoll (the JS thread's
// Poller of queue 0 reports errors).
#include <errno.h>
#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "args.h"
#include "errors.h"
#include "fastpath-core.h"
#include "fastpath.h"
#include "tcp-gso.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

namespace sluice {
namespace fp {

// A single-producer (its thread) single-consumer (JS) byte ring of variable-sized records.
struct RecHdr {
  uint32_t size;  // the whole record, 8-aligned; kind 0: padding to the end of the ring
  int32_t keyFd;
  int32_t len;    // packet bytes that follow (-1: a datagram truncated by the kernel)
  int32_t gso;
  uint32_t addr;
  uint16_t port;
  uint8_t kind;
  uint8_t pad;
};
static_assert(sizeof(RecHdr) == 24, "record header");

struct Ring {
  // cap bytes of records, plus room for one header past the end: a padding record written where
  // fewer than sizeof(RecHdr) bytes are left before the end (8 or 16) spills into it.
  std::vector<uint8_t> mem;
  size_t cap = 0;  // a power of two
  std::atomic<uint64_t> head{0}, tail{0};
  std::atomic<bool> wake{false};  // a wake-up of JS is in flight (or JS is draining)
  std::atomic<uint64_t> dropsUnseen{0};  // misses dropped since the last datapathDrain reported them
};

namespace {

struct Thread {
  Ctx ctx;
  Ring ring;
  pthread_t tid{};
  bool running = false;
  int epfd = -1, evfd = -1;
  std::atomic<bool> stop{false};
  // The thread's batch memory, shared by its ports (one run at a time, flushed at its end).
  std::vector<uint8_t> tunBuf, udpBuf;
  std::vector<int32_t> tunOff, tunLen, tunGso, udpOff, udpLen, udpGso, cOff, cLen, cGso, cSlot;
  std::vector<uint32_t> tunAddrs, udpAddrs;
  std::vector<uint16_t> tunPorts, udpPorts;
};

struct Config {
  size_t count = 64, maxLen = 65536, headroom = 64, prefixLen = 0;
  bool gso = false, gro = false;
  int64_t busyPollNs = 0;
} cfg;

// datapathStart flags bit 4: decided flows are written to TUN queues 1..n-1 only (the JS thread
// keeps the slow path). Set before the threads start, cleared after they are joined.
bool mainOff = false;

std::vector<Thread*> threads;  // thread k at [k - 1]
std::vector<QueueSet*>& queueSets = *new std::vector<QueueSet*>();  // never destroyed (threads read it)
napi_threadsafe_function tsfn = nullptr;
bool cleanupHook = false;
uint64_t nextPortId = 1;
size_t drainNext = 0;
constexpr size_t kMaxTrain = 128;  // datagrams per UDP_GRO train (UDP_MAX_SEGMENTS)

struct WriteLock {
  WriteLock() { pthread_rwlock_wrlock(&tableLock); }
  ~WriteLock() { pthread_rwlock_unlock(&tableLock); }
};

inline size_t Align8(size_t n) { return (n + 7) & ~static_cast<size_t>(7); }

void Wake(Thread* t) {
  if (t->ring.wake.exchange(true)) return;  // one call in flight is enough
  t->ctx.stats.wakeups++;
  if (tsfn != nullptr) napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking);
}

Port* PortById(Ctx& c, uint64_t id) {
  for (Port* p : c.ports)
    if (p->id == id) return p;
  return nullptr;
}

void DropDead(Thread* t, Port* p) {
  if (p->dead.exchange(true)) return;
  epoll_ctl(t->epfd, EPOLL_CTL_DEL, p->fd, nullptr);  // the port stays listed until fastPathForget
}

void* ThreadMain(void* arg) {
  Thread* t = static_cast<Thread*>(arg);
  epoll_event ev[32];
  const int64_t busyNs = cfg.busyPollNs;
  int64_t spinUntil = 0;
  while (!t->stop.load(std::memory_order_acquire)) {
    // Busy polling: for busyNs after a packet, poll without sleeping, so the answer a packet
    // provokes is picked up without a wake-up. sched_yield lets other runnable tasks of the normal
    // class go first (the threads are never SCHED_FIFO while busy polling: Start refuses it).
    const bool spin = busyNs > 0 && NowNs() < spinUntil;
    int n = epoll_wait(t->epfd, ev, 32, spin ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) {
      sched_yield();
      continue;
    }
    if (t->stop.load(std::memory_order_acquire)) break;
    if (spin) t->ctx.stats.busyPollHits++;
    bool wake = false;
    int64_t now = NowNs();
    if (busyNs > 0) spinUntil = now + busyNs;
    pthread_rwlock_rdlock(&tableLock);
    for (int i = 0; i < n; i++) {
      uint64_t id = ev[i].data.u64;
      if (id == 0) continue;  // the stop eventfd
      Port* p = PortById(t->ctx, id);
      if (p == nullptr || p->dead.load(std::memory_order_relaxed)) continue;  // forgotten since epoll_wait
      if ((ev[i].events & EPOLLIN) == 0) {
        DropDead(t, p);
        continue;
      }
      int err = 0;
      RunPort(t->ctx, p, now, &err);
      if (t->ctx.pushed) wake = true;
      if (err != 0 && err != EAGAIN && err != EINTR) DropDead(t, p);
    }
    pthread_rwlock_unlock(&tableLock);
    if (wake) Wake(t);
  }
  return nullptr;
}

// Tells every running thread to stop (its eventfd wakes it from epoll_wait) and joins it.
void JoinThreads() {
  for (Thread* t : threads) {
    if (!t->running) continue;
    t->stop.store(true, std::memory_order_release);
    uint64_t one = 1;
    ssize_t w = write(t->evfd, &one, sizeof one);
    (void)w;
    pthread_join(t->tid, nullptr);
    t->running = false;
  }
}

void StopThreads() {
  JoinThreads();
  for (QueueSet* q : queueSets) delete q;
  queueSets.clear();
  mainOff = false;
  for (Thread* t : threads) {
    for (Port* p : t->ctx.ports) delete p;
    t->ctx.ports.clear();
    if (t->epfd >= 0) close(t->epfd);
    if (t->evfd >= 0) close(t->evfd);
    delete t;
  }
  threads.clear();
}

// A process that exits without datapathStop (or env teardown) stops the threads before static
// destructors run under them.
void StopAtExit() { JoinThreads(); }
bool atExitAdded = false;

void OnEnvCleanup(void*) {
  cleanupHook = false;
  StopThreads();  // the env releases the threadsafe function itself
  tsfn = nullptr;
}

void CallJs(napi_env env, napi_value fn, void*, void*) {
  if (env == nullptr || fn == nullptr) return;
  napi_value undefined, result;
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  if (napi_call_function(env, undefined, fn, 0, nullptr, &result) != napi_ok) {
    bool pending = false;
    napi_value exc;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &exc) == napi_ok)
      napi_fatal_exception(env, exc);
  }
}

template <typename T>
void Sized(std::vector<T>& v, size_t n) {
  v.assign(n, T{});
}

// datapathStart(threads, onMisses, count, maxLen, prefixLen, flags, ringBytes, realtime, busyPollUs) -> errno:
// starts threads 1..threads-1 (none when threads is 1), each with batch memory for `count` packets
// of maxLen and a ring of ringBytes for its misses; onMisses() is called on the JS thread when
// rings have packets (drain them with datapathDrain). flags: 1 = UDP_SEGMENT sends, 2 = UDP_GRO
// on the sockets attached. realtime > 0: SCHED_FIFO at that priority; returns the errno of its
// refusal (the threads run anyway), else 0. busyPollUs > 0: after each packet a thread polls
// without sleeping for that long (busy polling: lower latency for request/response traffic, at
// the cost of CPU time).
Napi::Value Start(const Napi::CallbackInfo& info) {
  const char* fn = "datapathStart";
  Napi::Env env = info.Env();
  int64_t n, count, maxLen, prefixLen, flags, ringBytes, rt, busyUs;
  if (!ArgInt(info, 0, fn, "threads", 1, 64, &n) || !ArgInt(info, 2, fn, "count", 1, UIO_MAXIOV, &count) ||
      !ArgInt(info, 3, fn, "maxLen", 1500, 65536 + 64, &maxLen) ||
      !ArgInt(info, 4, fn, "prefixLen", 0, static_cast<int64_t>(kMaxPrefix), &prefixLen) ||
      !ArgInt(info, 5, fn, "flags", 0, 7, &flags) || !ArgInt(info, 6, fn, "ringBytes", 1 << 16, 1 << 30, &ringBytes) ||
      !ArgInt(info, 7, fn, "realtime", 0, 99, &rt) || !ArgInt(info, 8, fn, "busyPollUs", 0, 1000000, &busyUs))
    return Napi::Value();
  if (!info[1].IsFunction()) {
    ThrowType(env, "%s: onMisses must be a function", fn);
    return Napi::Value();
  }
  if (rt > 0 && busyUs > 0) {  // a SCHED_FIFO thread that spins yields to nobody of the normal class
    ThrowRange(env, "%s: busyPollUs %lld cannot be combined with realtime %lld", fn, static_cast<long long>(busyUs),
               static_cast<long long>(rt));
    return Napi::Value();
  }
  if (!threads.empty() || tsfn != nullptr) {
    ThrowCode(env, "ERR_DATAPATH_RUNNING", "%s: datapath threads are already running", fn);
    return Napi::Value();
  }
  if (n == 1) return Napi::Number::New(env, 0);
  EnsureTable();
  cfg.count = static_cast<size_t>(count);
  cfg.maxLen = static_cast<size_t>(maxLen);
  cfg.prefixLen = static_cast<size_t>(prefixLen);
  cfg.gso = (flags & 1) != 0;
  cfg.gro = (flags & 2) != 0;
  cfg.busyPollNs = busyUs * 1000;
  mainOff = (flags & 4) != 0;
  napi_value name;
  napi_create_string_utf8(env, "SluiceDatapath", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, info[1], nullptr, name, 0, 1, nullptr, nullptr, nullptr, CallJs, &tsfn) !=
      napi_ok) {
    ThrowCode(env, "ERR_DATAPATH_TSFN", "%s: cannot create the wake-up function", fn);
    tsfn = nullptr;
    return Napi::Value();
  }
  napi_unref_threadsafe_function(env, tsfn);  // the pollers keep the loop alive, not the threads
  size_t ring = 1;
  while (ring < static_cast<size_t>(ringBytes)) ring <<= 1;
  size_t slot = cfg.headroom + cfg.maxLen, cn = cfg.count;
  for (int64_t k = 1; k < n; k++) {
    Thread* t = new Thread();
    t->ctx.index = static_cast<int>(k);
    t->ctx.ring = &t->ring;
    t->ring.mem.assign(ring + sizeof(RecHdr), 0);
    t->ring.cap = ring;
    Sized(t->tunBuf, cn * slot);
    Sized(t->udpBuf, cn * slot);
    for (auto* v : {&t->tunOff, &t->tunLen, &t->tunGso, &t->udpOff, &t->udpLen, &t->udpGso}) Sized(*v, cn);
    for (auto* v : {&t->cOff, &t->cLen, &t->cGso, &t->cSlot}) Sized(*v, cn * kMaxTrain);
    Sized(t->tunAddrs, cn);
    Sized(t->udpAddrs, cn);
    Sized(t->tunPorts, cn);
    Sized(t->udpPorts, cn);
    for (size_t i = 0; i < cn; i++) t->tunOff[i] = t->udpOff[i] = static_cast<int32_t>(i * slot + cfg.headroom);
    t->ctx.pendRun.assign(0, 0);
    threads.push_back(t);
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    if (t->epfd < 0 || t->evfd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev) < 0) {
      int err = errno;
      StopThreads();
      napi_release_threadsafe_function(tsfn, napi_tsfn_release);
      tsfn = nullptr;
      ThrowErrno(env, err, "epoll_ctl");
      return Napi::Value();
    }
  }
  // The threads take no signals: Node's handlers run on its own threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int startErr = 0;
  for (Thread* t : threads) {
    startErr = pthread_create(&t->tid, nullptr, ThreadMain, t);
    if (startErr != 0) break;
    t->running = true;
    char name[16];
    snprintf(name, sizeof name, "sluice-dp%d", t->ctx.index);
    pthread_setname_np(t->tid, name);  // top -H, perf: which datapath thread
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (startErr != 0) {
    StopThreads();
    napi_release_threadsafe_function(tsfn, napi_tsfn_release);
    tsfn = nullptr;
    ThrowErrno(env, startErr, "pthread_create");
    return Napi::Value();
  }
  if (!cleanupHook) cleanupHook = napi_add_env_cleanup_hook(env, OnEnvCleanup, nullptr) == napi_ok;
  if (!atExitAdded) atExitAdded = atexit(StopAtExit) == 0;
  int rtErr = 0;
  if (rt > 0) {
    sched_param sp{};
    sp.sched_priority = static_cast<int>(rt);
    for (Thread* t : threads) {
      int e = pthread_setschedparam(t->tid, SCHED_FIFO, &sp);
      if (e != 0) rtErr = e;
    }
  }
  return Napi::Number::New(env, rtErr);
}

// datapathStop(): stops and joins the threads (idempotent); onMisses is not called any more. Their
// fds stay open: the caller's.
Napi::Value Stop(const Napi::CallbackInfo& info) {
  StopThreads();
  if (cleanupHook) {
    napi_remove_env_cleanup_hook(info.Env(), OnEnvCleanup, nullptr);
    cleanupHook = false;
  }
  if (tsfn != nullptr) {
    // Abort, not release: a wake-up the threads queued before they stopped must not call this
    // onMisses later — after a new datapathStart it would drain the new threads' rings into the old
    // caller. Aborted, queued calls reach CallJs without an env and are dropped.
    napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
    tsfn = nullptr;
  }
  return Napi::Value();
}

// datapathAttach(thread, fd, kind, keyFd): thread (1..n-1) polls fd — kind 1/2: a TUN queue of the
// endpoint whose queue 0 is keyFd; 3: an underlay socket in the SO_REUSEPORT group of keyFd.
Napi::Value AttachToThread(const Napi::CallbackInfo& info) {
  const char* fn = "datapathAttach";
  Napi::Env env = info.Env();
  int64_t k, kind;
  int fd, keyFd;
  if (!ArgInt(info, 0, fn, "thread", 1, 64, &k) || !ArgFd(info, 1, fn, &fd) || !ArgInt(info, 2, fn, "kind", 1, 3, &kind) ||
      !ArgFd(info, 3, fn, &keyFd))
    return Napi::Value();
  if (static_cast<size_t>(k) > threads.size()) {
    ThrowRange(env, "%s: thread %lld is not running (threads 1..%zu)", fn, static_cast<long long>(k), threads.size());
    return Napi::Value();
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    ThrowErrno(env, errno, "fstat");
    return Napi::Value();
  }
  Thread* t = threads[static_cast<size_t>(k - 1)];
  Port* p = new Port();
  p->fd = fd;
  p->keyFd = keyFd;
  p->kind = static_cast<int>(kind);
  p->dev = st.st_dev;
  p->ino = st.st_ino;
  p->count = cfg.count;
  p->maxLen = cfg.maxLen;
  p->prefixLen = kind == kUdp ? cfg.prefixLen : 0;
  p->useGso = cfg.gso;
  if (kind == kUdp) {
    p->buf = t->udpBuf.data();
    p->offsets = t->udpOff.data();
    p->lengths = t->udpLen.data();
    p->gso = t->udpGso.data();
    p->addrs = t->udpAddrs.data();
    p->ports = t->udpPorts.data();
    p->gro = cfg.gro;
    p->cOff = t->cOff.data();
    p->cLen = t->cLen.data();
    p->cGso = t->cGso.data();
    p->cSlot = t->cSlot.data();
    p->cCap = t->cOff.size();
  } else {
    p->buf = t->tunBuf.data();
    p->offsets = t->tunOff.data();
    p->lengths = t->tunLen.data();
    p->gso = t->tunGso.data();
    p->addrs = t->tunAddrs.data();
    p->ports = t->tunPorts.data();
  }
  WriteLock lock;
  p->id = nextPortId++;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = p->id;
  if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int err = errno;
    delete p;
    ThrowErrno(env, err, "epoll_ctl");
    return Napi::Value();
  }
  t->ctx.ports.push_back(p);
  if (kind == kUdp) {
    t->ctx.udp = p;
    return Napi::Value();
  }
  QueueSet* qs = QueuesOf(keyFd);
  if (qs == nullptr) {
    qs = new QueueSet();
    qs->keyFd = keyFd;
    qs->fds.assign(threads.size() + 1, -1);
    qs->ports.assign(threads.size() + 1, nullptr);
    qs->fds[0] = keyFd;
    queueSets.push_back(qs);
  }
  qs->fds[static_cast<size_t>(k)] = fd;
  qs->ports[static_cast<size_t>(k)] = p;
  return Napi::Value();
}

// fastPathForget(fd): the fd is about to close — its ports (on every thread, including an
// endpoint's other queues when fd is its queue 0), every entry in or out through it and the misses
// read through it still queued in the rings go. When it returns, no datapath thread uses fd any
// more and no drain reports it.
Napi::Value Forget(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, "fastPathForget", &fd)) return Napi::Value();
  WriteLock lock;
  ForgetMainPort(fd);
  for (size_t i = 0; i < queueSets.size();) {
    QueueSet* q = queueSets[i];
    if (q->keyFd == fd) {
      queueSets.erase(queueSets.begin() + static_cast<long>(i));
      delete q;
      continue;
    }
    for (size_t j = 0; j < q->fds.size(); j++) {
      if (q->fds[j] == fd) {
        q->fds[j] = -1;
        q->ports[j] = nullptr;
      }
    }
    i++;
  }
  for (Thread* t : threads) {
    Ctx& c = t->ctx;
    for (size_t i = 0; i < c.ports.size();) {
      Port* p = c.ports[i];
      if (p->fd != fd && p->keyFd != fd) {
        i++;
        continue;
      }
      if (!p->dead.load()) epoll_ctl(t->epfd, EPOLL_CTL_DEL, p->fd, nullptr);
      if (c.udp == p) c.udp = nullptr;
      c.ports.erase(c.ports.begin() + static_cast<long>(i));
      delete p;
    }
  }
  ForgetEntries(fd);
  // Misses read through fd and still queued for JS go too: once fd is closed its number may be
  // reused (a new endpoint), and JS would take them for the new fd's packets. The producers are
  // parked (they push only inside a run, under the lock held shared) and this is the consumer, so
  // the queued records [head, tail) are ours to mark.
  for (Thread* t : threads) {
    Ring& r = t->ring;
    uint64_t at = r.head.load(std::memory_order_relaxed);
    const uint64_t end = r.tail.load(std::memory_order_acquire);
    while (at != end) {
      uint8_t* rec = r.mem.data() + (at & (r.cap - 1));
      RecHdr h;
      memcpy(&h, rec, sizeof h);
      if (h.kind != 0 && h.keyFd == fd) {
        h.keyFd = -1;  // skipped by Pop
        memcpy(rec, &h, sizeof h);
      }
      at += h.size;
    }
  }
  return Napi::Value();
}

// Pops one record into slot n of the JS batch; false when the ring is empty.
bool Pop(Ring& r, uint8_t* buf, const int32_t* offsets, int32_t* lengths, int32_t* gso, uint32_t* addrs,
         uint16_t* ports, int32_t* fds, size_t maxLen, size_t n, Stats& stats, bool* got) {
  *got = false;
  uint64_t head = r.head.load(std::memory_order_relaxed);
  for (;;) {
    uint64_t tail = r.tail.load(std::memory_order_seq_cst);
    if (head == tail) return false;
    RecHdr h;
    memcpy(&h, r.mem.data() + (head & (r.cap - 1)), sizeof h);
    if (h.kind == 0 || h.keyFd < 0) {  // padding to the end, or a miss of a forgotten fd
      head += h.size;
      r.head.store(head, std::memory_order_release);
      continue;
    }
    const uint8_t* data = r.mem.data() + (head & (r.cap - 1)) + sizeof h;
    if (h.len > static_cast<int32_t>(maxLen)) {
      stats.ringDrops++;
      r.dropsUnseen.fetch_add(1, std::memory_order_relaxed);
    } else {
      if (h.len > 0) memcpy(buf + offsets[n], data, static_cast<size_t>(h.len));
      lengths[n] = h.len;
      gso[n] = h.gso;
      addrs[n] = h.addr;
      ports[n] = h.port;
      fds[n] = h.keyFd;
      *got = true;
    }
    head += h.size;
    r.head.store(head, std::memory_order_release);
    return true;
  }
}

// datapathDrain(buf, offsets, lengths, gso, addrs, ports, fds, count, maxLen[, dropped]) -> n: moves up to
// `count` misses of the native threads into slots 0..n-1 of a JS batch: packet i at
// buf[offsets[i], +lengths[i]) (lengths[i] -1: a truncated datagram), read from fds[i] (an
// endpoint's queue 0 fd, or the main underlay socket: then an overlay datagram from
// addrs[i]:ports[i], coalesced when gso[i] > 0), gso[i] the MSS of a TCP super-packet. n < count:
// every ring was empty (a later miss calls onMisses again); n == count: call again. dropped (a
// Float64Array) receives in [0] the misses the rings dropped (full) since the previous drain.
Napi::Value Drain(const Napi::CallbackInfo& info) {
  const char* fn = "datapathDrain";
  Napi::Env env = info.Env();
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths, gso, fds;
  Span<uint32_t> addrs;
  Span<uint16_t> ports;
  int64_t count, maxLen;
  if (!ArgBytes(info, 0, fn, "buf", &buf) || !ArgInt32s(info, 1, fn, "offsets", &offsets) ||
      !ArgInt32s(info, 2, fn, "lengths", &lengths) || !ArgInt32s(info, 3, fn, "gso", &gso) ||
      !ArgUint32s(info, 4, fn, "addrs", &addrs) || !ArgUint16s(info, 5, fn, "ports", &ports) ||
      !ArgInt32s(info, 6, fn, "fds", &fds) || !ArgInt(info, 7, fn, "count", 0, INT32_MAX, &count) ||
      !ArgInt(info, 8, fn, "maxLen", 1, INT32_MAX, &maxLen) || !CheckCount(env, fn, count, "offsets", offsets.len) ||
      !CheckCount(env, fn, count, "lengths", lengths.len) || !CheckCount(env, fn, count, "gso", gso.len) ||
      !CheckCount(env, fn, count, "addrs", addrs.len) || !CheckCount(env, fn, count, "ports", ports.len) ||
      !CheckCount(env, fn, count, "fds", fds.len) || !CheckReadSlots(env, fn, buf, offsets, maxLen, count))
    return Napi::Value();
  double* dropped = nullptr;
  if (info.Length() > 9 && !info[9].IsUndefined()) {
    napi_typedarray_type t;
    size_t len = 0;
    void* d = nullptr;
    bool is = false;
    if (napi_is_typedarray(env, info[9], &is) != napi_ok || !is ||
        napi_get_typedarray_info(env, info[9], &t, &len, &d, nullptr, nullptr) != napi_ok || t != napi_float64_array ||
        len < 1) {
      ThrowType(env, "%s: dropped must be a Float64Array of length >= 1", fn);
      return Napi::Value();
    }
    dropped = static_cast<double*>(d);
    dropped[0] = 0;
  }
  size_t n = 0, want = static_cast<size_t>(count), nt = threads.size();
  if (nt == 0) return Napi::Number::New(env, 0);
  if (dropped != nullptr)
    for (Thread* t : threads) dropped[0] += static_cast<double>(t->ring.dropsUnseen.exchange(0, std::memory_order_relaxed));
  for (;;) {
    for (size_t j = 0; j < nt && n < want; j++) {
      Thread* t = threads[(drainNext + j) % nt];
      bool got;
      while (n < want && Pop(t->ring, buf.data, offsets.data, lengths.data, gso.data, addrs.data, ports.data, fds.data,
                             static_cast<size_t>(maxLen), n, t->ctx.stats, &got))
        if (got) n++;
    }
    drainNext++;
    if (n == want) break;  // maybe more: the wake flags stay set, JS calls again
    // Every ring was empty: re-arm the wake-ups, then look once more (a push that saw the flag
    // still set did not wake us).
    bool more = false;
    for (Thread* t : threads) {
      t->ring.wake.store(false, std::memory_order_seq_cst);
      if (t->ring.head.load(std::memory_order_relaxed) != t->ring.tail.load(std::memory_order_seq_cst)) {
        t->ring.wake.store(true, std::memory_order_seq_cst);
        more = true;
      }
    }
    if (!more) break;
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace

// datapathThreadStats() -> [{ hits, misses, toJs, txDrops, ringDrops, wakeups, busyPollHits, rxPackets, txPackets }]
// per thread, index 0 the JS thread (rx/tx: packets its fast path read / sent), for tests and tuning.
// Also fastPathStats().perThread.
Napi::Value ThreadStatsArray(Napi::Env env) {
  Napi::Array a = Napi::Array::New(env, threads.size() + 1);
  for (size_t k = 0; k <= threads.size(); k++) {
    Ctx& c = k == 0 ? MainCtx() : threads[k - 1]->ctx;
    Napi::Object o = Napi::Object::New(env);
    o.Set("hits", static_cast<double>(c.stats.hits));
    o.Set("misses", static_cast<double>(c.stats.misses));
    o.Set("toJs", static_cast<double>(c.stats.toJs));
    o.Set("txDrops", static_cast<double>(c.stats.txDrops));
    o.Set("ringDrops", static_cast<double>(c.stats.ringDrops));
    o.Set("wakeups", static_cast<double>(c.stats.wakeups));
    o.Set("busyPollHits", static_cast<double>(c.stats.busyPollHits));
    uint64_t rx = 0, tx = 0;
    if (k == 0) MainPacketTotals(&rx, &tx);
    for (const Port* p : c.ports) {
      rx += p->rxPackets;
      tx += p->txPackets;
    }
    o.Set("rxPackets", static_cast<double>(rx));
    o.Set("txPackets", static_cast<double>(tx));
    a.Set(static_cast<uint32_t>(k), o);
  }
  return a;
}

namespace {

Napi::Value ThreadStats(const Napi::CallbackInfo& info) { return ThreadStatsArray(info.Env()); }

// udpSetSteering(fd, prefixLen, sockets[, first]): a classic BPF program on fd's SO_REUSEPORT group
// picks the socket (first..sockets-1, in bind order) for each datagram by a symmetric hash of the
// inner IPv4 packet behind `prefixLen` bytes of overlay header: addresses, and TCP/UDP ports or
// the ICMP echo id. Anything else (IPv6, short) goes to socket `first` (default 0).
Napi::Value UdpSetSteering(const Napi::CallbackInfo& info) {
  const char* fn = "udpSetSteering";
  int fd;
  int64_t P, n, first = 0;
  if (!ArgFd(info, 0, fn, &fd) || !ArgInt(info, 1, fn, "prefixLen", 0, 256, &P) || !ArgInt(info, 2, fn, "sockets", 1, 64, &n) ||
      (info.Length() > 3 && !info[3].IsUndefined() && !ArgInt(info, 3, fn, "first", 0, n - 1, &first)))
    return Napi::Value();
  const uint32_t p = static_cast<uint32_t>(P), f = static_cast<uint32_t>(first);
  // Labels are instruction indexes; jumps are relative to the next instruction.
  enum { kV4 = 3, kPorts = 12, kIcmp = 23, kMix = 29, kZero = 38 };
  auto J = [](uint16_t code, uint32_t k, int at, int jt, int jf) {
    return sock_filter{code, static_cast<uint8_t>(jt - at - 1), static_cast<uint8_t>(jf - at - 1), k};
  };
  sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, p),                 // 0  A = version/IHL
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0),             // 1
      J(BPF_JMP | BPF_JEQ | BPF_K, 0x40, 2, kV4, kZero),     // 2  IPv4?
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, p + 12),            // 3  src
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                       // 4
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, p + 16),            // 5  dst
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                // 6  src ^ dst
      BPF_STMT(BPF_ST, 0),                                   // 7  M[0]
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, p + 9),             // 8  protocol
      J(BPF_JMP | BPF_JEQ | BPF_K, 6, 9, kPorts, 10),        // 9
      J(BPF_JMP | BPF_JEQ | BPF_K, 17, 10, kPorts, 11),      // 10
      J(BPF_JMP | BPF_JEQ | BPF_K, 1, 11, kIcmp, kMix),      // 11
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, p),                // 12 X = IHL * 4
      BPF_STMT(BPF_LD | BPF_W | BPF_IND, p),                 // 13 A = sport << 16 | dport
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                       // 14
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),               // 15
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                // 16
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xffff),           // 17 sport ^ dport
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                       // 18
      BPF_STMT(BPF_LD | BPF_MEM, 0),                         // 19
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                // 20
      BPF_STMT(BPF_ST, 0),                                   // 21
      BPF_STMT(BPF_JMP | BPF_JA, kMix - 23),                 // 22
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, p),                // 23
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, p + 4),             // 24 echo id
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                       // 25
      BPF_STMT(BPF_LD | BPF_MEM, 0),                         // 26
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                // 27
      BPF_STMT(BPF_ST, 0),                                   // 28
      BPF_STMT(BPF_LD | BPF_MEM, 0),                         // 29 mix
      BPF_STMT(BPF_MISC | BPF_TAX, 0),                       // 30
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),               // 31
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                // 32
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1),       // 33
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),               // 34
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, static_cast<uint32_t>(n) - f),  // 35
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, f),                // 36 first + hash % (sockets - first)
      BPF_STMT(BPF_RET | BPF_A, 0),                          // 37
      BPF_STMT(BPF_RET | BPF_K, f),                          // 38
  };
  static_assert(sizeof prog / sizeof prog[0] == kZero + 1, "labels");
  sock_fprog fp{static_cast<unsigned short>(sizeof prog / sizeof prog[0]), prog};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp, sizeof fp) < 0) {
    ThrowErrno(info.Env(), errno, "setsockopt", "SO_ATTACH_REUSEPORT_CBPF");
    return Napi::Value();
  }
  return Napi::Value();
}

}  // namespace

bool RingPush(Ctx& c, int keyFd, int kind, const uint8_t* data, int32_t len, int32_t gso, uint32_t addr,
              uint16_t port) {
  Ring& r = *c.ring;
  size_t body = len > 0 ? static_cast<size_t>(len) : 0;
  size_t need = Align8(sizeof(RecHdr) + body);
  uint64_t tail = r.tail.load(std::memory_order_relaxed);
  uint64_t head = r.head.load(std::memory_order_acquire);
  size_t at = static_cast<size_t>(tail & (r.cap - 1));
  size_t toEnd = r.cap - at;
  size_t pad = toEnd < need ? toEnd : 0;
  if (need > r.cap / 2 || tail + pad + need - head > r.cap) {
    c.stats.ringDrops++;
    r.dropsUnseen.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (pad > 0) {
    RecHdr h{};
    h.size = static_cast<uint32_t>(pad);
    memcpy(r.mem.data() + at, &h, sizeof h);  // toEnd may be 8 or 16: the header spills into the slack
    tail += pad;
    at = 0;
  }
  RecHdr h{};
  h.size = static_cast<uint32_t>(need);
  h.keyFd = keyFd;
  h.len = len;
  h.gso = gso;
  h.addr = addr;
  h.port = port;
  h.kind = static_cast<uint8_t>(kind);
  memcpy(r.mem.data() + at, &h, sizeof h);
  if (body > 0) memcpy(r.mem.data() + at + sizeof h, data, body);
  r.tail.store(tail + need, std::memory_order_seq_cst);
  return true;
}

void SumThreadStats(Stats* s) {
  for (Thread* t : threads) s->Add(t->ctx.stats);
}

bool MainOffFastPath() { return mainOff; }

QueueSet* QueuesOf(int keyFd) {
  for (QueueSet* q : queueSets)
    if (q->keyFd == keyFd) return q;
  return nullptr;
}

void SumThreadFdStats(int fd, uint64_t* rxP, uint64_t* rxB, uint64_t* txP, uint64_t* txB) {
  if (QueueSet* q = QueuesOf(fd)) {
    *txP += q->q0TxPackets;
    *txB += q->q0TxBytes;
  }
  for (Thread* t : threads) {
    for (const Port* p : t->ctx.ports) {
      if (p->keyFd != fd) continue;
      *rxP += p->rxPackets;
      *rxB += p->rxBytes;
      *txP += p->txPackets;
      *txB += p->txBytes;
    }
  }
}

void ForEachCtx(void (*fn)(const Ctx&, void*), void* arg) {
  fn(MainCtx(), arg);
  for (Thread* t : threads) fn(t->ctx, arg);
}

}  // namespace fp

void InitDatapath(Napi::Env env, Napi::Object exports) {
  using namespace fp;
  Export(env, exports, "fastPathForget", Forget);
  Export(env, exports, "datapathStart", Start);
  Export(env, exports, "datapathStop", Stop);
  Export(env, exports, "datapathAttach", AttachToThread);
  Export(env, exports, "datapathDrain", Drain);
  Export(env, exports, "datapathThreadStats", ThreadStats);
  Export(env, exports, "udpSetSteering", UdpSetSteering);
}

}  // namespace sluice
