#include "core/train/gradient_buckets.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/train/distributed.h"

namespace repa::train {

GradientBuckets::GradientBuckets(DataParallel& group, std::vector<torch::Tensor> parameters, int64_t bucket_bytes,
                                 int64_t first_bucket_bytes)
    : group_(group), parameters_(std::move(parameters)) {
  const std::size_t n = parameters_.size();
  bucket_of_.assign(n, 0);
  arrived_.assign(n, false);
  // Reverse order: the last layers' gradients arrive first, so their bucket can travel while the rest runs.
  int64_t bytes = 0;
  for (std::size_t k = n; k-- > 0;) {
    const auto& p = parameters_[k];
    if (!p.requires_grad()) throw Error("GradientBuckets: parameter " + std::to_string(k) + " does not require grad");
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const int64_t cap = buckets_.size() == 1 ? std::min(first_bucket_bytes, bucket_bytes) : bucket_bytes;
    const bool new_bucket = buckets_.empty() || bytes + size > cap ||
                            parameters_[buckets_.back().members.front()].scalar_type() != p.scalar_type();
    if (new_bucket) {
      buckets_.emplace_back();
      bytes = 0;
    }
    auto& bucket = buckets_.back();
    bucket.offsets.push_back(
        bucket.members.empty() ? 0 : bucket.offsets.back() + parameters_[bucket.members.back()].numel());
    bucket.members.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += size;
  }
  for (auto& bucket : buckets_) {
    const auto& last = parameters_[bucket.members.back()];
    bucket.flat = torch::zeros({bucket.offsets.back() + last.numel()}, last.options().requires_grad(false));
  }
  for (std::size_t k = 0; k < n; ++k)
    hooks_.push_back(parameters_[k].register_hook([this, k](const torch::Tensor& grad) { on_gradient(k, grad); }));
}

GradientBuckets::~GradientBuckets() {
  for (std::size_t k = 0; k < hooks_.size(); ++k) parameters_[k].remove_hook(hooks_[k]);
}

int64_t GradientBuckets::bytes_per_step() const {
  int64_t bytes = 0;
  for (const auto& b : buckets_) bytes += b.flat.numel() * static_cast<int64_t>(b.flat.element_size());
  return bytes;
}

void GradientBuckets::prepare_backward(bool last) {
  std::lock_guard<std::mutex> lock(mutex_);
  active_ = last;
  if (!last) return;
  next_start_ = 0;
  started_early_ = 0;
  std::fill(arrived_.begin(), arrived_.end(), false);
  for (auto& bucket : buckets_) {
    bucket.waiting = bucket.members.size();
    bucket.started = false;
    bucket.wait = nullptr;
  }
}

void GradientBuckets::on_gradient(std::size_t index, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_ || arrived_[index]) return;
  // The hook runs before the gradient is added to .grad: the bucket gets what .grad will hold.
  torch::NoGradGuard no_grad;
  auto& bucket = buckets_[bucket_of_[index]];
  std::size_t slot = 0;
  while (bucket.members[slot] != index) ++slot;
  auto target = bucket.flat.narrow(0, bucket.offsets[slot], grad.numel());
  const auto& accumulated = parameters_[index].grad();
  if (accumulated.defined())
    target.copy_((accumulated + grad).reshape({-1}));
  else
    target.copy_(grad.reshape({-1}));
  arrived_[index] = true;
  if (--bucket.waiting == 0) {
    start_ready_buckets();
  }
}

void GradientBuckets::start_ready_buckets() {
  while (next_start_ < buckets_.size() && buckets_[next_start_].waiting == 0) {
    auto& bucket = buckets_[next_start_++];
    bucket.wait = group_.all_reduce_sum_async(bucket.flat);
    bucket.started = true;
  }
}

void GradientBuckets::finish() {
  std::unique_lock<std::mutex> lock(mutex_);
  torch::NoGradGuard no_grad;
  // Parameters the backward did not reach contribute what they hold (their .grad, else zeros); every rank
  // runs the same graph, so they are the same parameters everywhere.
  started_early_ = static_cast<int64_t>(next_start_);  // started while the backward ran
  for (auto& bucket : buckets_) {
    for (std::size_t slot = 0; slot < bucket.members.size(); ++slot) {
      const std::size_t k = bucket.members[slot];
      if (arrived_[k]) continue;
      auto target = bucket.flat.narrow(0, bucket.offsets[slot], parameters_[k].numel());
      const auto& held = parameters_[k].grad();
      if (held.defined())
        target.copy_(held.reshape({-1}));
      else
        target.zero_();
      --bucket.waiting;
    }
  }
  active_ = false;
  start_ready_buckets();
  lock.unlock();
  const double scale = 1.0 / static_cast<double>(group_.world_size());
  for (auto& bucket : buckets_) {
    bucket.wait();
    bucket.flat.mul_(scale);
    for (std::size_t slot = 0; slot < bucket.members.size(); ++slot) {
      auto& p = parameters_[bucket.members[slot]];
      if (!arrived_[bucket.members[slot]] && !p.grad().defined()) continue;
      const auto averaged = bucket.flat.narrow(0, bucket.offsets[slot], p.numel()).view_as(p);
      if (p.grad().defined())
        p.mutable_grad().copy_(averaged);
      else
        p.mutable_grad() = averaged.clone();
    }
  }
}

}  // namespace repa::train
