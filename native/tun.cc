#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "args.h"
#include "errors.h"
#include "io.h"

namespace sluice {

namespace {

// Opens /dev/net/tun and attaches it to the device `name` (created if absent).
// Returns the fd, or -errno with *syscall naming the call that failed.
int AttachTun(const std::string& name, int64_t flags, std::string* ifname, const char** syscall) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *syscall = "open";
    return -errno;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (flags & kTunMultiQueue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (flags & kTunVnetHdr) ifr.ifr_flags |= IFF_VNET_HDR;
  memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    *syscall = "ioctl(TUNSETIFF)";
    return -err;
  }
  ifname->assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  return fd;
}

// openTun(name, flags, netns?) -> { fd, name }: a non-blocking, close-on-exec
// TUN fd (IFF_TUN | IFF_NO_PI). `name` may be '' or a pattern like 'tun%d';
// the kernel's chosen name is returned. With `netns` (a path such as
// /var/run/netns/NAME) the device is looked up or created in that network
// namespace: this thread enters it for the two calls and returns (setns,
// CAP_SYS_ADMIN). The fd keeps working from any namespace — which is how a
// restarted daemon re-attaches to a persistent TUN inside a pod.
Napi::Value OpenTun(const Napi::CallbackInfo& info) {
  const char* fn = "openTun";
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "%s: name must be a string", fn);
    return Napi::Value();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    ThrowRange(env, "%s: name '%s' must be at most %d bytes with no NUL", fn, name.c_str(), IFNAMSIZ - 1);
    return Napi::Value();
  }
  int64_t flags;
  if (!ArgInt(info, 1, fn, "flags", 0, kTunMultiQueue | kTunVnetHdr, &flags)) return Napi::Value();
  std::string netns;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsString()) {
      ThrowType(env, "%s: netns must be a path string", fn);
      return Napi::Value();
    }
    netns = info[2].As<Napi::String>().Utf8Value();
  }

  std::string ifname;
  const char* syscall = "open";
  int fd;
  if (netns.empty()) {
    fd = AttachTun(name, flags, &ifname, &syscall);
  } else {
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) {
      ThrowErrno(env, errno, "open", "'/proc/thread-self/ns/net'");
      return Napi::Value();
    }
    int target = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      int err = errno;
      close(home);
      std::string detail = "netns '" + netns + "'";
      ThrowErrno(env, err, "open", detail.c_str());
      return Napi::Value();
    }
    if (setns(target, CLONE_NEWNET) < 0) {
      int err = errno;
      close(home);
      close(target);
      std::string detail = "netns '" + netns + "'";
      ThrowErrno(env, err, "setns", detail.c_str());
      return Napi::Value();
    }
    fd = AttachTun(name, flags, &ifname, &syscall);
    // Back home before anything else runs on this thread; staying in the pod's
    // namespace would silently misdirect every later socket and ioctl.
    if (setns(home, CLONE_NEWNET) < 0) {
      perror("sluice: openTun could not return to the daemon's network namespace");
      abort();
    }
    close(home);
    close(target);
  }
  if (fd < 0) {
    std::string detail = "'" + name + "'" + (netns.empty() ? "" : " in netns '" + netns + "'");
    ThrowErrno(env, -fd, syscall, detail.c_str());
    return Napi::Value();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("name", Napi::String::New(env, ifname));
  return out;
}

// tunSetPersist(fd, on): TUNSETPERSIST. A persistent device outlives its fds
// (no queue attached: carrier off, packets dropped) until set non-persistent
// and closed, or its namespace is deleted.
Napi::Value TunSetPersist(const Napi::CallbackInfo& info) {
  int fd;
  int64_t on;
  if (!ArgFd(info, 0, "tunSetPersist", &fd) || !ArgInt(info, 1, "tunSetPersist", "on", 0, 1, &on)) return Napi::Value();
  if (ioctl(fd, TUNSETPERSIST, static_cast<unsigned long>(on)) < 0) ThrowErrno(info.Env(), errno, "ioctl(TUNSETPERSIST)");
  return Napi::Value();
}

// closeFd(fd). EINTR is not retried: on Linux the fd is released regardless.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, "closeFd", &fd)) return Napi::Value();
  if (close(fd) < 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close");
  return Napi::Value();
}

// readBatch(fd, buf, offsets, lengths, maxLen, count) -> n. Reads packets into
// buf[offsets[i] .. +maxLen) until `count` or EAGAIN; lengths[i] = size. A
// packet longer than maxLen is truncated by the kernel, so maxLen >= MTU.
// Errors: thrown when nothing was read yet, else the batch ends early.
Napi::Value ReadBatch(const Napi::CallbackInfo& info) {
  const char* fn = "readBatch";
  Napi::Env env = info.Env();
  int fd;
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths;
  int64_t maxLen, count;
  if (!ArgFd(info, 0, fn, &fd) || !ArgBytes(info, 1, fn, "buf", &buf) ||
      !ArgInt32s(info, 2, fn, "offsets", &offsets) || !ArgInt32s(info, 3, fn, "lengths", &lengths) ||
      !ArgInt(info, 4, fn, "maxLen", 1, INT32_MAX, &maxLen) || !ArgInt(info, 5, fn, "count", 0, INT32_MAX, &count) ||
      !CheckCount(env, fn, count, "offsets", offsets.len) || !CheckCount(env, fn, count, "lengths", lengths.len) ||
      !CheckReadSlots(env, fn, buf, offsets, maxLen, count))
    return Napi::Value();

  int64_t n = ReadPlainLoop(fd, buf.data, offsets.data, lengths.data, static_cast<size_t>(maxLen),
                            static_cast<size_t>(count));
  if (n < 0) {
    ThrowErrno(env, static_cast<int>(-n), "read");
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// writeBatch(fd, buf, offsets, lengths, count) -> n: the number of packets
// consumed from the front of the batch, i.e. written or rejected.
// - EAGAIN/ENOBUFS stop the batch: packets n..count-1 were not attempted.
// - A packet the kernel rejects (EINVAL, EIO, EMSGSIZE, ...) is skipped and
//   marked by lengths[i] = -errno; the caller counts those as drops.
// - EBADF/EBADFD/EFAULT are thrown if nothing was consumed yet, else end the batch.
Napi::Value WriteBatch(const Napi::CallbackInfo& info) {
  const char* fn = "writeBatch";
  Napi::Env env = info.Env();
  int fd;
  Span<uint8_t> buf;
  Span<int32_t> offsets, lengths;
  int64_t count;
  if (!ArgFd(info, 0, fn, &fd) || !ArgBytes(info, 1, fn, "buf", &buf) ||
      !ArgInt32s(info, 2, fn, "offsets", &offsets) || !ArgInt32s(info, 3, fn, "lengths", &lengths) ||
      !ArgInt(info, 4, fn, "count", 0, INT32_MAX, &count) || !CheckCount(env, fn, count, "offsets", offsets.len) ||
      !CheckCount(env, fn, count, "lengths", lengths.len) || !CheckWriteSlots(env, fn, buf, offsets, lengths, count))
    return Napi::Value();

  int64_t n = WriteLoop(fd, buf.data, offsets.data, lengths.data, nullptr, static_cast<size_t>(count), false);
  if (n < 0) {
    ThrowErrno(env, static_cast<int>(-n), "write");
    return Napi::Value();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace

int64_t ReadPlainLoop(int fd, uint8_t* buf, const int32_t* offsets, int32_t* lengths, size_t maxLen, size_t count) {
  size_t n = 0;
  while (n < count) {
    ssize_t r = read(fd, buf + offsets[n], maxLen);
    if (r > 0) {
      lengths[n++] = static_cast<int32_t>(r);
      continue;
    }
    if (r == 0) break;  // EOF: not seen on TUN, but never loop on it
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) break;
    if (n == 0) return -err;
    break;  // the error recurs on the next call, which then reports it
  }
  return static_cast<int64_t>(n);
}

void InitTun(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "openTun", OpenTun);
  Export(env, exports, "tunSetPersist", TunSetPersist);
  Export(env, exports, "closeFd", CloseFd);
  Export(env, exports, "readBatch", ReadBatch);
  Export(env, exports, "writeBatch", WriteBatch);
}

}  // namespace sluice
