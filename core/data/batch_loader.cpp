#include "core/data/batch_loader.h"

#include <torch/torch.h>

#include "core/base/error.h"
#include "core/data/center_crop.h"
#include "core/data/image.h"
#include "core/data/image_tensor.h"

namespace repa::data {

BatchLoader::BatchLoader(const ImageFolder& folder, BatchLoaderOptions options)
    : folder_(folder), options_(std::move(options)),
      shuffle_(static_cast<int64_t>(folder.images.size()), options_.seed) {
  if (options_.batch_size <= 0) throw InputError("train_batch_size must be positive");
  if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size)
    throw InputError("data shard: rank " + std::to_string(options_.rank) + " is not in a world of " +
                     std::to_string(options_.world_size) + " processes");
  if (!options_.buckets.empty()) {
    if (options_.buckets.size() != folder.images.size())
      throw Error("aspect buckets: " + std::to_string(options_.buckets.size()) + " bucket keys for " +
                  std::to_string(folder.images.size()) + " images");
    sampler_ = std::make_unique<BucketBatchSampler>(
        options_.buckets, static_cast<int64_t>(options_.batch_size) * options_.world_size, options_.seed);
    bucket_epoch_batches_ = sampler_->epoch(0);
    consumed_position_ = bucket_position();
  } else {
    consumed_position_ = shuffle_.state();
  }
  if (!options_.cache_keys.empty() && options_.cache_keys.size() != folder.images.size())
    throw Error("batch loader: " + std::to_string(options_.cache_keys.size()) + " cache keys for " +
                std::to_string(folder.images.size()) + " images");
}

nlohmann::json BatchLoader::bucket_position() const {
  // "offset" counts the epoch's bucket batches already drawn (the checkpoint reader checks epoch and offset).
  return {{"epoch", bucket_epoch_}, {"offset", bucket_batch_}, {"bucketed", true}};
}

void BatchLoader::draw(std::vector<int64_t>& indices, std::vector<int64_t>& epochs, nlohmann::json& position_after) {
  if (!sampler_) {
    const auto d = shuffle_.next(static_cast<int64_t>(options_.batch_size) * options_.world_size);
    indices = d.indices;
    epochs = d.epochs;
    position_after = shuffle_.state();
    return;
  }
  const BucketBatch& batch = bucket_epoch_batches_.at(static_cast<std::size_t>(bucket_batch_));
  indices = batch.images;
  epochs.assign(indices.size(), bucket_epoch_);
  if (++bucket_batch_ == static_cast<int64_t>(bucket_epoch_batches_.size())) {
    bucket_batch_ = 0;
    bucket_epoch_batches_ = sampler_->epoch(++bucket_epoch_);
  }
  position_after = bucket_position();
}

BatchLoader::~BatchLoader() { stop_workers(); }

Batch BatchLoader::build(const std::vector<int64_t>& indices, const std::vector<bool>& flipped) const {
  Batch batch;
  batch.indices = indices;
  batch.flipped = flipped;
  std::vector<torch::Tensor> pixels;
  std::vector<int64_t> labels;
  std::map<std::string, std::vector<torch::Tensor>> cached;
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const ImageRecord& record = folder_.images.at(static_cast<std::size_t>(indices[k]));
    labels.push_back(record.label);
    if (options_.load_pixels) {
      Image crop = options_.crop ? options_.crop(indices[k], read_image(record.path))
                                 : adm_center_crop(read_image(record.path), options_.resolution);
      if (flipped[k]) crop = flip_horizontal(crop);
      pixels.push_back(image_to_tensor(crop));
    }
    for (const FeatureCache* cache : options_.caches) {
      const TensorMap entry = cache->load(
          options_.cache_keys.empty() ? record.content_hash : options_.cache_keys.at(static_cast<std::size_t>(indices[k])));
      for (const auto& [name, value] : entry) {
        const bool is_flip = name.size() > 5 && name.compare(name.size() - 5, 5, "_flip") == 0;
        if (is_flip != static_cast<bool>(flipped[k])) continue;
        cached[is_flip ? name.substr(0, name.size() - 5) : name].push_back(value);
      }
    }
  }
  if (!pixels.empty()) batch.pixels = torch::stack(pixels);
  batch.labels = torch::tensor(labels, torch::kInt64);
  for (auto& [name, values] : cached) {
    if (values.size() != indices.size())
      throw InputError("cache entry '" + name + "' is missing for some images of the batch (cache folder " +
                       options_.caches.front()->folder() + "); run 'repa-train cache' again");
    batch.cached[name] = torch::stack(values);
  }
  return batch;
}

void BatchLoader::plan_jobs() {
  // Called with mutex_ held.
  while (static_cast<int>(planned_.size()) < std::max(1, options_.prefetch)) {
    Job job;
    job.sequence = next_plan_++;
    std::vector<int64_t> indices, epochs;
    draw(indices, epochs, job.position_after);
    const auto first = static_cast<std::size_t>(options_.rank) * static_cast<std::size_t>(options_.batch_size);
    for (std::size_t k = first; k < first + static_cast<std::size_t>(options_.batch_size); ++k) {
      job.indices.push_back(indices[k]);
      job.flipped.push_back(options_.random_flip &&
                            (mix_seed(options_.seed ^ 0xf11bull, static_cast<uint64_t>(epochs[k]),
                                      static_cast<uint64_t>(indices[k])) & 1u));
    }
    planned_.push_back(job);
    pending_.push_back(std::move(job));
  }
}

void BatchLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    Job job = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    Batch batch;
    std::string error;
    try {
      batch = build(job.indices, job.flipped);
    } catch (const std::exception& e) {
      error = e.what();
    }
    lock.lock();
    if (error.empty())
      ready_[job.sequence] = std::move(batch);
    else
      failed_[job.sequence] = error;
    changed_.notify_all();
  }
}

void BatchLoader::start_workers() {
  for (int t = 0; t < options_.threads; ++t) workers_.emplace_back([this] { worker_loop(); });
}

void BatchLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  stopping_ = false;
}

Batch BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  plan_jobs();
  if (options_.threads <= 0) {
    Job job = std::move(pending_.front());
    pending_.pop_front();
    planned_.pop_front();
    ++next_consume_;
    consumed_position_ = job.position_after;
    lock.unlock();
    return build(job.indices, job.flipped);
  }
  if (workers_.empty()) {
    lock.unlock();
    start_workers();
    lock.lock();
  }
  changed_.notify_all();
  const int64_t sequence = next_consume_;
  changed_.wait(lock, [&] { return ready_.count(sequence) || failed_.count(sequence); });
  if (failed_.count(sequence)) throw InputError(failed_.at(sequence));
  Batch batch = std::move(ready_.at(sequence));
  ready_.erase(sequence);
  consumed_position_ = planned_.front().position_after;
  planned_.pop_front();
  ++next_consume_;
  plan_jobs();
  changed_.notify_all();
  return batch;
}

nlohmann::json BatchLoader::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return consumed_position_;
}

void BatchLoader::load_state(const nlohmann::json& state) {
  stop_workers();
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.clear();
  planned_.clear();
  ready_.clear();
  failed_.clear();
  if (sampler_) {
    // A bucketed position: the epoch to rebuild and the batches of it already trained.
    if (!state.is_object() || !state.value("bucketed", false) || !state.contains("offset"))
      throw InputError("the checkpoint's data position " + state.dump() +
                       " is not an aspect-bucket position (written by a square-crop run?): start a new run");
    bucket_epoch_ = state.at("epoch").get<int64_t>();
    bucket_batch_ = state.at("offset").get<int64_t>();
    bucket_epoch_batches_ = sampler_->epoch(bucket_epoch_);
    if (bucket_batch_ < 0 || bucket_batch_ >= static_cast<int64_t>(bucket_epoch_batches_.size()))
      throw InputError("the checkpoint's data position " + state.dump() + " is past the " +
                       std::to_string(bucket_epoch_batches_.size()) + " bucket batches of an epoch of this dataset");
    consumed_position_ = bucket_position();
  } else {
    if (state.is_object() && state.value("bucketed", false))
      throw InputError("the checkpoint's data position " + state.dump() +
                       " is an aspect-bucket position (written by a bucketed run), but this run crops squares: start "
                       "a new run");
    shuffle_.load_state(state);
    consumed_position_ = shuffle_.state();
  }
  next_plan_ = next_consume_ = 0;
}

}  // namespace repa::data
