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

// One of q, k, v (or their gradients) for every image: (S, H·Dh) row-major blocks `image_stride` floats apart,
// rows `row_stride` apart; head h is the Dh columns from h·Dh.
struct Operand {
  float* data;
  int64_t image_stride, row_stride;
  torch::Tensor head(int64_t image, int64_t h, int64_t rows, int64_t dh) const {
    return view(data + image * image_stride + h * dh, rows, dh, row_stride);
  }
};

struct Problem {
  int64_t b, h, sq, skv, dh;
  Operand q, k, v;
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(dh)); }
};

// softmax(q kᵀ/√Dh) v for every (image, head) pair into out, (B, Sq, H·Dh); `probs` (B, H, Sq, Skv) receives
// the softmax for the backward when given, else each task works in a scratch block of its own.
void attention_forward(const Problem& pb, float* out, float* probs) {
  const int64_t d = pb.h * pb.dh;
  at::parallel_for(0, pb.b * pb.h, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(probs ? 0 : static_cast<size_t>(pb.sq * pb.skv));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t image = task / pb.h, head = task % pb.h;
      float* p_data = probs ? probs + task * pb.sq * pb.skv : scratch.data();
      auto p = view(p_data, pb.sq, pb.skv, pb.skv);
      at::mm_out(p, pb.q.head(image, head, pb.sq, pb.dh), pb.k.head(image, head, pb.skv, pb.dh).t());
      softmax_rows(p_data, pb.sq, pb.skv, pb.scale());  // the 1/√Dh is applied here
      auto o = view(out + image * pb.sq * d + head * pb.dh, pb.sq, pb.dh, d);
      at::mm_out(o, p, pb.v.head(image, head, pb.skv, pb.dh));
    }
  });
}

// The gradients of q, k, v from the saved softmax and the output's gradient (B, Sq, H·Dh), into dq, dk, dv.
void attention_backward(const Problem& pb, const float* probs, const float* grad_out, const Operand& dq,
                        const Operand& dk, const Operand& dv) {
  const int64_t d = pb.h * pb.dh;
  at::parallel_for(0, pb.b * pb.h, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> dp_data(static_cast<size_t>(pb.sq * pb.skv));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t image = task / pb.h, head = task % pb.h;
      const float* p_data = probs + task * pb.sq * pb.skv;
      const auto p = view(const_cast<float*>(p_data), pb.sq, pb.skv, pb.skv);
      const auto d_out = view(const_cast<float*>(grad_out) + image * pb.sq * d + head * pb.dh, pb.sq, pb.dh, d);
      auto dp = view(dp_data.data(), pb.sq, pb.skv, pb.skv);
      auto dv_head = dv.head(image, head, pb.skv, pb.dh);
      at::mm_out(dv_head, p.t(), d_out);                                 // dV = Pᵀ dO
      at::mm_out(dp, d_out, pb.v.head(image, head, pb.skv, pb.dh).t());  // dP = dO Vᵀ
      softmax_backward_rows(dp_data.data(), p_data, pb.sq, pb.skv, pb.scale());
      auto dq_head = dq.head(image, head, pb.sq, pb.dh);
      auto dk_head = dk.head(image, head, pb.skv, pb.dh);
      at::mm_out(dq_head, dp, pb.k.head(image, head, pb.skv, pb.dh));      // dQ = dS K (dS carries the scale)
      at::mm_out(dk_head, dp.t(), pb.q.head(image, head, pb.sq, pb.dh));   // dK = dSᵀ Q
    }
  });
}

// q, k, v inside one packed (B, S, 3, H, Dh) tensor (or its gradient).
Problem packed_problem(const torch::Tensor& qkv) {
  const int64_t b = qkv.size(0), s = qkv.size(1), h = qkv.size(3), dh = qkv.size(4), d = h * dh;
  float* base = qkv.data_ptr<float>();
  return {b, h, s, s, dh, {base, s * 3 * d, 3 * d}, {base + d, s * 3 * d, 3 * d}, {base + 2 * d, s * 3 * d, 3 * d}};
}

Operand rows_of(const torch::Tensor& t) { return {t.data_ptr<float>(), t.size(1) * t.size(2), t.size(2)}; }

bool grad_of_grad_needed() { return torch::GradMode::is_enabled(); }

class PackedAttention : public torch::autograd::Function<PackedAttention> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qkv) {
    const auto pb = packed_problem(qkv);
    auto probs = torch::empty({pb.b, pb.h, pb.sq, pb.skv}, qkv.options());
    auto out = torch::empty({pb.b, pb.sq, pb.h * pb.dh}, qkv.options());
    attention_forward(pb, out.data_ptr<float>(), probs.data_ptr<float>());
    ctx->save_for_backward({qkv, probs});
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& qkv = saved[0];
    if (grad_of_grad_needed()) {
      // create_graph: the gradient must itself be differentiable (in qkv and in the incoming gradient), so it is
      // taken through the generic operators, rebuilt on the saved qkv.
      return {torch::autograd::grad({generic_attention(qkv)}, {qkv}, {grads[0]}, true, true)[0]};
    }
    const auto grad_out = grads[0].contiguous();
    auto grad_qkv = torch::empty_like(qkv);
    const auto g = packed_problem(grad_qkv);
    attention_backward(packed_problem(qkv), saved[1].data_ptr<float>(), grad_out.data_ptr<float>(), g.q, g.k, g.v);
    return {grad_qkv};
  }
};

// q (B, Sq, H·Dh), k and v (B, Skv, H·Dh), each contiguous.
Problem separate_problem(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t heads) {
  return {q.size(0), heads, q.size(1), k.size(1), q.size(2) / heads, rows_of(q), rows_of(k), rows_of(v)};
}

torch::Tensor generic_separate(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t heads) {
  auto split = [heads](const torch::Tensor& x) { return x.reshape({x.size(0), x.size(1), heads, -1}).transpose(1, 2); };
  return compat::scaled_dot_product_attention(split(q), split(k), split(v)).transpose(1, 2).flatten(2);
}

class SeparateAttention : public torch::autograd::Function<SeparateAttention> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, int64_t heads) {
    const auto pb = separate_problem(q, k, v, heads);
    auto probs = torch::empty({pb.b, pb.h, pb.sq, pb.skv}, q.options());
    auto out = torch::empty_like(q);
    attention_forward(pb, out.data_ptr<float>(), probs.data_ptr<float>());
    ctx->save_for_backward({q, k, v, probs});
    ctx->saved_data["heads"] = heads;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t heads = ctx->saved_data["heads"].toInt();
    if (grad_of_grad_needed()) {
      auto g = torch::autograd::grad({generic_separate(saved[0], saved[1], saved[2], heads)},
                                     {saved[0], saved[1], saved[2]}, {grads[0]}, true, true);
      return {g[0], g[1], g[2], torch::Tensor()};
    }
    const auto grad_out = grads[0].contiguous();
    auto dq = torch::empty_like(saved[0]), dk = torch::empty_like(saved[1]), dv = torch::empty_like(saved[2]);
    attention_backward(separate_problem(saved[0], saved[1], saved[2], heads), saved[3].data_ptr<float>(),
                       grad_out.data_ptr<float>(), rows_of(dq), rows_of(dk), rows_of(dv));
    return {dq, dk, dv, torch::Tensor()};
  }
};

bool cpu_fp32(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
}

}  // namespace

bool packed_attention_on_cpu_path(const torch::Tensor& qkv) {
  return cpu_fp32(qkv) && qkv.dim() == 5 && qkv.size(2) == 3 && qkv.size(1) > 0 &&
         qkv.size(0) * qkv.size(3) >= at::get_num_threads();
}

torch::Tensor packed_self_attention(const torch::Tensor& qkv) {
  TORCH_CHECK(qkv.dim() == 5 && qkv.size(2) == 3, "packed_self_attention: expected (B, S, 3, H, Dh), got ",
              qkv.sizes());
  if (!packed_attention_on_cpu_path(qkv)) return generic_attention(qkv);
  if (qkv.requires_grad() && torch::GradMode::is_enabled()) return PackedAttention::apply(qkv);
  torch::NoGradGuard no_grad;
  const auto pb = packed_problem(qkv);
  auto out = torch::empty({pb.b, pb.sq, pb.h * pb.dh}, qkv.options());
  attention_forward(pb, out.data_ptr<float>(), nullptr);
  return out;
}

bool separate_attention_on_cpu_path(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    int64_t heads) {
  return cpu_fp32(q) && cpu_fp32(k) && cpu_fp32(v) && q.dim() == 3 && k.dim() == 3 && v.dim() == 3 && heads > 0 &&
         q.size(2) % heads == 0 && k.sizes() == v.sizes() && q.size(0) == k.size(0) && q.size(2) == k.size(2) &&
         q.size(1) > 0 && k.size(1) > 0 && q.size(0) * heads >= at::get_num_threads();
}

torch::Tensor multi_head_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   int64_t heads) {
  if (!separate_attention_on_cpu_path(q, k, v, heads)) return generic_separate(q, k, v, heads);
  const bool grad = torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  if (grad) return SeparateAttention::apply(q, k, v, heads);
  torch::NoGradGuard no_grad;
  auto out = torch::empty_like(q);
  attention_forward(separate_problem(q, k, v, heads), out.data_ptr<float>(), nullptr);
  return out;
}

}  // namespace repa::nn
