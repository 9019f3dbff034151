// The native fast path (fastpath.cc): flows the JS pipeline already decided
// are forwarded from the poll callback without entering JS.
#pragma once

#include <napi.h>

namespace sluice {

// Called by Poller::OnPoll before it calls JS. Returns true when JS must be
// called (packets left for the JS pipeline, an error, or no fast path on fd).
bool FastPathOnReadable(int fd);

void InitFastPath(Napi::Env env, Napi::Object exports);

// datapath.cc: fastPathForget and the native datapath threads.
void InitDatapath(Napi::Env env, Napi::Object exports);

}  // namespace sluice
