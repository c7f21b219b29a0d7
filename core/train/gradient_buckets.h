// Gradients averaged across ranks while the backward still runs: the parameters are grouped into buckets
// (in reverse order, the order in which a backward produces their gradients), a hook on each parameter
// copies its gradient into its bucket, and a bucket whose gradients are all in starts its all-reduce at
// once. Buckets start strictly in order, so every rank issues the same collectives in the same sequence.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace repa::train {

class DataParallel;

class GradientBuckets {
 public:
  // bucket_bytes: the size at which a bucket closes; the first bucket (the last layers, whose gradients
  // arrive first) closes at first_bucket_bytes so its reduction starts early. DDP's defaults: 25 MiB, 1 MiB.
  GradientBuckets(DataParallel& group, std::vector<torch::Tensor> parameters, int64_t bucket_bytes = 25ll << 20,
                  int64_t first_bucket_bytes = 1ll << 20);
  ~GradientBuckets();
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // Before each backward of a step: `last` on the final accumulation micro-batch, whose backward carries
  // the accumulated gradients into the buckets; earlier micro-batches accumulate locally, as DDP's no_sync.
  void prepare_backward(bool last);
  // After the final backward: starts what is left, waits, and leaves every parameter's gradient the mean over
  // ranks. A parameter no rank produced a gradient for keeps none.
  void finish();

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t bytes_per_step() const;  // what one step all-reduces
  int64_t buckets_started_during_backward() const { return started_early_; }

 private:
  struct Bucket {
    std::vector<std::size_t> members;  // indices into parameters_
    std::vector<int64_t> offsets;
    torch::Tensor flat;
    std::size_t waiting = 0;  // members whose gradient has not arrived this step
    bool started = false;
    std::function<void()> wait;
  };
  void on_gradient(std::size_t index, const torch::Tensor& grad);
  void start_ready_buckets();  // with mutex_ held

  DataParallel& group_;
  std::vector<torch::Tensor> parameters_;
  std::vector<unsigned> hooks_;
  std::vector<std::size_t> bucket_of_;
  std::vector<bool> arrived_;
  std::vector<Bucket> buckets_;
  std::size_t next_start_ = 0;
  bool active_ = false;
  int64_t started_early_ = 0;
  std::mutex mutex_;
};

}  // namespace repa::train
