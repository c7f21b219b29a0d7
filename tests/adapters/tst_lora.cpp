// LoRA: peft's initialisation and forward on Linear and Conv2d layers (plain and DoRA), merging, peft's target
// matching, the family tables, the two file formats written and read back, and the errors on bad input.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <string>

#include "core/adapters/lora_file.h"
#include "core/adapters/lora_layer.h"
#include "core/adapters/lora_merge.h"
#include "core/adapters/lora_model.h"
#include "core/adapters/lora_targets.h"
#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/diffusers_layers.h"
#include "core/models/unet_2d_condition.h"
#include "core/nn/linear.h"
#include "tests/test_support.h"

using namespace repa;
using namespace repa::adapters;
namespace diffusers = repa::models::diffusers;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Two blocks with diffusers-named layers: blocks.<i>.to_q, .to_out.0 (a ModuleList as diffusers has), .conv, .fc.
struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    to_q = register_module("to_q", diffusers::Linear(6, 8));
    auto list = register_module("to_out", torch::nn::ModuleList());
    to_out = diffusers::Linear(8, 6);
    list->push_back(to_out);
    conv = register_module("conv", diffusers::Conv2d(3, 4, 3, 1, 1));
    fc = register_module("fc", repa::nn::Linear(6, 6));
  }
  diffusers::Linear to_q{nullptr}, to_out{nullptr};
  diffusers::Conv2d conv{nullptr};
  repa::nn::Linear fc{nullptr};
};
TORCH_MODULE(Block);

struct ToyImpl : torch::nn::Module {
  ToyImpl() {
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < 2; ++i) blocks->push_back(Block());
  }
  BlockImpl* block(int i) { return blocks[i]->as<BlockImpl>(); }
  // The tokens path through every Linear, plus the conv path; one output so a test compares everything.
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& image) {
    auto h = tokens;
    std::vector<torch::Tensor> convs;
    for (int i = 0; i < 2; ++i) {
      auto* b = blocks[i]->as<BlockImpl>();
      h = b->fc(b->to_out(b->to_q(h)));
      convs.push_back(b->conv(image).flatten());
    }
    return torch::cat({h.flatten(), torch::cat(convs)});
  }
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(Toy);

TargetSpec names(std::vector<std::string> n) {
  TargetSpec t;
  t.names = std::move(n);
  return t;
}

LoraSettings settings(int64_t rank, std::optional<double> alpha, bool dora = false) {
  LoraSettings s;
  s.rank = rank;
  s.alpha = alpha;
  s.dropout = 0.0;
  s.use_dora = dora;
  return s;
}

void randomise(LoraModel& lora) {
  torch::NoGradGuard no_grad;
  for (auto& p : lora.parameters()) p.normal_(0.0, 0.3);
  for (const auto& path : lora.adapted_modules()) {
    auto l = lora.layer(path);
    if (l->magnitude.defined()) l->magnitude.uniform_(0.5, 1.5);
  }
}

}  // namespace

TEST_CASE("settings: alpha defaults to the rank, scaling alpha / r, unsupported choices are named") {
  auto s = LoraSettings::from_json({{"lora_rank", 8}});
  CHECK(s.effective_alpha() == 8.0);
  CHECK(s.scaling() == 1.0);
  CHECK(s.dropout == doctest::Approx(0.1));
  s = LoraSettings::from_json({{"lora_rank", 4}, {"lora_alpha", 2.0}, {"lora_init_type", "gaussian"}});
  CHECK(s.scaling() == 0.5);
  CHECK(s.init == LoraInit::Gaussian);
  CHECK(error_of([] { LoraSettings::from_json({{"lora_type", "lycoris"}}); }).find("lora_type") != std::string::npos);
  CHECK(error_of([] {
          LoraSettings::from_json({{"lora_init_type", "pissa"}});
        }).find("'lora_init_type': 'pissa'") != std::string::npos);
  CHECK(error_of([] { LoraSettings::from_json({{"lora_rank", 0}}); }).find("lora_rank") != std::string::npos);
  CHECK(error_of([] { LoraSettings::from_json({{"lora_dropout", 1.5}}); }).find("lora_dropout") != std::string::npos);
}

TEST_CASE("a fresh LoRA (B = 0) leaves every output unchanged; A follows peft's initialisations") {
  torch::manual_seed(0);
  Toy toy;
  const auto tokens = torch::randn({2, 5, 6}), image = torch::randn({2, 3, 5, 5});
  const auto before = toy->forward(tokens, image);
  for (bool dora : {false, true}) {
    LoraModel lora(*toy, settings(4, 2.0, dora), names({"to_q", "to_out.0", "conv", "fc"}));
    CHECK(lora.adapted_modules().size() == 8);
    CHECK(torch::equal(toy->forward(tokens, image), before));
    const auto a = lora.layer("blocks.0.to_q")->lora_A;
    CHECK(a.abs().max().item<double>() <= 1.0 / std::sqrt(6.0));
    CHECK(a.abs().max().item<double>() > 0.5 / std::sqrt(6.0));
    CHECK(lora.layer("blocks.1.conv")->lora_A.sizes() == torch::IntArrayRef({4, 3, 3, 3}));
    CHECK(lora.layer("blocks.1.conv")->lora_B.sizes() == torch::IntArrayRef({4, 4, 1, 1}));
  }
  // Detached adapters: the model is the plain model again, bit for bit.
  CHECK(torch::equal(toy->forward(tokens, image), before));
  // Gaussian: A ~ N(0, std 1/r); B still zero.
  auto g = settings(16, std::nullopt);
  g.init = LoraInit::Gaussian;
  LoraModel wide(*toy, settings(4, std::nullopt), names({"fc"}));
  torch::nn::Sequential holder;
  holder->push_back("proj", diffusers::Linear(400, 300));
  LoraModel gaussian(*holder, g, names({"proj"}));
  const auto a = gaussian.layer("proj")->lora_A;
  CHECK(a.std().item<double>() == doctest::Approx(1.0 / 16).epsilon(0.05));
  CHECK(gaussian.layer("proj")->lora_B.abs().sum().item<double>() == 0.0);
}

TEST_CASE("forward: W x + b + (alpha / r) B A x on Linear and Conv2d, equal to the merged weights") {
  torch::manual_seed(1);
  Toy toy;
  const auto tokens = torch::randn({2, 5, 6}), image = torch::randn({2, 3, 5, 5});
  LoraModel lora(*toy, settings(3, 6.0), names({"to_q", "conv", "fc"}));
  randomise(lora);
  // By hand for one Linear and one Conv2d.
  auto block = toy->block(0);
  const auto x = torch::randn({4, 6});
  const auto l = lora.layer("blocks.0.to_q");
  const auto want = torch::matmul(x, block->to_q->weight.t()) + block->to_q->bias +
                    2.0 * torch::matmul(torch::matmul(x, l->lora_A.t()), l->lora_B.t());
  CHECK(torch::allclose(block->to_q(x), want, 1e-5, 1e-5));
  const auto c = lora.layer("blocks.0.conv");
  const auto conv_want = torch::conv2d(image, block->conv->weight, block->conv->bias, 1, 1) +
                         2.0 * torch::conv2d(torch::conv2d(image, c->lora_A, {}, 1, 1), c->lora_B);
  CHECK(torch::allclose(block->conv(image), conv_want, 1e-5, 1e-5));
  // Merging gives the same model without adapters.
  const auto adapted = toy->forward(tokens, image);
  CHECK(!torch::allclose(adapted, [&] {
    lora.detach();
    auto plain = toy->forward(tokens, image);
    return plain;
  }()));
}

TEST_CASE("merge equals the adapter forward, plain and DoRA") {
  for (bool dora : {false, true}) {
    torch::manual_seed(2);
    Toy toy;
    const auto tokens = torch::randn({2, 5, 6}), image = torch::randn({2, 3, 5, 5});
    LoraModel lora(*toy, settings(2, 3.0, dora), names({"to_q", "to_out.0", "conv", "fc"}));
    randomise(lora);
    const auto adapted = toy->forward(tokens, image);
    lora.merge_into_base();
    const auto merged = toy->forward(tokens, image);
    CHECK(torch::allclose(merged, adapted, 1e-4, 1e-4));
  }
}

TEST_CASE("DoRA: m / ||W + s B A|| rescales each output row; the norm gets no gradient") {
  torch::manual_seed(3);
  torch::nn::Sequential holder;
  holder->push_back("proj", diffusers::Linear(5, 4));
  LoraModel lora(*holder, settings(2, 4.0, true), names({"proj"}));
  randomise(lora);
  auto layer = holder[0]->as<diffusers::LinearImpl>();
  const auto l = lora.layer("proj");
  const auto x = torch::randn({3, 5});
  torch::Tensor want;
  {
    torch::NoGradGuard no_grad;
    const auto w = layer->weight + 2.0 * l->lora_B.matmul(l->lora_A);
    const auto scale = l->magnitude / w.norm(2, {1});
    want = torch::linear(x, w) * scale + layer->bias;
  }
  const auto got = layer->forward(x);
  CHECK(torch::allclose(got, want, 1e-5, 1e-5));
  got.sum().backward();
  CHECK(l->magnitude.grad().defined());
  CHECK(l->lora_A.grad().defined());
  // With the norm held constant, d out / d m_j = (W' x)_j / ||W'_j||: the sum's gradient is that, summed over rows.
  torch::NoGradGuard no_grad;
  const auto w = layer->weight + 2.0 * l->lora_B.matmul(l->lora_A);
  CHECK(torch::allclose(l->magnitude.grad(), (torch::linear(x, w) / w.norm(2, {1})).sum(0), 1e-5, 1e-5));
}

TEST_CASE("targets: peft's suffix and regex rules, modules_to_save excluded, errors list existing modules") {
  TargetSpec t = names({"to_out.0", "attn1.to_q"});
  CHECK(matches_target("down.attn1.to_out.0", t));
  CHECK(matches_target("to_out.0", t));
  CHECK(!matches_target("down.attn1.xto_out.0", t));
  CHECK(!matches_target("down.attn1.to_out.0.sub", t));
  CHECK(matches_target("a.attn1.to_q", t));
  CHECK(!matches_target("a.attn2.to_q", t));
  t.modules_to_save = {"a"};
  CHECK(!matches_target("a.attn1.to_q", t));
  TargetSpec r;
  r.is_regex = true;
  r.regex = R"(blocks\.1\..*)";
  CHECK(matches_target("blocks.1.to_q", r));
  CHECK(!matches_target("xblocks.1.to_q", r));

  Toy toy;
  auto message = error_of([&] { LoraModel lora(*toy, settings(2, std::nullopt), names({"to_k"})); });
  CHECK(message.find("match no module") != std::string::npos);
  CHECK(message.find("blocks.0.to_q") != std::string::npos);
  message = error_of([&] { LoraModel lora(*toy, settings(2, std::nullopt), names({"to_out"})); });
  CHECK(message.find("'blocks.0.to_out'") != std::string::npos);
  CHECK(message.find("cannot carry a LoRA") != std::string::npos);
}

TEST_CASE("family tables: SimpleTuner's defaults, Flux presets, precedence of peft_lora_target_modules") {
  CHECK(resolve_targets(family_lora("sdxl"), nlohmann::json::object()).names ==
        std::vector<std::string>{"to_k", "to_q", "to_v", "to_out.0"});
  CHECK(family_lora("sdxl").comfyui == ComfyNaming::Kohya);
  CHECK(family_lora("chroma").comfyui == ComfyNaming::DiffusionModelPrefix);
  const auto all = resolve_targets(family_lora("flux"), nlohmann::json::object()).names;
  CHECK(all.size() == 10);
  const auto ffs = resolve_targets(family_lora("flux"), {{"flux_lora_target", "all+ffs"}}).names;
  CHECK(std::count(ffs.begin(), ffs.end(), "proj_out") == 1);
  CHECK(std::count(ffs.begin(), ffs.end(), "ff_context.net.2") == 1);
  const auto toolkit = resolve_targets(family_lora("chroma"), {{"flux_lora_target", "ai-toolkit"}}).names;
  CHECK(std::count(toolkit.begin(), toolkit.end(), "norm1.linear") == 0);
  const auto manual = resolve_targets(
      family_lora("flux"), {{"flux_lora_target", "context"}, {"peft_lora_target_modules", "[\"a\", \"b.c\"]"}});
  CHECK(manual.names == std::vector<std::string>{"a", "b.c"});
  const auto regex = resolve_targets(family_lora("sdxl"), {{"peft_lora_target_modules", ".*attn1\\.to_q"}});
  CHECK(regex.is_regex);
  CHECK(error_of([] {
          resolve_targets(family_lora("flux"), {{"flux_lora_target", "everything"}});
        }).find("everything") != std::string::npos);
  const auto slider = resolve_targets(family_lora("sdxl"), {{"slider_lora_target", "true"}}).names;
  CHECK(std::count(slider.begin(), slider.end(), "conv_in") == 1);
  CHECK(error_of([] { family_lora("wan"); }).find("'wan'") != std::string::npos);
  CHECK(error_of([] {
          resolve_targets(family_lora("sdxl"), {{"peft_lora_target_modules", "[]"}});
        }).find("peft_lora_target_modules") != std::string::npos);
}

TEST_CASE("files: both formats save and load back losslessly, with alpha, names and header as SimpleTuner writes") {
  torch::manual_seed(4);
  test::ScratchDir dir;
  const auto tokens = torch::randn({2, 5, 6}), image = torch::randn({2, 3, 5, 5});
  for (const std::string family : {"sdxl", "flux", "chroma"}) {
    for (auto format : {LoraFormat::Diffusers, LoraFormat::ComfyUI}) {
      CAPTURE(family);
      CAPTURE(to_string(format));
      torch::manual_seed(5);
      Toy toy;
      const auto spec = family_lora(family);
      auto targets = names({"to_q", "to_out.0", "conv"});
      LoraModel lora(*toy, settings(2, 3.0), targets);
      randomise(lora);
      const auto want = toy->forward(tokens, image);
      const io::NamedTensors extra = {{"crepa_projector.0.weight", torch::randn({6})}};
      const auto path = dir.file(family + to_string(format) + ".safetensors");
      save_lora_file(path, lora_file_content(lora, spec, format, extra));
      const auto file = io::SafetensorsFile::open(path);
      const std::string c = spec.component;
      if (format == LoraFormat::Diffusers) {
        CHECK(file.contains(c + ".blocks.1.to_out.0.lora_A.weight"));
        CHECK(file.names().size() == 6 * 2 + 1);
        const auto header = nlohmann::json::parse(*file.meta("lora_adapter_metadata"));
        CHECK(header.at(c + ".lora_alpha") == 3.0);
        CHECK(header.at(c + ".r") == 2);
      } else if (family == "sdxl") {
        CHECK(file.contains("lora_unet_blocks_1_to_out_0.lora_down.weight"));
        CHECK(file.contains("unet.crepa_projector.0.weight"));
        CHECK(file.tensor("lora_unet_blocks_0_conv.alpha").dim() == 0);
        CHECK(file.tensor("lora_unet_blocks_0_conv.alpha").item<float>() == 3.0f);
      } else {
        const std::string p = family == "chroma" ? "diffusion_model" : "transformer";
        CHECK(file.contains(p + ".blocks.1.to_out.0.lora_B.weight"));
        CHECK(file.contains(p + ".blocks.1.to_out.0.alpha"));
        CHECK(file.contains(p + ".crepa_projector.0.weight"));
      }
      // A second model with other weights in its adapters reads the file back to the same output.
      lora.detach();
      LoraModel other(*toy, settings(2, std::nullopt), targets);
      const auto read = read_lora_file(path, spec, *toy);
      CHECK(read.extra.size() == 1);
      CHECK(read.extra[0].first == "crepa_projector.0.weight");
      load_lora(other, read, path);
      CHECK(other.settings().effective_alpha() == 3.0);
      CHECK(torch::allclose(toy->forward(tokens, image), want, 1e-6, 1e-6));
    }
  }
}

TEST_CASE("loading names what does not fit") {
  torch::manual_seed(6);
  test::ScratchDir dir;
  Toy toy;
  const auto path = dir.file("lora.safetensors");
  {
    LoraModel lora(*toy, settings(2, std::nullopt), names({"to_q"}));
    save_lora_file(path, lora_file_content(lora, family_lora("sdxl"), LoraFormat::Diffusers));
  }
  const auto file = read_lora_file(path, family_lora("sdxl"), *toy);
  CHECK(file.rank == 2);
  {
    LoraModel more(*toy, settings(2, std::nullopt), names({"to_q", "fc"}));
    const auto message = error_of([&] { load_lora(more, file, path); });
    CHECK(message.find("missing from the file: blocks.0.fc") != std::string::npos);
  }
  {
    LoraModel wider(*toy, settings(4, std::nullopt), names({"to_q"}));
    const auto message = error_of([&] { load_lora(wider, file, path); });
    CHECK(message.find("lora_rank 4") != std::string::npos);
  }
  io::save_safetensors(dir.file("te.safetensors"), {{"lora_te1_text_model.lora_down.weight", torch::zeros({2, 2})}});
  CHECK(error_of([&] {
          read_lora_file(dir.file("te.safetensors"), family_lora("sdxl"), *toy);
        }).find("lora_te1_text_model") != std::string::npos);
}

TEST_CASE("merge from files: base weights + a LoRA file give the adapter's forward, in both formats and with DoRA") {
  test::ScratchDir dir;
  const auto tokens = torch::randn({2, 5, 6}), image = torch::randn({2, 3, 5, 5});
  for (bool dora : {false, true}) {
    for (auto format : {LoraFormat::Diffusers, LoraFormat::ComfyUI}) {
      CAPTURE(dora);
      CAPTURE(to_string(format));
      torch::manual_seed(7);
      Toy toy;
      io::NamedTensors base;
      for (const auto& item : toy->named_parameters()) base.emplace_back(item.key(), item.value().detach().clone());
      const auto base_path = dir.file("base.safetensors");
      io::save_safetensors(base_path, base);
      LoraModel lora(*toy, settings(2, 5.0, dora), names({"to_q", "to_out.0", "conv", "fc"}));
      randomise(lora);
      const auto want = toy->forward(tokens, image);
      const auto lora_path = dir.file("lora.safetensors");
      save_lora_file(lora_path, lora_file_content(lora, family_lora("sdxl"), format));
      lora.detach();

      const auto merged = merge_lora_file(base_path, lora_path);
      CHECK(merged.merged_modules == 8);
      CHECK(merged.component == "unet");
      CHECK(merged.tensors.size() == base.size());
      Toy fresh;
      torch::NoGradGuard no_grad;
      auto params = fresh->named_parameters();
      for (const auto& item : merged.tensors) params[item.first].copy_(item.second);
      CHECK(torch::allclose(fresh->forward(tokens, image), want, 1e-4, 1e-4));
    }
  }
  // A LoRA for modules the base does not have is named.
  torch::nn::Sequential other;
  other->push_back("proj", diffusers::Linear(6, 8));
  io::save_safetensors(dir.file("other.safetensors"), {{"proj.weight", torch::zeros({8, 6})}});
  {
    Toy toy;
    LoraModel lora(*toy, settings(2, std::nullopt), names({"conv"}));
    save_lora_file(dir.file("d.safetensors"), lora_file_content(lora, family_lora("sdxl"), LoraFormat::Diffusers));
    save_lora_file(dir.file("k.safetensors"), lora_file_content(lora, family_lora("sdxl"), LoraFormat::ComfyUI));
  }
  CHECK(error_of([&] {
          merge_lora_file(dir.file("other.safetensors"), dir.file("d.safetensors"));
        }).find("has no tensor 'blocks.0.conv.weight'") != std::string::npos);
  CHECK(error_of([&] {
          merge_lora_file(dir.file("other.safetensors"), dir.file("k.safetensors"));
        }).find("names no Linear or Conv2d of the model") != std::string::npos);
}

TEST_CASE("a bf16 base with fp32 adapters: the layer keeps its dtype, the adapters train in fp32") {
  torch::manual_seed(8);
  torch::nn::Sequential holder;
  holder->push_back("proj", diffusers::Linear(6, 4));
  LoraModel lora(*holder, settings(2, 4.0), names({"proj"}));
  randomise(lora);
  auto* layer = holder[0]->as<diffusers::LinearImpl>();
  const auto x = torch::randn({3, 6});
  const auto want = layer->forward(x);
  holder->to(torch::kBFloat16);
  for (auto& p : holder->parameters()) p.set_requires_grad(false);
  const auto got = layer->forward(x.to(torch::kBFloat16));
  CHECK((got.scalar_type() == torch::kBFloat16));
  CHECK((lora.layer("proj")->lora_A.scalar_type() == torch::kFloat32));
  CHECK(torch::allclose(got.to(torch::kFloat32), want, 0.05, 0.05));
  got.to(torch::kFloat32).sum().backward();
  CHECK(lora.layer("proj")->lora_B.grad().defined());
  CHECK((lora.layer("proj")->lora_B.grad().scalar_type() == torch::kFloat32));
}

TEST_CASE("a LoRA on a frozen UNet under gradient checkpointing gets the gradients it gets without it") {
  // The adapters are not children of the layers they hook into; the checkpointed blocks must still hand them
  // their gradients (with the base frozen and the latents constant, nothing else in the graph needs any).
  const auto config = nlohmann::json::parse(
      *io::SafetensorsFile::open(test::fixture_path("conformance/unet2d_forward_sdxl_1_1.safetensors"))
           .meta("config"));
  torch::manual_seed(3);
  models::UNet2DConditionModel unet(models::UNet2DConditionConfig::from_json(config));
  for (auto& p : unet->parameters()) p.set_requires_grad(false);
  LoraModel lora(*unet, settings(4, 8.0), resolve_targets(family_lora("sdxl"), nlohmann::json::object()));
  randomise(lora);
  unet->train();
  const auto sample = torch::randn({1, config.at("in_channels").get<int64_t>(), 16, 16});
  const auto context = torch::randn({1, 5, config.at("cross_attention_dim").get<int64_t>()});
  models::UNetConditioning cond;
  cond.text_embeds = torch::randn({1, config.at("projection_class_embeddings_input_dim").get<int64_t>() -
                                          6 * config.at("addition_time_embed_dim").get<int64_t>()});
  cond.time_ids = torch::tensor({{128.f, 128.f, 0.f, 0.f, 128.f, 128.f}});
  auto grads = [&](bool checkpointing) {
    models::UNetMemoryOptions memory;
    memory.gradient_checkpointing = checkpointing;
    unet->set_memory_options(memory);
    for (auto& p : lora.parameters()) p.mutable_grad() = torch::Tensor();
    unet->forward(sample, torch::tensor({500}), context, cond).sample.square().mean().backward();
    std::vector<torch::Tensor> out;
    for (const auto& p : lora.parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
    return out;
  };
  const auto want = grads(false);
  const auto got = grads(true);
  REQUIRE(want.size() == got.size());
  REQUIRE(want.size() > 20);
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(lora.named_parameters()[i].first);
    REQUIRE(want[i].defined());
    REQUIRE(got[i].defined());
    CHECK(want[i].abs().sum().item<double>() > 0);
    CHECK(torch::allclose(got[i], want[i], 1e-4, 1e-6));
  }
  for (const auto& p : unet->parameters()) CHECK_FALSE(p.grad().defined());
}
