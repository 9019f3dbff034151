#include "args.h"

#include <cmath>

#include "errors.h"

namespace sluice {

namespace {

const char* TypeName(napi_typedarray_type t) {
  switch (t) {
    case napi_uint8_array: return "Uint8Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_uint16_array: return "Uint16Array";
    default: return "another TypedArray";
  }
}

template <typename T>
bool ArgTyped(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what,
              napi_typedarray_type want, Span<T>* out) {
  napi_env env = info.Env();
  napi_value v = info[i];
  bool is = false;
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != want) {
    ThrowType(info.Env(), "%s: %s must be a %s%s", fn, what, TypeName(want),
              want == napi_uint8_array ? " (Buffer)" : "");
    return false;
  }
  out->data = static_cast<T*>(data);
  out->len = len;
  return true;
}

}  // namespace

bool ArgInt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what,
            int64_t min, int64_t max, int64_t* out) {
  napi_env env = info.Env();
  napi_value v = info[i];
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    ThrowType(info.Env(), "%s: %s must be a number", fn, what);
    return false;
  }
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || std::trunc(d) != d) {
    ThrowRange(info.Env(), "%s: %s must be an integer in [%lld, %lld], got %g", fn, what,
               static_cast<long long>(min), static_cast<long long>(max), d);
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ArgFd(const Napi::CallbackInfo& info, size_t i, const char* fn, int* out) {
  int64_t v;
  if (!ArgInt(info, i, fn, "fd", 0, INT32_MAX, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

bool ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, Span<uint8_t>* out) {
  return ArgTyped(info, i, fn, what, napi_uint8_array, out);
}
bool ArgInt32s(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, Span<int32_t>* out) {
  return ArgTyped(info, i, fn, what, napi_int32_array, out);
}
bool ArgUint32s(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, Span<uint32_t>* out) {
  return ArgTyped(info, i, fn, what, napi_uint32_array, out);
}
bool ArgUint16s(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, Span<uint16_t>* out) {
  return ArgTyped(info, i, fn, what, napi_uint16_array, out);
}

bool CheckCount(Napi::Env env, const char* fn, int64_t count, const char* what, size_t arrayLen) {
  if (static_cast<uint64_t>(count) > arrayLen) {
    ThrowRange(env, "%s: count (%lld) exceeds %s.length (%zu)", fn, static_cast<long long>(count), what, arrayLen);
    return false;
  }
  return true;
}

bool CheckReadSlots(Napi::Env env, const char* fn, const Span<uint8_t>& buf, const Span<int32_t>& offsets,
                    int64_t maxLen, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    int64_t off = offsets.data[i];
    if (off < 0 || off + maxLen > static_cast<int64_t>(buf.len)) {
      ThrowRange(env, "%s: offsets[%lld] (%lld) + maxLen (%lld) is outside buf (length %zu)", fn,
                 static_cast<long long>(i), static_cast<long long>(off), static_cast<long long>(maxLen), buf.len);
      return false;
    }
  }
  return true;
}

bool CheckWriteSlots(Napi::Env env, const char* fn, const Span<uint8_t>& buf, const Span<int32_t>& offsets,
                     const Span<int32_t>& lengths, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    int64_t off = offsets.data[i], len = lengths.data[i];
    if (off < 0 || len < 0 || off + len > static_cast<int64_t>(buf.len)) {
      ThrowRange(env, "%s: packet %lld (offsets[%lld] = %lld, lengths[%lld] = %lld) is outside buf (length %zu)", fn,
                 static_cast<long long>(i), static_cast<long long>(i), static_cast<long long>(off),
                 static_cast<long long>(i), static_cast<long long>(len), buf.len);
      return false;
    }
  }
  return true;
}

bool CheckRange(Napi::Env env, const char* fn, const char* what, int64_t off, int64_t len, size_t bufLen) {
  if (off < 0 || len < 0 || off + len > static_cast<int64_t>(bufLen)) {
    ThrowRange(env, "%s: %s [%lld, %lld) is outside buf (length %zu)", fn, what, static_cast<long long>(off),
               static_cast<long long>(off + len), bufLen);
    return false;
  }
  return true;
}

}  // namespace sluice
