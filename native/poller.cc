#include "poller.h"

#include "args.h"
#include "errors.h"
#include "fastpath.h"

namespace sluice {

void Poller::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "Poller",
                                    {
                                        InstanceMethod<&Poller::Start>("start"),
                                        InstanceMethod<&Poller::Stop>("stop"),
                                        InstanceMethod<&Poller::Close>("close"),
                                    });
  exports.Set("Poller", ctor);
}

// new Poller(fd, onReadable). The fd must stay open until close(): libuv
// must not poll a closed (possibly reused) fd number.
Poller::Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) {
    ThrowType(env, "Poller: must be called with new");
    return;
  }
  if (!ArgFd(info, 0, "Poller", &fd_)) return;
  if (!info[1].IsFunction()) {
    ThrowType(env, "Poller: onReadable must be a function");
    return;
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    ThrowCode(env, "ERR_POLLER_NO_LOOP", "Poller: no event loop for this environment");
    return;
  }
  Handle* h = new Handle();
  h->owner = this;
  int rc = uv_poll_init(loop, &h->poll, fd_);
  if (rc < 0) {
    delete h;  // never registered with the loop, so no uv_close needed
    ThrowErrno(env, -rc, "uv_poll_init");
    return;
  }
  h->poll.data = h;
  handle_ = h;
  onReadable_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_ = new Napi::AsyncContext(env, "SluicePoller");
  // Close the handle before the env (and, in a worker, its loop) goes away.
  hookAdded_ = napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok;
}

Poller::~Poller() {
  // Runs from the GC finalizer, which can only happen while stopped (started
  // pollers are ref'd) — or after a failed constructor.
  if (handle_ != nullptr) {
    if (started_) uv_poll_stop(&handle_->poll);
    started_ = false;
    handle_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll), OnClosed);
    handle_ = nullptr;
  }
  if (hookAdded_) napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
  delete async_;
}

Napi::Value Poller::Start(const Napi::CallbackInfo& info) {
  if (handle_ == nullptr) {
    ThrowCode(info.Env(), "ERR_POLLER_CLOSED", "Poller.start: the poller for fd %d is closed", fd_);
    return Napi::Value();
  }
  if (started_) return Napi::Value();
  int rc = uv_poll_start(&handle_->poll, UV_READABLE, OnPoll);
  if (rc < 0) {
    ThrowErrno(info.Env(), -rc, "uv_poll_start");
    return Napi::Value();
  }
  started_ = true;
  Ref();
  return Napi::Value();
}

Napi::Value Poller::Stop(const Napi::CallbackInfo&) {
  StopPolling();
  return Napi::Value();
}

Napi::Value Poller::Close(const Napi::CallbackInfo&) {
  CloseHandle();
  return Napi::Value();
}

void Poller::StopPolling() {
  if (!started_) return;
  uv_poll_stop(&handle_->poll);
  started_ = false;
  Unref();
}

void Poller::CloseHandle() {
  if (handle_ == nullptr) return;
  StopPolling();
  handle_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll), OnClosed);
  handle_ = nullptr;
  onReadable_.Reset();
  if (hookAdded_) {
    napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    hookAdded_ = false;
  }
}

void Poller::OnClosed(uv_handle_t* handle) { delete static_cast<Handle*>(handle->data); }

void Poller::OnEnvCleanup(void* arg) {
  Poller* self = static_cast<Poller*>(arg);
  self->hookAdded_ = false;  // a hook that ran is already unregistered
  self->CloseHandle();
}

// Runs on the loop thread outside any JS frame: open a scope, call
// onReadable through napi_make_callback (so nextTicks/microtasks drain and
// async_hooks see it), and hand a thrown exception to 'uncaughtException'.
// Raw N-API with checked statuses: while a worker shuts down, JS can no
// longer run and every call may fail — then the event is simply dropped.
void Poller::OnPoll(uv_poll_t* poll, int status, int /*events*/) {
  Poller* self = static_cast<Handle*>(poll->data)->owner;
  if (self == nullptr || !self->started_) return;
  // Flows the JS data path already decided are forwarded natively; JS is
  // called only for what is left (fastpath.cc).
  if (status >= 0 && !FastPathOnReadable(self->fd_)) return;
  napi_env env = self->Env();
  bool dropRef = false;
  if (status < 0) {
    // libuv has already stopped the handle (POLLERR): mirror that, and drop
    // our reference only after the callback, which may start() again.
    self->started_ = false;
    dropRef = true;
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    napi_value fn = nullptr, recv = nullptr, result;
    napi_value argv[1] = {nullptr};
    size_t argc = 0;
    if (status < 0) {
      argv[0] = ErrnoErrorValue(env, -status, "uv_poll");
      argc = argv[0] != nullptr ? 1 : 0;
    }
    // The callback may close() this poller; the Poller itself stays alive
    // (recv, its JS object, is on our stack) and the uv handle is not touched.
    if (napi_get_reference_value(env, self->onReadable_, &fn) == napi_ok && fn != nullptr &&
        napi_get_reference_value(env, static_cast<napi_ref>(*self), &recv) == napi_ok && recv != nullptr &&
        napi_make_callback(env, *self->async_, recv, fn, argc, argv, &result) != napi_ok) {
      bool pending = false;
      napi_value exc;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
          napi_get_and_clear_last_exception(env, &exc) == napi_ok)
        napi_fatal_exception(env, exc);
    }
    napi_close_handle_scope(env, scope);
  }
  if (dropRef) self->Unref();
}

}  // namespace sluice
