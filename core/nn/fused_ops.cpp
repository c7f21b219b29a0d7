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

// The kernels work on [begin, end) of x; `bias` (nullable) is indexed from `begin` (a row's start).
inline void forward_scalar(const float* x, const float* bias, float* y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i] + (bias ? bias[i - begin] : 0.0f);
    y[i] = v / (1.0f + std::exp(-kTwoK * v * (1.0f + kCubic * v * v)));
  }
}

// d/dx x·σ(z) = σ + x·σ·(1 − σ)·dz/dx with dz/dx = 2·√(2/π)·(1 + 3·0.044715·x²). 1 − σ is taken as e·σ,
// e = exp(−z), which keeps its precision where σ is close to 1 (1 − σ and ATen's 1 − tanh² cancel there).
inline void backward_scalar(const float* g, const float* x, const float* bias, float* out, int64_t begin,
                            int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i] + (bias ? bias[i - begin] : 0.0f), v2 = v * v;
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

__attribute__((target("avx2,fma"))) inline __m256 load_biased(const float* x, const float* bias, int64_t i,
                                                             int64_t begin) {
  const __m256 v = _mm256_loadu_ps(x + i);
  return bias ? _mm256_add_ps(v, _mm256_loadu_ps(bias + (i - begin))) : v;
}

__attribute__((target("avx2,fma"))) void forward_avx2(const float* x, const float* bias, float* y, int64_t begin,
                                                      int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 v = load_biased(x, bias, i, begin);
    const __m256 e = exp_minus_z(v, _mm256_mul_ps(v, v));
    _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
  }
  forward_scalar(x, bias ? bias + (i - begin) : nullptr, y, i, end);
}

__attribute__((target("avx2,fma"))) void backward_avx2(const float* g, const float* x, const float* bias, float* out,
                                                       int64_t begin, int64_t end) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 v = load_biased(x, bias, i, begin), v2 = _mm256_mul_ps(v, v);
    const __m256 e = exp_minus_z(v, v2);
    const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
    const __m256 dz = _mm256_mul_ps(_mm256_set1_ps(kTwoK), _mm256_fmadd_ps(_mm256_set1_ps(3.0f * kCubic), v2, one));
    const __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_mul_ps(s, e)), dz, s);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(g + i), d));
  }
  backward_scalar(g, x, bias ? bias + (i - begin) : nullptr, out, i, end);
}
#endif

const bool kVectorised = simd::has_avx2_fma();

bool fused_path(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.is_contiguous() && x.layout() == torch::kStrided;
}

// Runs kernel(begin, end, bias) over x in parallel: flat chunks without a bias, whole rows of the last
// dimension with one (so that the bias lines up with each chunk's start).
template <class Kernel>
void for_each_span(const torch::Tensor& x, const torch::Tensor& bias, const Kernel& kernel) {
  if (!bias.defined()) {
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) { kernel(begin, end, nullptr); });
    return;
  }
  const int64_t width = x.size(-1), rows = x.numel() / width;
  const float* b = bias.data_ptr<float>();
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / width), [&](int64_t first, int64_t last) {
    for (int64_t row = first; row < last; ++row) kernel(row * width, (row + 1) * width, b);
  });
}

torch::Tensor forward_cpu(const torch::Tensor& x, const torch::Tensor& bias) {
  auto y = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
  for_each_span(x, bias, [&](int64_t begin, int64_t end, const float* b) {
#ifdef REPA_X86_KERNELS
    if (kVectorised) return forward_avx2(in, b, out, begin, end);
#endif
    forward_scalar(in, b, out, begin, end);
  });
  return y;
}

torch::Tensor backward_cpu(const torch::Tensor& grad, const torch::Tensor& x, const torch::Tensor& bias) {
  auto out = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const float* g = grad.data_ptr<float>();
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for_each_span(x, bias, [&](int64_t begin, int64_t end, const float* b) {
#ifdef REPA_X86_KERNELS
    if (kVectorised) return backward_avx2(g, in, b, o, begin, end);
#endif
    backward_scalar(g, in, b, o, begin, end);
  });
  return out;
}

torch::Tensor backward_x(const torch::Tensor& g, const torch::Tensor& x, const torch::Tensor& bias) {
  // Under create_graph the gradient must itself be differentiable: ATen's operator builds that graph.
  if (torch::GradMode::is_enabled() || !fused_path(g))
    return at::gelu_backward(g, bias.defined() ? x + bias : x, "tanh");
  return backward_cpu(g, x, bias);
}

class GeluTanh : public torch::autograd::Function<GeluTanh> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    ctx->save_for_backward({x});
    return forward_cpu(x, {});
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    return {backward_x(grads[0], ctx->get_saved_variables()[0], {})};
  }
};

// gelu_tanh(x + bias), bias (W,) over the last dimension; its gradient is the input gradient summed over rows.
class GeluTanhBias : public torch::autograd::Function<GeluTanhBias> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& bias) {
    ctx->save_for_backward({x, bias});
    return forward_cpu(x, bias);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto grad_x = backward_x(grads[0], saved[0], saved[1]);
    auto grad_bias = grad_x.reshape({-1, saved[0].size(-1)}).sum(0);
    return {grad_x, grad_bias};
  }
};

}  // namespace

bool fused_cpu_kernels_vectorised() { return kVectorised; }

torch::Tensor gelu_tanh(const torch::Tensor& x, const torch::Tensor& bias) {
  const bool with_bias = bias.defined();
  const bool fused = fused_path(x) && (!with_bias || (fused_path(bias) && bias.dim() == 1 && x.dim() >= 1 &&
                                                      bias.size(0) == x.size(-1) && x.numel() > 0));
  if (!fused) return torch::gelu(with_bias ? x + bias : x, "tanh");
  const bool grad = torch::GradMode::is_enabled() && (x.requires_grad() || (with_bias && bias.requires_grad()));
  if (grad) return with_bias ? GeluTanhBias::apply(x, bias) : GeluTanh::apply(x);
  torch::NoGradGuard no_grad;
  return forward_cpu(x, bias);
}

}  // namespace repa::nn
