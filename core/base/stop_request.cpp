#include "core/base/stop_request.h"

#include <csignal>

namespace repa {
namespace {
volatile std::sig_atomic_t g_stop_signal = 0;
}  // namespace

void request_stop(int signal_number) {
  if (g_stop_signal == 0) g_stop_signal = signal_number;
}

int stop_signal() {
  return g_stop_signal;
}

void throw_if_stop_requested(const std::string& during) {
  if (g_stop_signal == 0) return;
  const char* name = g_stop_signal == SIGTERM  ? "SIGTERM"
                     : g_stop_signal == SIGINT ? "SIGINT"
                     : g_stop_signal == SIGHUP ? "SIGHUP"
                                               : "a signal";
  throw StopRequested(std::string("stopped by ") + name + " while " + during +
                      ", before the first step; nothing "
                      "was trained and no checkpoint was written");
}

}  // namespace repa
