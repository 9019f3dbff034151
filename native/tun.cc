#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "args.h"
#include "errors.h"
#include "io.h"

namespace sluice {

namespace {

// openTun(name, flags) -> { fd, name }: a non-blocking, close-on-exec TUN fd
// (IFF_TUN | IFF_NO_PI). `name` may be '' or a pattern like 'tun%d'; the
// kernel's chosen name is returned.
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

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, errno, "open", "'/dev/net/tun'");
    return Napi::Value();
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
    std::string detail = "'" + name + "'";
    ThrowErrno(env, err, "ioctl(TUNSETIFF)", detail.c_str());
    return Napi::Value();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("name", Napi::String::New(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
  return out;
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

  int64_t n = 0;
  while (n < count) {
    ssize_t r = write(fd, buf.data + offsets.data[n], static_cast<size_t>(lengths.data[n]));
    if (r >= 0) {
      n++;
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
    if (IsFatalIoError(err)) {
      if (n == 0) {
        ThrowErrno(env, err, "write");
        return Napi::Value();
      }
      break;
    }
    lengths.data[n++] = -err;
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
  exports.Set("openTun", Napi::Function::New(env, OpenTun, "openTun"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("readBatch", Napi::Function::New(env, ReadBatch, "readBatch"));
  exports.Set("writeBatch", Napi::Function::New(env, WriteBatch, "writeBatch"));
}

}  // namespace sluice
