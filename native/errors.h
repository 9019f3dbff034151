// Error construction for the addon. Every error thrown to JS is a real Error
// object: system errors carry Node's `code`/`errno`/`syscall` fields, argument
// errors carry `code` ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE.
#pragma once

#include <napi.h>

namespace sluice {

// Builds an Error for a failed system call, shaped like Node's own system
// errors: message "EPERM: operation not permitted, ioctl(TUNSETIFF)",
// code "EPERM", errno -1 (negative, as in Node/libuv), syscall "ioctl".
// `detail` (may be null) is appended to the message only.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const char* detail = nullptr);

// The same error built with raw N-API calls that never throw or abort:
// nullptr if the env cannot create it (e.g. a worker shutting down). For
// callbacks from the event loop, outside any JS call.
napi_value ErrnoErrorValue(napi_env env, int err, const char* syscall);

// Throws ErrnoError as a pending JS exception.
void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* detail = nullptr);

// Throw a TypeError (code ERR_INVALID_ARG_TYPE) / RangeError (code
// ERR_OUT_OF_RANGE) / Error with the given code; printf-style message.
void ThrowType(Napi::Env env, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void ThrowRange(Napi::Env env, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void ThrowCode(Napi::Env env, const char* code, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// Errors after which an fd is unusable (closed, TUN device gone, bad
// pointer, not a socket): batch loops throw these instead of skipping the
// packet, so the caller's read/write loop exits.
bool IsFatalIoError(int err);

// The contract of every batched write loop (writeBatch, writeBatchGso, sendBatch, sendBatchGso;
// the fast path's flush goes through the same engines): how one failed write is treated.
enum class WriteFailure {
  kStop,   // EAGAIN/EWOULDBLOCK/ENOBUFS: the queue is full; the batch ends, the rest is not tried
  kFatal,  // IsFatalIoError: the fd is unusable; thrown if nothing was consumed, else the batch ends
  kSkip,   // anything else: this packet is rejected (marked lengths[i] = -errno), the batch goes on
};
WriteFailure ClassifyWriteError(int err);

// Applies the contract to packet *n of a batch after its write failed with err: kSkip marks
// lengths[*n] = -err, consumes it and returns true (go on); otherwise returns false (end the
// batch), with *throwIt set when the error must be thrown (fatal before anything was consumed).
bool OnWriteError(int err, int64_t* n, int32_t* lengths, bool* throwIt);

}  // namespace sluice
