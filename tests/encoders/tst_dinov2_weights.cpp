// Bad weight files fail with messages naming the file and the tensor: missing, truncated, mismatched
// shapes, missing tensors, files of something else.
#include <doctest/doctest.h>

#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "core/base/error.h"
#include "core/encoders/dinov2_weights.h"
#include "core/io/safetensors.h"
#include "tests/test_support.h"

using namespace repa::encoders;

namespace {

Dinov2Config tiny(int64_t dim) {
  Dinov2Config c;
  c.embed_dim = dim, c.depth = 2, c.num_heads = 2, c.position_grid = 2, c.ffn_hidden = 2 * dim;
  return c;
}

// Rewrites a safetensors file through `edit` (tensors by name, in file order).
void rewrite(const std::string& path, const std::function<void(repa::io::NamedTensors&)>& edit) {
  const auto file = repa::io::SafetensorsFile::open(path);
  repa::io::NamedTensors tensors;
  for (const auto& name : file.names()) tensors.emplace_back(name, file.tensor(name));
  edit(tensors);
  repa::io::save_safetensors(path, tensors);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const repa::InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

}  // namespace

TEST_CASE("a missing file is named") {
  const auto message = error_of([] { load_dinov2_file("/nonexistent/dinov2/model.safetensors"); });
  CHECK(message.find("/nonexistent/dinov2/model.safetensors") != std::string::npos);
  CHECK(message.find("not found") != std::string::npos);
}

TEST_CASE("a truncated file names the file and the tensor that runs past its end") {
  repa::test::ScratchDir dir("repa-weights");
  auto model = random_dinov2(tiny(32), 1);
  const auto path = dir.file("model.safetensors");
  save_dinov2(path, model, Dinov2Naming::HuggingFace);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 100);
  const auto message = error_of([&] { load_dinov2_file(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("truncated") != std::string::npos);
  CHECK(message.find("tensor '") != std::string::npos);
}

TEST_CASE("weights of another size name the tensor, the expected and the found shape") {
  repa::test::ScratchDir dir("repa-weights");
  auto model = random_dinov2(tiny(32), 1);
  const auto path = dir.file("model.safetensors");
  save_dinov2(path, model, Dinov2Naming::TorchHub);
  Dinov2LoadOptions options;
  options.expected = tiny(48);
  const auto message = error_of([&] { load_dinov2_file(path, options); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("has shape [1, 1, 32], expected [1, 1, 48]") != std::string::npos);
  CHECK(message.find("tensor 'cls_token'") != std::string::npos);
}

TEST_CASE("one tensor of a wrong shape in a Hugging Face file is named in that naming") {
  repa::test::ScratchDir dir("repa-weights");
  auto model = random_dinov2(tiny(32), 1);
  const auto path = dir.file("model.safetensors");
  save_dinov2(path, model, Dinov2Naming::HuggingFace);
  rewrite(path, [](repa::io::NamedTensors& tensors) {
    for (auto& [name, t] : tensors)
      if (name == "encoder.layer.1.mlp.fc2.weight") t = torch::zeros({32, 63});
  });
  const auto message = error_of([&] { load_dinov2_file(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("tensor 'encoder.layer.1.mlp.fc2.weight' has shape [32, 63], expected [32, 64]") !=
        std::string::npos);
}

TEST_CASE("a missing tensor is named; so is a missing part of q/k/v") {
  repa::test::ScratchDir dir("repa-weights");
  auto model = random_dinov2(tiny(32), 1);
  const auto path = dir.file("model.safetensors");
  save_dinov2(path, model, Dinov2Naming::HuggingFace);
  rewrite(path, [](repa::io::NamedTensors& tensors) {
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                 [](const auto& nt) { return nt.first == "encoder.layer.0.norm2.bias"; }),
                  tensors.end());
  });
  auto message = error_of([&] { load_dinov2_file(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("tensor 'encoder.layer.0.norm2.bias' is missing") != std::string::npos);

  save_dinov2(path, model, Dinov2Naming::HuggingFace);
  rewrite(path, [](repa::io::NamedTensors& tensors) {
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                 [](const auto& nt) { return nt.first == "encoder.layer.1.attention.attention.key.weight"; }),
                  tensors.end());
  });
  message = error_of([&] { load_dinov2_file(path); });
  CHECK(message.find("tensor 'encoder.layer.1.attention.attention.key.weight' is missing") != std::string::npos);
}

TEST_CASE("registers or blocks the expected architecture lacks are mismatches") {
  repa::test::ScratchDir dir("repa-weights");
  auto with_registers = tiny(32);
  with_registers.num_register_tokens = 4;
  auto model = random_dinov2(with_registers, 1);
  const auto path = dir.file("model.safetensors");
  save_dinov2(path, model, Dinov2Naming::TorchHub);
  Dinov2LoadOptions options;
  options.expected = tiny(32);
  CHECK(error_of([&] { load_dinov2_file(path, options); }).find("'register_tokens' is present") != std::string::npos);

  auto deeper = tiny(32);
  deeper.depth = 3;
  auto deep_model = random_dinov2(deeper, 1);
  save_dinov2(path, deep_model, Dinov2Naming::HuggingFace);
  CHECK(error_of([&] { load_dinov2_file(path, options); }).find("'encoder.layer.2.norm1.weight' is present") !=
        std::string::npos);
}

TEST_CASE("a safetensors file of something else is refused by name") {
  repa::test::ScratchDir dir("repa-weights");
  const auto path = dir.file("unet.safetensors");
  repa::io::save_safetensors(path, {{"conv_in.weight", torch::zeros({4, 4, 3, 3})}});
  const auto message = error_of([&] { load_dinov2_file(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("not a DINOv2 checkpoint") != std::string::npos);
}

TEST_CASE("the architecture is inferred from the tensors") {
  repa::test::ScratchDir dir("repa-weights");
  auto c = tiny(64);
  c.ffn = FeedForwardKind::SwiGlu;
  c.ffn_hidden = Dinov2Config::swiglu_hidden(256);
  c.position_grid = 3;
  c.depth = 3;
  auto model = random_dinov2(c, 5);
  const auto path = dir.file("model.safetensors");
  save_dinov2(path, model, Dinov2Naming::HuggingFace);
  const auto loaded = load_dinov2_file(path);
  const auto& got = loaded->config();
  CHECK(got.embed_dim == 64);
  CHECK(got.depth == 3);
  CHECK(got.position_grid == 3);
  CHECK(got.ffn == FeedForwardKind::SwiGlu);
  CHECK(got.ffn_hidden == 176);  // int(256·2/3) = 170 → rounded up to a multiple of 8
  CHECK(got.num_heads == 1);     // 64-wide heads, as the released models
  CHECK(got.num_register_tokens == 0);
  CHECK(got.interpolate_offset == doctest::Approx(0.1));
}
