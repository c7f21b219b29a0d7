// Training batches in a fixed, resumable order, built ahead of time on background threads. The order and the
// flips are decided on the caller's side from the seed alone (EpochShuffle, mix_seed), so how the worker
// threads are scheduled never changes what a step sees; workers only decode, crop and read caches.
#pragma once
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/data/aspect_buckets.h"
#include "core/data/epoch_shuffle.h"
#include "core/data/feature_cache.h"
#include "core/data/image.h"
#include "core/data/image_folder.h"

namespace repa::data {

struct Batch {
  torch::Tensor pixels;  // (B,3,H,W) in [-1,1]; undefined unless the loader was asked for pixels
  torch::Tensor labels;  // (B,) int64; -1 where the dataset has no classes
  TensorMap cached;      // each cache's tensors stacked (B,...), already in the sample's orientation
  std::vector<int64_t> indices;  // into folder.images
  std::vector<bool> flipped;
};

struct BatchLoaderOptions {
  int batch_size = 1;
  int resolution = 32;
  bool load_pixels = true;
  bool random_flip = false;
  uint64_t seed = 0;
  int threads = 2;   // background decoding threads (0: build batches on the caller's thread)
  int prefetch = 2;  // batches prepared ahead
  std::vector<const FeatureCache*> caches;  // each must hold every image of the folder
  // Data parallelism: every rank draws the same global batch of batch_size·world_size from the shared order
  // and keeps rows [rank·batch_size, (rank+1)·batch_size), so the shards are disjoint, together they are the
  // one-process batch, and the position (a checkpoint's) is the same on every rank.
  int rank = 0;
  int world_size = 1;
  // Aspect buckets: with one bucket key per image, every global batch comes from one bucket in
  // BucketBatchSampler's order (built for batch_size·world_size, so ranks split one bucket's batch).
  std::vector<std::string> buckets;
  // Each image's cache entry name (default: its content hash), and how its pixels are made from the decoded
  // file (default: the ADM centre crop at `resolution`).
  std::vector<std::string> cache_keys;
  std::function<Image(int64_t index, const Image& decoded)> crop;
};

class BatchLoader {
 public:
  BatchLoader(const ImageFolder& folder, BatchLoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  Batch next();

  // The position after the last batch next() returned (what a checkpoint stores), and its restore; a restore
  // drops any batch prepared ahead.
  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

  // Builds the batch of the given draw synchronously (also what the workers run).
  Batch build(const std::vector<int64_t>& indices, const std::vector<bool>& flipped) const;

 private:
  struct Job {
    int64_t sequence;
    std::vector<int64_t> indices;
    std::vector<bool> flipped;
    nlohmann::json position_after;
  };
  void start_workers();
  void stop_workers();
  void plan_jobs();  // keeps `prefetch` jobs queued or running
  void worker_loop();
  // The next global draw (indices, their epochs) and the position after it.
  void draw(std::vector<int64_t>& indices, std::vector<int64_t>& epochs, nlohmann::json& position_after);
  nlohmann::json bucket_position() const;

  const ImageFolder& folder_;
  BatchLoaderOptions options_;
  EpochShuffle shuffle_;
  std::unique_ptr<BucketBatchSampler> sampler_;  // only with options_.buckets
  std::vector<BucketBatch> bucket_epoch_batches_;
  int64_t bucket_epoch_ = 0, bucket_batch_ = 0;  // the next batch to plan
  nlohmann::json consumed_position_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Job> pending_;                // planned, not yet taken by a worker
  std::deque<Job> planned_;                // every job not yet consumed, in order (for positions)
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::string> failed_;  // sequence -> error
  int64_t next_plan_ = 0, next_consume_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace repa::data
