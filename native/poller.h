// Poller: fd readiness via uv_poll_t on the env's own loop
// (napi_get_uv_event_loop, never uv_default_loop, so it works in workers).
//
// Lifetime: the uv handle lives in a separately heap-allocated Handle that
// uv_close's callback frees, so neither a GC of the JS object nor a second
// close() can touch freed memory. While started, the JS object is ref'd (it
// cannot be collected and the active handle keeps the loop alive); stop()
// and close() drop both.
#pragma once

#include <napi.h>
#include <uv.h>

namespace sluice {

class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Poller(const Napi::CallbackInfo& info);
  ~Poller() override;

 private:
  struct Handle {
    uv_poll_t poll;
    Poller* owner;  // null once the Poller let go of the handle
  };

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void StopPolling();  // idempotent
  void CloseHandle();  // idempotent; also the env cleanup hook's action
  static void OnPoll(uv_poll_t* poll, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static void OnEnvCleanup(void* arg);

  Handle* handle_ = nullptr;
  bool started_ = false;
  bool hookAdded_ = false;
  int fd_ = -1;
  Napi::FunctionReference onReadable_;
  Napi::AsyncContext* async_ = nullptr;
};

}  // namespace sluice
