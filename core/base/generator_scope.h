// Scoped use of LibTorch's default CPU generator: whatever a block draws is undone when it ends, so the helpers that
// build or sample (tiny pipelines, random encoders, text encoders being loaded, sample grids) never move a run's
// random stream. With a seed, the block draws from that seed.
#pragma once
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdint>
#include <mutex>

namespace repa {

class GeneratorScope {
 public:
  GeneratorScope() : state_(at::detail::getDefaultCPUGenerator().get_state()) {}
  explicit GeneratorScope(uint64_t seed) : GeneratorScope() { torch::manual_seed(seed); }
  ~GeneratorScope() {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state_);
  }
  GeneratorScope(const GeneratorScope&) = delete;
  GeneratorScope& operator=(const GeneratorScope&) = delete;

 private:
  torch::Tensor state_;
};

}  // namespace repa
