#include "errors.h"

#include <errno.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

#include <uv.h>

namespace sluice {

namespace {

// Symbolic name of a positive errno. libuv knows the common ones; glibc
// names the rest (EBADFD, ...), so no error ever ends up with a vague code.
std::string ErrnoName(int err) {
  char buf[64];
  uv_err_name_r(-err, buf, sizeof buf);
  if (strncmp(buf, "Unknown", 7) != 0) return buf;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) return name;
#endif
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

// Human text: libuv's wording (as in Node's own errors) when it knows err.
std::string ErrnoText(int err) {
  char buf[128];
  uv_strerror_r(-err, buf, sizeof buf);
  if (strncmp(buf, "Unknown", 7) != 0) return buf;
  return strerror(err);
}

std::string Format(const char* fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  return buf;
}

}  // namespace

namespace {

napi_value Str(napi_env env, const std::string& s) {
  napi_value v = nullptr;
  return napi_create_string_utf8(env, s.data(), s.size(), &v) == napi_ok ? v : nullptr;
}

napi_value BuildErrnoError(napi_env env, int err, const char* syscall, const char* detail) {
  std::string code = ErrnoName(err);
  std::string msg = code + ": " + ErrnoText(err) + ", " + syscall;
  if (detail != nullptr) msg.append(" ").append(detail);
  // The bare syscall name ("ioctl"); any argument detail lives in the message.
  std::string bare(syscall);
  bare = bare.substr(0, bare.find('('));
  napi_value e = nullptr, codeV = Str(env, code), msgV = Str(env, msg), sysV = Str(env, bare), errnoV = nullptr;
  if (codeV == nullptr || msgV == nullptr || sysV == nullptr || napi_create_int32(env, -err, &errnoV) != napi_ok ||
      napi_create_error(env, nullptr, msgV, &e) != napi_ok || napi_set_named_property(env, e, "code", codeV) != napi_ok ||
      napi_set_named_property(env, e, "errno", errnoV) != napi_ok ||
      napi_set_named_property(env, e, "syscall", sysV) != napi_ok)
    return nullptr;
  return e;
}

}  // namespace

napi_value ErrnoErrorValue(napi_env env, int err, const char* syscall) {
  return BuildErrnoError(env, err, syscall, nullptr);
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const char* detail) {
  napi_value e = BuildErrnoError(env, err, syscall, detail);
  if (e == nullptr) return Napi::Error::New(env, std::string("cannot create the error for ") + syscall);
  return Napi::Error(env, e);
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* detail) {
  ErrnoError(env, err, syscall, detail).ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Napi::TypeError e = Napi::TypeError::New(env, Format(fmt, ap));
  va_end(ap);
  e.Value().Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  e.ThrowAsJavaScriptException();
}

void ThrowRange(Napi::Env env, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Napi::RangeError e = Napi::RangeError::New(env, Format(fmt, ap));
  va_end(ap);
  e.Value().Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  e.ThrowAsJavaScriptException();
}

void ThrowCode(Napi::Env env, const char* code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Napi::Error e = Napi::Error::New(env, Format(fmt, ap));
  va_end(ap);
  e.Value().Set("code", Napi::String::New(env, code));
  e.ThrowAsJavaScriptException();
}

bool IsFatalIoError(int err) {
  return err == EBADF || err == EBADFD || err == EFAULT || err == ENOTSOCK;
}

WriteFailure ClassifyWriteError(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) return WriteFailure::kStop;
  if (IsFatalIoError(err)) return WriteFailure::kFatal;
  return WriteFailure::kSkip;
}

bool OnWriteError(int err, int64_t* n, int32_t* lengths, bool* throwIt) {
  *throwIt = false;
  switch (ClassifyWriteError(err)) {
    case WriteFailure::kStop:
      return false;
    case WriteFailure::kFatal:
      *throwIt = *n == 0;
      return false;
    case WriteFailure::kSkip:
      break;
  }
  lengths[(*n)++] = -err;
  return true;
}

}  // namespace sluice
