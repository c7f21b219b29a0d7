// A process-wide stop request (SIGTERM, SIGINT, SIGHUP) that long set-up work polls: decoding a dataset,
// filling caches, loading weights. The signal handler only sets a flag; whoever is working notices it.
#pragma once
#include <string>

#include "core/base/error.h"

namespace repa {

// Thrown when a stop was requested before anything was trained: nothing is saved, the run ends cleanly.
class StopRequested : public Error {
 public:
  using Error::Error;
};

// Async-signal-safe: records `signal_number` (the first one wins).
void request_stop(int signal_number);
// The signal that asked for a stop, 0 when none did.
int stop_signal();
// Throws StopRequested naming `during` ("filling the latent cache") when a stop was requested.
void throw_if_stop_requested(const std::string& during);

}  // namespace repa
