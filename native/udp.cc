#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "args.h"
#include "errors.h"
#include "io.h"
#include "tcp-gso.h"

namespace sluice {

namespace {

// Per-thread scratch for recvmmsg/sendmmsg headers: grown once to the largest
// batch, then reused, so a batch allocates nothing. thread_local because the
// addon may also be loaded by worker threads.
// Room for a UDP_GRO cmsg (an int: the size of the datagrams of a train).
union GroCtrl {
  char buf[CMSG_SPACE(sizeof(int))];
  cmsghdr align;
};

struct MsgScratch {
  std::vector<mmsghdr> msgs;
  std::vector<iovec> iovs;
  std::vector<sockaddr_in> addrs;
  std::vector<GroCtrl> ctrl;
  void Reserve(size_t n) {
    if (msgs.size() >= n) return;
    msgs.resize(n);
    iovs.resize(n);
    addrs.resize(n);
    ctrl.resize(n);
  }
};
thread_local MsgScratch scratch;

#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

// The train size from a UDP_GRO cmsg, or 0 (a single datagram).
int32_t GroSize(msghdr& h, unsigned len) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO || c->cmsg_len < CMSG_LEN(sizeof(int))) continue;
    int size;
    memcpy(&size, CMSG_DATA(c), sizeof size);
    if (size > 0 && static_cast<unsigned>(size) < len) {
      offloadCounters.groMessages++;
      return size;
    }
  }
  return 0;
}

// setsockopt with the *FORCE variant first (root may exceed net.core.*_max),
// falling back to the capped option.
bool SetBuf(Napi::Env env, int fd, int force, int plain, const char* plainName, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) == 0) return true;
  if (setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes) == 0) return true;
  ThrowErrno(env, errno, "setsockopt", plainName);
  return false;
}

// udpOpen(bindAddr, port, bufBytes[, flags]) -> fd: non-blocking, close-on-exec IPv4
// UDP socket bound to bindAddr:port (port 0 = kernel's choice). bufBytes
// sets SO_RCVBUF/SO_SNDBUF; 0 keeps the system defaults. flags 1: SO_REUSEPORT
// before bind (one socket per datapath thread on one address:port).
Napi::Value UdpOpen(const Napi::CallbackInfo& info) {
  const char* fn = "udpOpen";
  Napi::Env env = info.Env();
  int64_t addr, port, bufBytes, flags = 0;
  if (!ArgInt(info, 0, fn, "bindAddr", 0, UINT32_MAX, &addr) || !ArgInt(info, 1, fn, "port", 0, 65535, &port) ||
      !ArgInt(info, 2, fn, "bufBytes", 0, INT32_MAX, &bufBytes) ||
      (info.Length() > 3 && !info[3].IsUndefined() && !ArgInt(info, 3, fn, "flags", 0, 1, &flags)))
    return Napi::Value();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return Napi::Value();
  }
  int one = 1;
  if ((flags & 1) != 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "setsockopt", "SO_REUSEPORT");
    return Napi::Value();
  }
  if (bufBytes > 0 && (!SetBuf(env, fd, SO_RCVBUFFORCE, SO_RCVBUF, "SO_RCVBUF", static_cast<int>(bufBytes)) ||
                       !SetBuf(env, fd, SO_SNDBUFFORCE, SO_SNDBUF, "SO_SNDBUF", static_cast<int>(bufBytes)))) {
    close(fd);
    return Napi::Value();
  }
  sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(static_cast<uint32_t>(addr));
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int err = errno;
    close(fd);
    char detail[32];
    inet_ntop(AF_INET, &sa.sin_addr, detail, sizeof detail);
    size_t used = strlen(detail);
    snprintf(detail + used, sizeof detail - used, ":%lld", static_cast<long long>(port));
    ThrowErrno(env, err, "bind", detail);
    return Napi::Value();
  }
  return Napi::Number::New(env, fd);
}

// udpLocalPort(fd) -> the bound port (host order).
Napi::Value UdpLocalPort(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, "udpLocalPort", &fd)) return Napi::Value();
  sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) {
    ThrowErrno(info.Env(), errno, "getsockname");
    return Napi::Value();
  }
  if (sa.sin_family != AF_INET) {
    ThrowErrno(info.Env(), EAFNOSUPPORT, "getsockname");
    return Napi::Value();
  }
  return Napi::Number::New(info.Env(), ntohs(sa.sin_port));
}

// recvBatch(fd, buf, offsets, lengths, maxLen, addrs, ports, count) -> n:
// one recvmmsg(MSG_DONTWAIT). Message i lands at buf[offsets[i]], its size in
// lengths[i] (-1 if it was truncated to maxLen: drop and count it), its
// sender in addrs[i]/ports[i] (host order). 0 when nothing is queued.
// At most UIO_MAXIOV (1024) messages per call.
// Optional 9th argument gso (Int32Array): for a socket with UDP_GRO on,
// gso[i] = the size of the datagrams that datagram i is a train of (each
// gso[i] bytes, the last maybe shorter), or 0 for a single datagram.
Napi::Value RecvBatch(const Napi::CallbackInfo& info) {
  const char* fn = "recvBatch";
  Napi::Env env = info.Env();
  int fd;
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths;
  Span<uint32_t> addrs;
  Span<uint16_t> ports;
  int64_t maxLen, count;
  if (!ArgFd(info, 0, fn, &fd) || !ArgBytes(info, 1, fn, "buf", &buf) ||
      !ArgInt32s(info, 2, fn, "offsets", &offsets) || !ArgInt32s(info, 3, fn, "lengths", &lengths) ||
      !ArgInt(info, 4, fn, "maxLen", 1, INT32_MAX, &maxLen) || !ArgUint32s(info, 5, fn, "addrs", &addrs) ||
      !ArgUint16s(info, 6, fn, "ports", &ports) || !ArgInt(info, 7, fn, "count", 0, INT32_MAX, &count) ||
      !CheckCount(env, fn, count, "offsets", offsets.len) || !CheckCount(env, fn, count, "lengths", lengths.len) ||
      !CheckCount(env, fn, count, "addrs", addrs.len) || !CheckCount(env, fn, count, "ports", ports.len) ||
      !CheckReadSlots(env, fn, buf, offsets, maxLen, count))
    return Napi::Value();
  Span<int32_t> gso;
  bool wantGso = info.Length() > 8 && !info[8].IsUndefined();
  if (wantGso && (!ArgInt32s(info, 8, fn, "gso", &gso) || !CheckCount(env, fn, count, "gso", gso.len)))
    return Napi::Value();
  int64_t r = RecvLoop(fd, buf.data, offsets.data, lengths.data, static_cast<size_t>(maxLen), addrs.data, ports.data,
                       wantGso ? gso.data : nullptr, static_cast<size_t>(count));
  if (r < 0) {
    ThrowErrno(env, static_cast<int>(-r), "recvmmsg");
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

// sendBatch(fd, buf, offsets, lengths, addrs, ports, count) -> n: sendmmsg of
// message i (buf[offsets[i]], lengths[i] bytes) to addrs[i]:ports[i], looping
// until all are sent. Same contract as writeBatch: n = messages consumed;
// EAGAIN/ENOBUFS stop early; a message the kernel rejects (EMSGSIZE,
// ENETUNREACH, EINVAL for port 0, EPERM from a firewall, ...) is skipped and
// marked lengths[i] = -errno; EBADF/ENOTSOCK/EFAULT throw if n would be 0.
Napi::Value SendBatch(const Napi::CallbackInfo& info) {
  const char* fn = "sendBatch";
  Napi::Env env = info.Env();
  int fd;
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths;
  Span<uint32_t> addrs;
  Span<uint16_t> ports;
  int64_t count;
  if (!ArgFd(info, 0, fn, &fd) || !ArgBytes(info, 1, fn, "buf", &buf) ||
      !ArgInt32s(info, 2, fn, "offsets", &offsets) || !ArgInt32s(info, 3, fn, "lengths", &lengths) ||
      !ArgUint32s(info, 4, fn, "addrs", &addrs) || !ArgUint16s(info, 5, fn, "ports", &ports) ||
      !ArgInt(info, 6, fn, "count", 0, INT32_MAX, &count) || !CheckCount(env, fn, count, "offsets", offsets.len) ||
      !CheckCount(env, fn, count, "lengths", lengths.len) || !CheckCount(env, fn, count, "addrs", addrs.len) ||
      !CheckCount(env, fn, count, "ports", ports.len) || !CheckWriteSlots(env, fn, buf, offsets, lengths, count))
    return Napi::Value();

  size_t total = static_cast<size_t>(count);
  scratch.Reserve(total);
  for (size_t i = 0; i < total; i++) {
    sockaddr_in& sa = scratch.addrs[i];
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(addrs.data[i]);
    sa.sin_port = htons(ports.data[i]);
    scratch.iovs[i].iov_base = buf.data + offsets.data[i];
    scratch.iovs[i].iov_len = static_cast<size_t>(lengths.data[i]);
    msghdr& h = scratch.msgs[i].msg_hdr;
    memset(&h, 0, sizeof h);
    h.msg_name = &sa;
    h.msg_namelen = sizeof sa;
    h.msg_iov = &scratch.iovs[i];
    h.msg_iovlen = 1;
  }
  size_t n = 0;
  while (n < total) {
    size_t vlen = total - n < UIO_MAXIOV ? total - n : UIO_MAXIOV;
    int r = sendmmsg(fd, scratch.msgs.data() + n, static_cast<unsigned>(vlen), MSG_DONTWAIT);
    if (r > 0) {
      n += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) break;
    // sendmmsg reports an error only for the first message it tried, so
    // errno here belongs to message n.
    int err = errno;
    if (err == EINTR) continue;
    int64_t done = static_cast<int64_t>(n);
    bool throwIt;
    if (OnWriteError(err, &done, lengths.data, &throwIt)) {
      n = static_cast<size_t>(done);
      continue;
    }
    if (throwIt) {
      ThrowErrno(env, err, "sendmmsg");
      return Napi::Value();
    }
    break;
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace

int64_t RecvLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, size_t maxLen, uint32_t* addrs,
                 uint16_t* ports, int32_t* gso, size_t count) {
  if (count > UIO_MAXIOV) count = UIO_MAXIOV;  // the kernel's cap on vlen
  if (count == 0) return 0;
  scratch.Reserve(count);
  for (size_t i = 0; i < count; i++) {
    scratch.iovs[i].iov_base = buf + offsets[i];
    scratch.iovs[i].iov_len = maxLen;
    msghdr& h = scratch.msgs[i].msg_hdr;
    memset(&h, 0, sizeof h);
    h.msg_name = &scratch.addrs[i];
    h.msg_namelen = sizeof(sockaddr_in);
    h.msg_iov = &scratch.iovs[i];
    h.msg_iovlen = 1;
    if (gso != nullptr) {
      h.msg_control = scratch.ctrl[i].buf;
      h.msg_controllen = sizeof scratch.ctrl[i].buf;
    }
  }
  int r;
  do {
    r = recvmmsg(fd, scratch.msgs.data(), static_cast<unsigned>(count), MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
  for (int i = 0; i < r; i++) {
    mmsghdr& m = scratch.msgs[i];
    lengths[i] = (m.msg_hdr.msg_flags & MSG_TRUNC) ? -1 : static_cast<int32_t>(m.msg_len);
    addrs[i] = ntohl(scratch.addrs[i].sin_addr.s_addr);
    ports[i] = ntohs(scratch.addrs[i].sin_port);
    if (gso != nullptr) gso[i] = GroSize(m.msg_hdr, m.msg_len);
  }
  return r;
}

void InitUdp(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "udpOpen", UdpOpen);
  Export(env, exports, "udpLocalPort", UdpLocalPort);
  Export(env, exports, "recvBatch", RecvBatch);
  Export(env, exports, "sendBatch", SendBatch);
}

}  // namespace sluice
