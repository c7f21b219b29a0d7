#include "core/nn/cpu_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/base/torch_compat.h"
#include "core/nn/simd_exp.h"

namespace repa::nn {
namespace {

const bool kVectorised = simd::has_avx2_fma();

torch::Tensor generic_attention(const torch::Tensor& qkv) {
  const int64_t b = qkv.size(0), s = qkv.size(1), h = qkv.size(3), dh = qkv.size(4);
  const auto heads = qkv.permute({2, 0, 3, 1, 4}).unbind(0);
  return compat::scaled_dot_product_attention(heads[0], heads[1], heads[2]).transpose(1, 2).reshape({b, s, h * dh});
}

// A row-major matrix view of `rows` × `cols` floats whose rows are `stride` apart.
torch::Tensor view(float* data, int64_t rows, int64_t cols, int64_t stride) {
  return torch::from_blob(data, {rows, cols}, {stride, 1}, torch::TensorOptions().dtype(torch::kFloat32));
}

// softmax(scale · x) over each of `rows` rows of n contiguous floats, in place.
void softmax_rows_scalar(float* x, int64_t rows, int64_t n, float scale) {
  for (int64_t r = 0; r < rows; ++r, x += n) {
    float max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) max = std::max(max, x[j]);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += (x[j] = std::exp(scale * (x[j] - max)));
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; ++j) x[j] *= inv;
  }
}

// dS = scale · P ⊙ (dP − Σⱼ dPⱼ Pⱼ) over each row, in place over dP.
void softmax_backward_rows_scalar(float* dp, const float* p, int64_t rows, int64_t n, float scale) {
  for (int64_t r = 0; r < rows; ++r, dp += n, p += n) {
    float dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += dp[j] * p[j];
    for (int64_t j = 0; j < n; ++j) dp[j] = scale * p[j] * (dp[j] - dot);
  }
}

#ifdef REPA_X86_KERNELS
__attribute__((target("avx2,fma"))) inline float horizontal_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

__attribute__((target("avx2,fma"))) inline float horizontal_max(__m256 v) {
  const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
}

__attribute__((target("avx2,fma"))) void softmax_rows_avx2(float* x, int64_t rows, int64_t n, float scale) {
  const int64_t tail = n - n % 8;
  for (int64_t r = 0; r < rows; ++r, x += n) {
    __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t j = 0; j < tail; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + j));
    float max = horizontal_max(vmax);
    for (int64_t j = tail; j < n; ++j) max = std::max(max, x[j]);
    const __m256 vs = _mm256_set1_ps(scale), shift = _mm256_set1_ps(max);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < tail; j += 8) {
      const __m256 e = simd::exp8(_mm256_mul_ps(vs, _mm256_sub_ps(_mm256_loadu_ps(x + j), shift)));
      _mm256_storeu_ps(x + j, e);
      acc = _mm256_add_ps(acc, e);
    }
    float sum = horizontal_sum(acc);
    for (int64_t j = tail; j < n; ++j) sum += (x[j] = std::exp(scale * (x[j] - max)));
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int64_t j = 0; j < tail; j += 8) _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), inv));
    for (int64_t j = tail; j < n; ++j) x[j] *= 1.0f / sum;
  }
}

__attribute__((target("avx2,fma"))) void softmax_backward_rows_avx2(float* dp, const float* p, int64_t rows,
                                                                    int64_t n, float scale) {
  const int64_t tail = n - n % 8;
  for (int64_t r = 0; r < rows; ++r, dp += n, p += n) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < tail; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(dp + j), _mm256_loadu_ps(p + j), acc);
    float dot = horizontal_sum(acc);
    for (int64_t j = tail; j < n; ++j) dot += dp[j] * p[j];
    const __m256 vdot = _mm256_set1_ps(dot), vs = _mm256_set1_ps(scale);
    for (int64_t j = 0; j < tail; j += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(dp + j), vdot);
      _mm256_storeu_ps(dp + j, _mm256_mul_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(p + j)), d));
    }
    for (int64_t j = tail; j < n; ++j) dp[j] = scale * p[j] * (dp[j] - dot);
  }
}
#endif

void softmax_rows(float* x, int64_t rows, int64_t n, float scale) {
#ifdef REPA_X86_KERNELS
  if (kVectorised) return softmax_rows_avx2(x, rows, n, scale);
#endif
  softmax_rows_scalar(x, rows, n, scale);
}

void softmax_backward_rows(float* dp, const float* p, int64_t rows, int64_t n, float scale) {
#ifdef REPA_X86_KERNELS
  if (kVectorised) return softmax_backward_rows_avx2(dp, p, rows, n, scale);
#endif
  softmax_backward_rows_scalar(dp, p, rows, n, scale);
}

struct Shape {
  int64_t b, s, h, dh, d;
  explicit Shape(const torch::Tensor& qkv)
      : b(qkv.size(0)), s(qkv.size(1)), h(qkv.size(3)), dh(qkv.size(4)), d(qkv.size(3) * qkv.size(4)) {}
  // The first float of head `head` of q (part 0), k (1) or v (2) of image `image`; rows are 3·d apart.
  int64_t offset(int64_t image, int64_t part, int64_t head) const { return image * s * 3 * d + part * d + head * dh; }
};

// The forward for every (image, head) pair; `probs` (B, H, S, S) receives the softmax for the backward when
// defined, else each task works in a scratch block of its own.
torch::Tensor attention_forward(const torch::Tensor& qkv, torch::Tensor probs) {
  const Shape sh(qkv);
  const float scale = 1.0f / std::sqrt(static_cast<float>(sh.dh));
  auto out = torch::empty({sh.b, sh.s, sh.d}, qkv.options());
  float* in = qkv.data_ptr<float>();
  float* o = out.data_ptr<float>();
  float* pr = probs.defined() ? probs.data_ptr<float>() : nullptr;
  at::parallel_for(0, sh.b * sh.h, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(pr ? 0 : static_cast<size_t>(sh.s * sh.s));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t image = task / sh.h, head = task % sh.h;
      const auto q = view(in + sh.offset(image, 0, head), sh.s, sh.dh, 3 * sh.d);
      const auto k = view(in + sh.offset(image, 1, head), sh.s, sh.dh, 3 * sh.d);
      const auto v = view(in + sh.offset(image, 2, head), sh.s, sh.dh, 3 * sh.d);
      float* p_data = pr ? pr + task * sh.s * sh.s : scratch.data();
      auto p = view(p_data, sh.s, sh.s, sh.s);
      at::mm_out(p, q, k.t());  // raw scores; the 1/√Dh goes into the softmax
      softmax_rows(p_data, sh.s, sh.s, scale);
      auto o_head = view(o + image * sh.s * sh.d + head * sh.dh, sh.s, sh.dh, sh.d);
      at::mm_out(o_head, p, v);
    }
  });
  return out;
}

class PackedAttention : public torch::autograd::Function<PackedAttention> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qkv) {
    auto probs = torch::empty({qkv.size(0), qkv.size(3), qkv.size(1), qkv.size(1)}, qkv.options());
    auto out = attention_forward(qkv, probs);
    ctx->save_for_backward({qkv, probs});
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& qkv = saved[0];
    const auto& probs = saved[1];
    if (torch::GradMode::is_enabled()) {
      // create_graph: the gradient must itself be differentiable (in qkv and in the incoming gradient), so it is
      // taken through the generic operators, rebuilt on the saved qkv.
      return {torch::autograd::grad({generic_attention(qkv)}, {qkv}, {grads[0]}, true, true)[0]};
    }
    const Shape sh(qkv);
    const float scale = 1.0f / std::sqrt(static_cast<float>(sh.dh));
    const auto grad_out = grads[0].contiguous();
    auto grad_qkv = torch::empty_like(qkv);
    float* in = qkv.data_ptr<float>();
    float* g = grad_qkv.data_ptr<float>();
    const float* go = grad_out.data_ptr<float>();
    const float* pr = probs.data_ptr<float>();
    at::parallel_for(0, sh.b * sh.h, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> dp_buffer(static_cast<size_t>(sh.s * sh.s));
      for (int64_t task = begin; task < end; ++task) {
        const int64_t image = task / sh.h, head = task % sh.h;
        const auto q = view(in + sh.offset(image, 0, head), sh.s, sh.dh, 3 * sh.d);
        const auto k = view(in + sh.offset(image, 1, head), sh.s, sh.dh, 3 * sh.d);
        const auto v = view(in + sh.offset(image, 2, head), sh.s, sh.dh, 3 * sh.d);
        auto dq = view(g + sh.offset(image, 0, head), sh.s, sh.dh, 3 * sh.d);
        auto dk = view(g + sh.offset(image, 1, head), sh.s, sh.dh, 3 * sh.d);
        auto dv = view(g + sh.offset(image, 2, head), sh.s, sh.dh, 3 * sh.d);
        const float* p_data = pr + task * sh.s * sh.s;
        const auto p = view(const_cast<float*>(p_data), sh.s, sh.s, sh.s);
        const auto d_out = view(const_cast<float*>(go) + image * sh.s * sh.d + head * sh.dh, sh.s, sh.dh, sh.d);
        auto dp = view(dp_buffer.data(), sh.s, sh.s, sh.s);
        at::mm_out(dv, p.t(), d_out);  // dV = Pᵀ dO
        at::mm_out(dp, d_out, v.t());  // dP = dO Vᵀ
        softmax_backward_rows(dp_buffer.data(), p_data, sh.s, sh.s, scale);
        at::mm_out(dq, dp, k);      // dQ = dS K   (dS carries the scale)
        at::mm_out(dk, dp.t(), q);  // dK = dSᵀ Q
      }
    });
    return {grad_qkv};
  }
};

}  // namespace

bool packed_attention_on_cpu_path(const torch::Tensor& qkv) {
  return qkv.device().is_cpu() && qkv.scalar_type() == torch::kFloat32 && qkv.dim() == 5 && qkv.size(2) == 3 &&
         qkv.is_contiguous() && qkv.size(1) > 0 && qkv.size(0) * qkv.size(3) >= at::get_num_threads();
}

torch::Tensor packed_self_attention(const torch::Tensor& qkv) {
  TORCH_CHECK(qkv.dim() == 5 && qkv.size(2) == 3, "packed_self_attention: expected (B, S, 3, H, Dh), got ",
              qkv.sizes());
  if (!packed_attention_on_cpu_path(qkv)) return generic_attention(qkv);
  if (qkv.requires_grad() && torch::GradMode::is_enabled()) return PackedAttention::apply(qkv);
  torch::NoGradGuard no_grad;
  return attention_forward(qkv, torch::Tensor());
}

}  // namespace repa::nn
