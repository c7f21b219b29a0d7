// Data-parallel shards: each rank's batch is its slice of the one-process global batch (indices, flips and
// pixels), the shards of a step are disjoint, every rank stores the same position, and a resume on each rank
// continues its own shard.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <set>

#include "core/base/error.h"
#include "core/data/batch_loader.h"
#include "core/data/demo_dataset.h"
#include "core/data/image_folder.h"
#include "tests/test_support.h"

using namespace repa::data;

namespace {
BatchLoaderOptions options_for(int batch, int rank, int world) {
  BatchLoaderOptions options;
  options.batch_size = batch;
  options.resolution = 8;
  options.random_flip = true;
  options.seed = 5;
  options.threads = rank == 1 ? 2 : 0;  // the shard never depends on the worker threads
  options.rank = rank;
  options.world_size = world;
  return options;
}
}  // namespace

TEST_CASE("two shards of batch 5 are the halves of one process's batch of 10, across epochs and a resume") {
  repa::test::ScratchDir dir;
  generate_demo_dataset(dir.file("demo"), {2, 16, 3});  // 2 images per class: epochs of a few batches
  auto folder = scan_image_folder(dir.file("demo"), true);
  prepare_image_folder(folder, 2);
  const auto size = static_cast<int64_t>(folder.images.size());
  REQUIRE(size % 10 != 0);  // so that global batches straddle epochs

  BatchLoader whole(folder, options_for(10, 0, 1));
  BatchLoader rank0(folder, options_for(5, 0, 2));
  BatchLoader rank1(folder, options_for(5, 1, 2));
  nlohmann::json position_at_3;
  for (int step = 0; step < 6; ++step) {
    const Batch all = whole.next(), a = rank0.next(), b = rank1.next();
    std::vector<int64_t> joined = a.indices;
    joined.insert(joined.end(), b.indices.begin(), b.indices.end());
    CHECK(joined == all.indices);
    std::vector<bool> flips = a.flipped;
    flips.insert(flips.end(), b.flipped.begin(), b.flipped.end());
    CHECK(flips == all.flipped);
    CHECK(torch::equal(torch::cat({a.pixels, b.pixels}), all.pixels));
    CHECK(torch::equal(torch::cat({a.labels, b.labels}), all.labels));
    // Disjoint within a step unless the step straddles an epoch (then an image may recur, as in one process).
    if (all.indices.size() == std::set<int64_t>(all.indices.begin(), all.indices.end()).size()) {
      std::set<int64_t> overlap;
      for (auto i : a.indices)
        if (std::count(b.indices.begin(), b.indices.end(), i)) overlap.insert(i);
      CHECK(overlap.empty());
    }
    CHECK(rank0.state() == whole.state());
    CHECK(rank1.state() == whole.state());
    if (step == 2) position_at_3 = rank1.state();
  }
  CHECK(whole.state().at("epoch").get<int64_t>() >= 1);

  // Each rank resumes from the shared position and draws its own shard of the same global batches.
  BatchLoader again0(folder, options_for(5, 0, 2)), again1(folder, options_for(5, 1, 2)),
      again_whole(folder, options_for(10, 0, 1));
  again0.load_state(position_at_3);
  again1.load_state(position_at_3);
  again_whole.load_state(position_at_3);
  for (int step = 3; step < 6; ++step) {
    const Batch all = again_whole.next(), a = again0.next(), b = again1.next();
    std::vector<int64_t> joined = a.indices;
    joined.insert(joined.end(), b.indices.begin(), b.indices.end());
    CHECK(joined == all.indices);
  }
}

TEST_CASE("a rank outside the world is refused by name") {
  repa::test::ScratchDir dir;
  generate_demo_dataset(dir.file("demo"), {1, 16, 3});
  auto folder = scan_image_folder(dir.file("demo"), true);
  CHECK(repa::test::contains(repa::test::error_of([&] { BatchLoader bad(folder, options_for(2, 2, 2)); }),
                             "data shard: rank 2 is not in a world of 2 processes"));
}
