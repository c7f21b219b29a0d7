// The seeded order: a permutation per epoch, the same after a resume, different per seed and epoch.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "core/base/error.h"
#include "core/data/epoch_shuffle.h"

using repa::data::EpochShuffle;

TEST_CASE("each epoch visits every index once, in a seed- and epoch-dependent order") {
  EpochShuffle shuffle(10, 7);
  const auto first = shuffle.next(10);
  const auto second = shuffle.next(10);
  CHECK(std::set<int64_t>(first.indices.begin(), first.indices.end()).size() == 10);
  CHECK(std::set<int64_t>(second.indices.begin(), second.indices.end()).size() == 10);
  CHECK(first.indices != second.indices);
  CHECK(first.epochs.front() == 0);
  CHECK(second.epochs.back() == 1);
  CHECK(EpochShuffle::permutation(10, 7, 0) == first.indices);
  CHECK(EpochShuffle::permutation(10, 8, 0) != first.indices);
}

TEST_CASE("a batch straddling an epoch boundary, then a resume from the saved position, repeats the stream") {
  EpochShuffle reference(7, 3);
  std::vector<int64_t> stream;
  for (int k = 0; k < 6; ++k) {
    const auto d = reference.next(3);
    stream.insert(stream.end(), d.indices.begin(), d.indices.end());
  }
  EpochShuffle interrupted(7, 3);
  interrupted.next(3);
  interrupted.next(3);
  interrupted.next(3);  // 9 drawn: epoch 1, offset 2
  const auto saved = interrupted.state();
  CHECK(saved["epoch"] == 1);
  CHECK(saved["offset"] == 2);
  EpochShuffle resumed(7, 3);
  resumed.load_state(saved);
  std::vector<int64_t> rest;
  for (int k = 0; k < 3; ++k) {
    const auto d = resumed.next(3);
    rest.insert(rest.end(), d.indices.begin(), d.indices.end());
  }
  CHECK(std::equal(rest.begin(), rest.end(), stream.begin() + 9));
}

TEST_CASE("a position saved for another dataset size is refused with both sizes named") {
  EpochShuffle shuffle(5, 1);
  EpochShuffle other(6, 1);
  CHECK_THROWS_WITH_AS(other.load_state(shuffle.state()), doctest::Contains("5 images"), repa::InputError);
}
