// Argument readers for the exported functions. They use raw N-API calls (one
// per argument, no wrapper objects) because readBatch/writeBatch/checksum run
// once per batch or per packet. Each returns false after throwing a
// TypeError/RangeError whose message names the function and the argument.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace sluice {

template <typename T>
struct Span {
  T* data = nullptr;
  size_t len = 0;
};

// An integral Number in [min, max].
bool ArgInt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what,
            int64_t min, int64_t max, int64_t* out);

// A file descriptor: integer in [0, INT32_MAX].
bool ArgFd(const Napi::CallbackInfo& info, size_t i, const char* fn, int* out);

// Typed arrays of an exact element type (a Buffer is a Uint8Array).
bool ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, Span<uint8_t>* out);
bool ArgInt32s(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, Span<int32_t>* out);
bool ArgUint32s(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, Span<uint32_t>* out);
bool ArgUint16s(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what, Span<uint16_t>* out);

// Batch checks, once per call: `count` fits every per-packet array, and every
// slot lies inside `buf` (fixed size `maxLen` for reads, lengths[i] for writes).
bool CheckCount(Napi::Env env, const char* fn, int64_t count, const char* what, size_t arrayLen);
bool CheckReadSlots(Napi::Env env, const char* fn, const Span<uint8_t>& buf, const Span<int32_t>& offsets,
                    int64_t maxLen, int64_t count);
bool CheckWriteSlots(Napi::Env env, const char* fn, const Span<uint8_t>& buf, const Span<int32_t>& offsets,
                     const Span<int32_t>& lengths, int64_t count);

// A bounds check for single-range functions (checksums): off + len <= bufLen.
bool CheckRange(Napi::Env env, const char* fn, const char* what, int64_t off, int64_t len, size_t bufLen);

// Registers fn on exports as `name`, which is also the JS function's name (stack traces).
inline void Export(Napi::Env env, Napi::Object exports, const char* name, Napi::Function::Callback fn) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

}  // namespace sluice
