#include "core/data/epoch_shuffle.h"

#include <string>
#include <utility>

#include "core/base/error.h"

namespace repa::data {

namespace {
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t state = a;
  splitmix64(state);
  state ^= b * 0xd1b54a32d192ed03ull;
  splitmix64(state);
  state ^= c * 0x8cb92ba72f3d8dd7ull;
  return splitmix64(state);
}

std::vector<int64_t> EpochShuffle::permutation(int64_t size, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<std::size_t>(size));
  for (int64_t i = 0; i < size; ++i) order[static_cast<std::size_t>(i)] = i;
  uint64_t state = mix_seed(seed, static_cast<uint64_t>(epoch), 0x5eed);
  for (int64_t i = size - 1; i > 0; --i) {
    // Rejection-free modulo is fine here: the bias for datasets below 2^32 images is below 2^-32.
    const auto j = static_cast<int64_t>(splitmix64(state) % static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

EpochShuffle::EpochShuffle(int64_t dataset_size, uint64_t seed) : size_(dataset_size), seed_(seed) {
  if (size_ <= 0) throw InputError("cannot shuffle an empty dataset");
  order_ = permutation(size_, seed_, 0);
}

EpochShuffle::Draw EpochShuffle::next(int64_t count) {
  Draw draw;
  for (int64_t k = 0; k < count; ++k) {
    if (position_.offset >= size_) {
      position_.epoch += 1;
      position_.offset = 0;
      order_ = permutation(size_, seed_, position_.epoch);
    }
    draw.indices.push_back(order_[static_cast<std::size_t>(position_.offset++)]);
    draw.epochs.push_back(position_.epoch);
  }
  return draw;
}

void EpochShuffle::set_position(const DataPosition& position) {
  if (position.epoch < 0 || position.offset < 0 || position.offset > size_)
    throw InputError("data position (epoch " + std::to_string(position.epoch) + ", offset " +
                     std::to_string(position.offset) + ") does not fit a dataset of " + std::to_string(size_) +
                     " images");
  if (position.epoch != position_.epoch || order_.empty()) order_ = permutation(size_, seed_, position.epoch);
  position_ = position;
}

nlohmann::json EpochShuffle::state() const {
  return {{"epoch", position_.epoch}, {"offset", position_.offset}, {"dataset_size", size_}, {"seed", seed_}};
}

void EpochShuffle::load_state(const nlohmann::json& state) {
  const auto size = state.value("dataset_size", size_);
  if (size != size_)
    throw InputError("the checkpoint's data position is for a dataset of " + std::to_string(size) +
                     " images, but the dataset now has " + std::to_string(size_) +
                     " (the dataset changed since the checkpoint)");
  set_position({state.at("epoch").get<int64_t>(), state.at("offset").get<int64_t>()});
}

}  // namespace repa::data
