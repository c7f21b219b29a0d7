#include "core/nn/fused_ops.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>

#include "core/nn/simd_exp.h"

namespace repa::nn {
namespace {

// gelu_tanh(x) = x·σ(z) with z = 2·√(2/π)·(x + 0.044715·x³): 0.5·(1 + tanh(u)) is σ(2u).
constexpr float kTwoK = 1.5957691216057308f;  // 2·√(2/π)
constexpr float kCubic = 0.044715f;
constexpr int64_t kGrain = 16384;

inline void forward_scalar(const float* x, float* y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i];
    y[i] = v / (1.0f + std::exp(-kTwoK * v * (1.0f + kCubic * v * v)));
  }
}

// d/dx x·σ(z) = σ + x·σ·(1 − σ)·dz/dx with dz/dx = 2·√(2/π)·(1 + 3·0.044715·x²). 1 − σ is taken as e·σ,
// e = exp(−z), which keeps its precision where σ is close to 1 (1 − σ and ATen's 1 − tanh² cancel there).
inline void backward_scalar(const float* g, const float* x, float* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i], v2 = v * v;
    const float e = std::exp(-kTwoK * v * (1.0f + kCubic * v2));
    const float s = 1.0f / (1.0f + e);
    out[i] = g[i] * (s + v * s * s * e * kTwoK * (1.0f + 3.0f * kCubic * v2));
  }
}

#ifdef REPA_X86_KERNELS
// e = exp(−z) with z = 2k·v·(1 + c·v²); σ(z) = 1 / (1 + e).
__attribute__((target("avx2,fma"))) inline __m256 exp_minus_z(__m256 v, __m256 v2) {
  const __m256 z = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(kTwoK), v),
                                 _mm256_fmadd_ps(_mm256_set1_ps(kCubic), v2, _mm256_set1_ps(1.0f)));
  return simd::exp8(_mm256_sub_ps(_mm256_setzero_ps(), z));
}

__attribute__((target("avx2,fma"))) void forward_avx2(const float* x, float* y, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 e = exp_minus_z(v, _mm256_mul_ps(v, v));
    _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
  }
  forward_scalar(x, y, i, end);
}

__attribute__((target("avx2,fma"))) void backward_avx2(const float* g, const float* x, float* out, int64_t begin,
                                                       int64_t end) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i), v2 = _mm256_mul_ps(v, v);
    const __m256 e = exp_minus_z(v, v2);
    const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
    const __m256 dz = _mm256_mul_ps(_mm256_set1_ps(kTwoK), _mm256_fmadd_ps(_mm256_set1_ps(3.0f * kCubic), v2, one));
    const __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_mul_ps(s, e)), dz, s);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(g + i), d));
  }
  backward_scalar(g, x, out, i, end);
}
#endif

const bool kVectorised = simd::has_avx2_fma();

bool fused_path(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.is_contiguous() && x.layout() == torch::kStrided;
}

torch::Tensor forward_cpu(const torch::Tensor& x) {
  auto y = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
#ifdef REPA_X86_KERNELS
    if (kVectorised) return forward_avx2(in, out, begin, end);
#endif
    forward_scalar(in, out, begin, end);
  });
  return y;
}

torch::Tensor backward_cpu(const torch::Tensor& grad, const torch::Tensor& x) {
  auto out = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const float* g = grad.data_ptr<float>();
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
#ifdef REPA_X86_KERNELS
    if (kVectorised) return backward_avx2(g, in, o, begin, end);
#endif
    backward_scalar(g, in, o, begin, end);
  });
  return out;
}

class GeluTanh : public torch::autograd::Function<GeluTanh> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    ctx->save_for_backward({x});
    return forward_cpu(x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto x = ctx->get_saved_variables()[0];
    auto g = grads[0];
    // Under create_graph the gradient must itself be differentiable: ATen's operator builds that graph.
    if (torch::GradMode::is_enabled() || !fused_path(g)) return {at::gelu_backward(g, x, "tanh")};
    return {backward_cpu(g, x)};
  }
};

}  // namespace

bool fused_cpu_kernels_vectorised() { return kVectorised; }

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  if (!fused_path(x)) return torch::gelu(x, "tanh");
  if (x.requires_grad() && torch::GradMode::is_enabled()) return GeluTanh::apply(x);
  torch::NoGradGuard no_grad;
  return forward_cpu(x);
}

}  // namespace repa::nn
