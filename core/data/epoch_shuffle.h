// The order in which training visits the dataset: a fresh seeded permutation per epoch, consumed as one
// continuous stream (a batch may straddle two epochs). The position (epoch, offset) is all the state, so a
// resumed run draws exactly the batches the uninterrupted run would have drawn. The permutation uses its own
// generator (splitmix64 + Fisher-Yates) so the order is the same with every standard library.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace repa::data {

struct DataPosition {
  int64_t epoch = 0;
  int64_t offset = 0;  // index into the epoch's permutation of the next sample
};

class EpochShuffle {
 public:
  EpochShuffle(int64_t dataset_size, uint64_t seed);

  // The next `count` dataset indices, with the epoch each was drawn in.
  struct Draw {
    std::vector<int64_t> indices;
    std::vector<int64_t> epochs;
  };
  Draw next(int64_t count);

  const DataPosition& position() const { return position_; }
  void set_position(const DataPosition& position);  // throws InputError when past the dataset's end

  static std::vector<int64_t> permutation(int64_t size, uint64_t seed, int64_t epoch);

  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

 private:
  int64_t size_;
  uint64_t seed_;
  DataPosition position_;
  std::vector<int64_t> order_;  // permutation of position_.epoch
};

// A well-mixed 64-bit value from a few integers (splitmix64 finaliser): per-sample decisions such as flips.
uint64_t mix_seed(uint64_t a, uint64_t b = 0, uint64_t c = 0);

}  // namespace repa::data
