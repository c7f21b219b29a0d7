// The fused CPU operators against ATen: tanh GELU over the whole float range, the per-head packed attention.
#include <algorithm>
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/nn/cpu_attention.h"
#include "core/nn/fused_ops.h"

using namespace repa;

namespace {
torch::Tensor spread_inputs() {
  // Ordinary activations, the tails where σ saturates, exact zeros and values around the exp clamp.
  return torch::cat({torch::randn({100003}) * 3, torch::linspace(-60, 60, 4001), torch::zeros({7}),
                     torch::tensor({-200.f, -90.f, -88.f, -10.f, -1e-30f, 1e-30f, 10.f, 88.f, 90.f, 200.f})});
}
}  // namespace

TEST_CASE("gelu_tanh equals torch::gelu(x, \"tanh\") in value and gradient") {
  torch::manual_seed(7);
  MESSAGE("vectorised path: " << nn::fused_cpu_kernels_vectorised());
  const auto x = spread_inputs().requires_grad_(true);
  const auto reference = x.detach().clone().requires_grad_(true);
  const auto got = nn::gelu_tanh(x);
  const auto want = torch::gelu(reference, "tanh");
  CHECK(got.grad_fn() != nullptr);
  CHECK(torch::allclose(got, want, 2e-6, 1e-6));
  const auto upstream = torch::randn_like(want);
  got.backward(upstream);
  want.backward(upstream);
  const auto grad_error = (x.grad() - reference.grad()).abs();
  const auto worst = grad_error.argmax().item<int64_t>();
  MESSAGE("largest gradient difference " << grad_error.max().item<double>() << " at x = " << x[worst].item<double>()
                                         << ": " << x.grad()[worst].item<double>() << " vs ATen "
                                         << reference.grad()[worst].item<double>());
  // Up to ATen's own error: its 1 − tanh² rounds to 0 for x below about −5, where the gradient is ~1e-6.
  CHECK(torch::allclose(x.grad(), reference.grad(), 1e-5, 1e-5));
  CHECK(torch::allclose(got, want, 1e-6, 1e-6));

  // Against the formula in float64 the fused gradient is at least as close as ATen's, whose 1 − tanh² cancels
  // in the tails (at x = −5 ATen says −2.01e-6 where the exact value is −1.55e-6).
  const auto v = x.detach().to(torch::kFloat64), v2 = v * v;
  const auto s = torch::sigmoid(1.5957691216057308 * v * (1 + 0.044715 * v2));
  const auto exact = upstream.to(torch::kFloat64) * (s + v * s * (1 - s) * 1.5957691216057308 * (1 + 3 * 0.044715 * v2));
  const double ours = (x.grad().to(torch::kFloat64) - exact).abs().max().item<double>();
  const double aten = (reference.grad().to(torch::kFloat64) - exact).abs().max().item<double>();
  MESSAGE("largest gradient error against float64: fused " << ours << ", ATen " << aten);
  CHECK(ours <= aten);
  CHECK(ours < 1e-6);
}

TEST_CASE("gelu_tanh: an odd length, every chunk boundary, and without autograd") {
  // Lengths below 8 and the remainders run the scalar loop.
  for (const int64_t n : {1, 7, 8, 9, 16385, 40001}) {
    const auto x = (torch::randn({n}) * 3).requires_grad_(true);
    const auto xr = x.detach().clone().requires_grad_(true);
    nn::gelu_tanh(x).sum().backward();
    torch::gelu(xr, "tanh").sum().backward();
    CHECK(torch::allclose(x.grad(), xr.grad(), 1e-5, 1e-5));
    torch::NoGradGuard no_grad;
    CHECK(torch::allclose(nn::gelu_tanh(x), torch::gelu(x, "tanh"), 2e-6, 1e-6));
  }
}

TEST_CASE("gelu_tanh passes NaN and +inf through") {
  const float inf = std::numeric_limits<float>::infinity();
  const auto x = torch::tensor({std::nanf(""), inf, -inf, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f});
  const auto y = nn::gelu_tanh(x);
  CHECK(std::isnan(y[0].item<float>()));
  CHECK(y[1].item<float>() == inf);
  CHECK(torch::allclose(y.narrow(0, 3, 6), torch::gelu(x.narrow(0, 3, 6), "tanh")));
}

TEST_CASE("gelu_tanh falls back to ATen for strided, fp64 and bf16 inputs and supports double backward") {
  const auto wide = torch::randn({64, 32});
  const auto strided = wide.t();
  CHECK(torch::allclose(nn::gelu_tanh(strided), torch::gelu(strided, "tanh")));
  const auto d = torch::randn({50}, torch::kFloat64);
  CHECK(torch::equal(nn::gelu_tanh(d), torch::gelu(d, "tanh")));
  const auto b = torch::randn({50}).to(torch::kBFloat16);
  CHECK(torch::equal(nn::gelu_tanh(b), torch::gelu(b, "tanh")));

  const auto x = torch::randn({33}, torch::requires_grad());
  const auto xr = x.detach().clone().requires_grad_(true);
  const auto g = torch::autograd::grad({nn::gelu_tanh(x).sum()}, {x}, {}, true, true)[0];
  const auto gr = torch::autograd::grad({torch::gelu(xr, "tanh").sum()}, {xr}, {}, true, true)[0];
  CHECK(torch::allclose(g, gr, 2e-6, 2e-6));
  const auto h = torch::autograd::grad({g.sum()}, {x})[0];
  const auto hr = torch::autograd::grad({gr.sum()}, {xr})[0];
  CHECK(torch::allclose(h, hr, 1e-5, 1e-5));
}

namespace {
// softmax(q kᵀ / √Dh) v written out with ATen operators, from the packed (B, S, 3, H, Dh) layout.
torch::Tensor written_out_attention(const torch::Tensor& qkv) {
  const auto q = qkv.select(2, 0).transpose(1, 2), k = qkv.select(2, 1).transpose(1, 2);
  const auto v = qkv.select(2, 2).transpose(1, 2);
  const auto w = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(qkv.size(4))), -1);
  return torch::matmul(w, v).transpose(1, 2).reshape({qkv.size(0), qkv.size(1), -1});
}
}  // namespace

TEST_CASE("packed_self_attention equals the written-out attention, forward and backward, on the per-head path") {
  torch::manual_seed(11);
  // Token counts that are and are not multiples of the 8-float vectors, head widths 64 and 5.
  for (const auto& shape : std::vector<std::vector<int64_t>>{{2, 16, 3, 4, 64}, {3, 13, 3, 2, 5}, {1, 9, 3, 8, 8}}) {
    const auto qkv = (torch::randn(shape) * 2).requires_grad_(true);
    CHECK(nn::packed_attention_on_cpu_path(qkv) == (shape[0] * shape[3] >= at::get_num_threads()));
    const auto reference_in = qkv.detach().clone().requires_grad_(true);
    const auto got = nn::packed_self_attention(qkv);
    const auto want = written_out_attention(reference_in);
    REQUIRE(got.sizes() == want.sizes());
    // Both sides round in fp32 with different summation orders (the BLAS kernel depends on the CPU), so the
    // bound is set against a float64 evaluation: ours may not be more than 4x further from it than ATen's.
    const auto exact = written_out_attention(qkv.detach().to(torch::kFloat64));
    const double ours = (got.to(torch::kFloat64) - exact).abs().max().item<double>();
    const double aten = (want.detach().to(torch::kFloat64) - exact).abs().max().item<double>();
    MESSAGE("largest forward error against float64: per-head path " << ours << ", ATen " << aten);
    CHECK(ours <= 4 * std::max(aten, 1e-7));
    CHECK(torch::allclose(got, want, 1e-4, 1e-5));
    const auto upstream = torch::randn_like(want);
    got.backward(upstream);
    want.backward(upstream);
    CHECK(torch::allclose(qkv.grad(), reference_in.grad(), 1e-4, 1e-5));
    torch::NoGradGuard no_grad;
    CHECK(torch::allclose(nn::packed_self_attention(qkv.detach()), want, 1e-4, 1e-5));
  }
}

TEST_CASE("packed_self_attention: a large score row stays finite, and double backward matches the generic path") {
  auto qkv = torch::randn({2, 6, 3, 2, 4});
  qkv.select(2, 0).mul_(40);  // scores in the hundreds: the softmax must subtract its row maximum
  const auto out = nn::packed_self_attention(qkv);
  CHECK(torch::isfinite(out).all().item<bool>());
  CHECK(torch::allclose(out, written_out_attention(qkv), 1e-4, 1e-5));

  const auto x = torch::randn({2, 6, 3, 2, 4}, torch::requires_grad());
  const auto xr = x.detach().clone().requires_grad_(true);
  const auto g = torch::autograd::grad({nn::packed_self_attention(x).pow(2).sum()}, {x}, {}, true, true)[0];
  const auto gr = torch::autograd::grad({written_out_attention(xr).pow(2).sum()}, {xr}, {}, true, true)[0];
  CHECK(torch::allclose(g, gr, 1e-4, 1e-5));
  const auto h = torch::autograd::grad({g.sum()}, {x})[0];
  const auto hr = torch::autograd::grad({gr.sum()}, {xr})[0];
  CHECK(torch::allclose(h, hr, 1e-3, 1e-4));
}

TEST_CASE("packed_self_attention takes the generic path for fp64, strided input and fewer heads than threads") {
  const auto d = torch::randn({2, 5, 3, 2, 4}, torch::kFloat64);
  CHECK_FALSE(nn::packed_attention_on_cpu_path(d));
  CHECK(torch::allclose(nn::packed_self_attention(d), written_out_attention(d)));
  const auto strided = torch::randn({2, 5, 3, 4, 2}).transpose(3, 4);
  CHECK_FALSE(nn::packed_attention_on_cpu_path(strided));
  CHECK(torch::allclose(nn::packed_self_attention(strided), written_out_attention(strided), 1e-5, 1e-6));
  const int threads = at::get_num_threads();
  at::set_num_threads(4);
  CHECK_FALSE(nn::packed_attention_on_cpu_path(torch::randn({1, 5, 3, 2, 4})));
  at::set_num_threads(threads);
  CHECK_THROWS(nn::packed_self_attention(torch::randn({2, 5, 4, 2, 4})));
}

TEST_CASE("multi_head_attention from separate q, k, v equals the written-out attention, cross-attention included") {
  torch::manual_seed(12);
  for (const auto& [sq, skv] : std::vector<std::pair<int64_t, int64_t>>{{16, 16}, {11, 7}}) {
    const int64_t batch = 2, heads = 3, dh = 5;
    auto q = torch::randn({batch, sq, heads * dh}, torch::requires_grad());
    auto k = torch::randn({batch, skv, heads * dh}, torch::requires_grad());
    auto v = torch::randn({batch, skv, heads * dh}, torch::requires_grad());
    CHECK(nn::separate_attention_on_cpu_path(q, k, v, heads) == (batch * heads >= at::get_num_threads()));
    auto split = [&](const torch::Tensor& x) { return x.reshape({batch, x.size(1), heads, dh}).transpose(1, 2); };
    const auto qr = q.detach().clone().requires_grad_(true), kr = k.detach().clone().requires_grad_(true),
               vr = v.detach().clone().requires_grad_(true);
    const auto w = torch::softmax(torch::matmul(split(qr), split(kr).transpose(-2, -1)) / std::sqrt(double(dh)), -1);
    const auto want = torch::matmul(w, split(vr)).transpose(1, 2).reshape({batch, sq, heads * dh});
    const auto got = nn::multi_head_attention(q, k, v, heads);
    CHECK(torch::allclose(got, want, 1e-5, 1e-6));
    const auto upstream = torch::randn_like(want);
    got.backward(upstream);
    want.backward(upstream);
    CHECK(torch::allclose(q.grad(), qr.grad(), 1e-4, 1e-5));
    CHECK(torch::allclose(k.grad(), kr.grad(), 1e-4, 1e-5));
    CHECK(torch::allclose(v.grad(), vr.grad(), 1e-4, 1e-5));
    // Only k needs a gradient (a frozen query side): the others come back undefined or unused.
    const auto k2 = k.detach().clone().requires_grad_(true);
    nn::multi_head_attention(q.detach(), k2, v.detach(), heads).backward(upstream);
    CHECK(torch::allclose(k2.grad(), kr.grad(), 1e-4, 1e-5));
  }
}

TEST_CASE("gelu_tanh(x, bias) equals gelu(x + bias) and gives the bias its summed gradient") {
  torch::manual_seed(13);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{4, 6, 40}, {3, 5}, {7, 1}}) {
    const auto x = (torch::randn(shape) * 2).requires_grad_(true);
    const auto b = torch::randn({shape.back()}, torch::requires_grad());
    const auto xr = x.detach().clone().requires_grad_(true), br = b.detach().clone().requires_grad_(true);
    const auto got = nn::gelu_tanh(x, b);
    const auto want = torch::gelu(xr + br, "tanh");
    CHECK(torch::allclose(got, want, 1e-5, 1e-6));
    const auto upstream = torch::randn_like(want);
    got.backward(upstream);
    want.backward(upstream);
    CHECK(torch::allclose(x.grad(), xr.grad(), 1e-5, 1e-5));
    CHECK(torch::allclose(b.grad(), br.grad(), 1e-4, 1e-5));
  }
  // A bias of the wrong width is not fused; ATen's broadcasting then decides.
  CHECK_THROWS(nn::gelu_tanh(torch::randn({2, 3}), torch::randn({4})));
}
