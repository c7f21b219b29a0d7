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
  consumed_position_ = shuffle_.state();
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
      Image crop = adm_center_crop(read_image(record.path), options_.resolution);
      if (flipped[k]) crop = flip_horizontal(crop);
      pixels.push_back(image_to_tensor(crop));
    }
    for (const FeatureCache* cache : options_.caches) {
      const TensorMap entry = cache->load(record.content_hash);
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
    const auto draw = shuffle_.next(static_cast<int64_t>(options_.batch_size) * options_.world_size);
    const auto first = static_cast<std::size_t>(options_.rank) * static_cast<std::size_t>(options_.batch_size);
    for (std::size_t k = first; k < first + static_cast<std::size_t>(options_.batch_size); ++k) {
      job.indices.push_back(draw.indices[k]);
      job.flipped.push_back(options_.random_flip &&
                            (mix_seed(options_.seed ^ 0xf11bull, static_cast<uint64_t>(draw.epochs[k]),
                                      static_cast<uint64_t>(draw.indices[k])) & 1u));
    }
    job.position_after = shuffle_.state();
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
  shuffle_.load_state(state);
  consumed_position_ = shuffle_.state();
  next_plan_ = next_consume_ = 0;
}

}  // namespace repa::data
