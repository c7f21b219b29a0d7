#include "core/base/threads.h"

#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace repa {

int configure_torch_threads(int requested) {
  int threads = requested;
  if (threads <= 0) {
    if (const char* env = std::getenv("REPA_NUM_THREADS")) {
      try {
        threads = std::stoi(env);
      } catch (const std::exception&) {
        threads = 0;
      }
    }
  }
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  return torch::get_num_threads();
}

}  // namespace repa
