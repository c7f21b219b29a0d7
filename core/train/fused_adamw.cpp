#include "core/train/fused_adamw.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <sstream>

#include "core/nn/simd_exp.h"

namespace repa::train {
namespace {

struct Coefficients {
  float decay;      // 1 − lr·weight_decay
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float inv_sqrt_bc2;  // 1 / √(1 − β₂ᵗ)
  float eps;
  float step_size;  // lr / (1 − β₁ᵗ)
};

// p ← p·decay; m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − step_size · m / (√v/√bc₂ + ε).
void update_scalar(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end, const Coefficients& c) {
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float mi = m[i] * c.beta1 + gi * c.one_minus_beta1;
    const float vi = v[i] * c.beta2 + gi * gi * c.one_minus_beta2;
    m[i] = mi, v[i] = vi;
    p[i] = p[i] * c.decay - c.step_size * (mi / (std::sqrt(vi) * c.inv_sqrt_bc2 + c.eps));
  }
}

#ifdef REPA_X86_KERNELS
__attribute__((target("avx2,fma"))) void update_avx2(float* p, const float* g, float* m, float* v, int64_t begin,
                                                     int64_t end, const Coefficients& c) {
  const __m256 b1 = _mm256_set1_ps(c.beta1), ob1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 b2 = _mm256_set1_ps(c.beta2), ob2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 inv_bc2 = _mm256_set1_ps(c.inv_sqrt_bc2), eps = _mm256_set1_ps(c.eps);
  const __m256 decay = _mm256_set1_ps(c.decay), step = _mm256_set1_ps(c.step_size);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 mi = _mm256_fmadd_ps(gi, ob1, _mm256_mul_ps(_mm256_loadu_ps(m + i), b1));
    const __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(gi, gi), ob2, _mm256_mul_ps(_mm256_loadu_ps(v + i), b2));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_fmadd_ps(_mm256_sqrt_ps(vi), inv_bc2, eps);
    const __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
    _mm256_storeu_ps(p + i, _mm256_fnmadd_ps(step, _mm256_div_ps(mi, denom), pi));
  }
  update_scalar(p, g, m, v, i, end, c);
}
#endif

const bool kAvx2 = nn::simd::has_avx2_fma();

bool fusable(const torch::Tensor& p, const torch::Tensor& g) {
  return p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && g.scalar_type() == torch::kFloat32 &&
         p.is_contiguous() && g.is_contiguous() && !g.is_sparse() && p.sizes() == g.sizes();
}

}  // namespace

namespace {
template <class Key>
Key state_key_of(c10::TensorImpl* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << impl;
    return key.str();
  } else {
    return static_cast<Key>(impl);
  }
}
}  // namespace

OptimizerStateKey optimizer_state_key(const torch::Tensor& parameter) {
  return state_key_of<OptimizerStateKey>(parameter.unsafeGetTensorImpl());
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  for (const auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    if (o.amsgrad()) return torch::optim::AdamW::step(closure);
    for (const auto& p : group.params())
      if (p.grad().defined() && !fusable(p, p.grad())) return torch::optim::AdamW::step(closure);
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto key = optimizer_state_key(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      s.step(s.step() + 1);
      if (!s.exp_avg().is_contiguous()) s.exp_avg(s.exp_avg().contiguous());
      if (!s.exp_avg_sq().is_contiguous()) s.exp_avg_sq(s.exp_avg_sq().contiguous());
      const double bc1 = 1 - std::pow(beta1, static_cast<double>(s.step()));
      const double bc2 = 1 - std::pow(beta2, static_cast<double>(s.step()));
      const Coefficients c{static_cast<float>(1 - o.lr() * o.weight_decay()),
                           static_cast<float>(beta1),
                           static_cast<float>(1 - beta1),
                           static_cast<float>(beta2),
                           static_cast<float>(1 - beta2),
                           static_cast<float>(1 / std::sqrt(bc2)),
                           static_cast<float>(o.eps()),
                           static_cast<float>(o.lr() / bc1)};
      float* pd = p.data_ptr<float>();
      const float* gd = p.grad().data_ptr<float>();
      float* md = s.exp_avg().data_ptr<float>();
      float* vd = s.exp_avg_sq().data_ptr<float>();
      at::parallel_for(0, p.numel(), 32768, [&](int64_t begin, int64_t end) {
#ifdef REPA_X86_KERNELS
        if (kAvx2) return update_avx2(pd, gd, md, vd, begin, end, c);
#endif
        update_scalar(pd, gd, md, vd, begin, end, c);
      });
    }
  }
  return loss;
}

}  // namespace repa::train
