// The one place that knows what moved between LibTorch 1.13 and 2.x.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#include <ATen/autocast_mode.h>

#include <cmath>

#define REPA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace repa::compat {

inline constexpr bool kHasSdpa = REPA_TORCH_AT_LEAST(2, 0);

// softmax(q kᵀ / sqrt(d)) v over (B, H, S, Dh); the fused kernels on LibTorch >= 2, an exact fallback below.
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v) {
#if REPA_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v);
#else
  // The scale goes on q (S·Dh values a head) rather than on the scores (S·S); with contiguous heads matmul folds
  // batch and heads into one bmm on views (kᵀ included) instead of copying its operands on every call.
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const auto scores = torch::matmul(q.contiguous() * scale, k.contiguous().transpose(-2, -1));
  return torch::matmul(torch::softmax(scores, -1), v.contiguous());
#endif
}

namespace detail {
#if REPA_TORCH_AT_LEAST(2, 4)
inline bool cuda_autocast_enabled() { return at::autocast::is_autocast_enabled(at::kCUDA); }
inline void set_cuda_autocast_enabled(bool on) { at::autocast::set_autocast_enabled(at::kCUDA, on); }
inline at::ScalarType cuda_autocast_dtype() { return at::autocast::get_autocast_dtype(at::kCUDA); }
inline void set_cuda_autocast_dtype(at::ScalarType t) { at::autocast::set_autocast_dtype(at::kCUDA, t); }
#else
inline bool cuda_autocast_enabled() { return at::autocast::is_enabled(); }
inline void set_cuda_autocast_enabled(bool on) { at::autocast::set_enabled(on); }
inline at::ScalarType cuda_autocast_dtype() { return at::autocast::get_autocast_gpu_dtype(); }
inline void set_cuda_autocast_dtype(at::ScalarType t) { at::autocast::set_autocast_gpu_dtype(t); }
#endif
}  // namespace detail

// A scope in which CUDA matmuls run in bf16 (or fp16); a no-op on CPU or when disabled.
class AutocastScope {
 public:
  explicit AutocastScope(bool enabled, at::ScalarType dtype = at::kBFloat16) : enabled_(enabled) {
    if (!enabled_) return;
    previous_enabled_ = detail::cuda_autocast_enabled();
    previous_dtype_ = detail::cuda_autocast_dtype();
    detail::set_cuda_autocast_dtype(dtype);
    detail::set_cuda_autocast_enabled(true);
  }
  ~AutocastScope() {
    if (!enabled_) return;
    detail::set_cuda_autocast_enabled(previous_enabled_);
    detail::set_cuda_autocast_dtype(previous_dtype_);
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

// Runs its body in fp32 even inside an autocast region (projectors, losses).
class AutocastDisabled {
 public:
  AutocastDisabled() : previous_(detail::cuda_autocast_enabled()) { detail::set_cuda_autocast_enabled(false); }
  ~AutocastDisabled() { detail::set_cuda_autocast_enabled(previous_); }
  AutocastDisabled(const AutocastDisabled&) = delete;
  AutocastDisabled& operator=(const AutocastDisabled&) = delete;

 private:
  bool previous_;
};

}  // namespace repa::compat
