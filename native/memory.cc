// mallocTrim(): hands the C heap's free pages back to the kernel (malloc_trim(0), every arena).
// glibc keeps memory freed in the middle of its arenas (V8's platform threads, the policy worker,
// libuv's pool) resident; after a burst of new flows that is megabytes of RSS. The trim runs on
// libuv's thread pool: releasing tens of MiB takes milliseconds, which the JS thread (the data
// path) should not wait for.
#include <malloc.h>

#include <napi.h>

#include "args.h"

namespace sluice {

namespace {

class TrimWorker : public Napi::AsyncWorker {
 public:
  explicit TrimWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { freed_ = malloc_trim(0) != 0; }
  void OnOK() override { deferred_.Resolve(Napi::Boolean::New(Env(), freed_)); }

 private:
  Napi::Promise::Deferred deferred_;
  bool freed_ = false;
};

// mallocTrim() -> Promise<boolean>: whether any memory was released.
Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
  TrimWorker* w = new TrimWorker(info.Env());  // deletes itself after OnOK
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "mallocTrim", MallocTrim);
}

}  // namespace sluice
