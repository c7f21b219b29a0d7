// repa-train with LoRA (model_type lora) on the demo preset, headless: a run killed with SIGKILL after a checkpoint
// resumes from it and repeats the uninterrupted run's losses and adapter file; `merge` turns base + LoRA into
// merged weights and names what it is missing.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/models/flux_official_names.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace {

struct Worker {
  pid_t pid = -1;
  FILE* from_child = nullptr;
};

Worker start(const std::vector<std::string>& args) {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  Worker w;
  w.pid = ::fork();
  REQUIRE(w.pid >= 0);
  if (w.pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(REPA_TRAIN_EXE));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(REPA_TRAIN_EXE, argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  w.from_child = ::fdopen(out[0], "r");
  return w;
}

int finish(Worker& w) {
  std::array<char, 4096> drain{};
  while (std::fgets(drain.data(), drain.size(), w.from_child)) {
  }
  std::fclose(w.from_child);
  int status = 0;
  ::waitpid(w.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

template <typename F>
bool read_events_until(Worker& w, F stop_when) {
  std::array<char, 1 << 16> line{};
  while (std::fgets(line.data(), line.size(), w.from_child)) {
    const auto event = nlohmann::json::parse(line.data(), nullptr, false);
    if (event.is_object() && stop_when(event)) return true;
  }
  return false;
}

std::vector<std::string> lora_args(const std::string& out, const std::string& name) {
  // The demo SiT starts from scratch, gated shut by adaLN-Zero: an adapter on the modulation opens it.
  return {"--threads",
          "1",
          "run",
          "--preset",
          "demo",
          "--events",
          "stdio",
          "--set",
          "output_dir=" + out,
          "--set",
          "studio.run_name=" + name,
          "--set",
          "max_train_steps=6",
          "--set",
          "checkpoint_step_interval=3",
          "--set",
          "validation_step_interval=0",
          "--set",
          "model_type=lora",
          "--set",
          "lora_rank=4",
          "--set",
          "lora_format=comfyui",
          "--set",
          R"(peft_lora_target_modules="[\"attn.qkv\", \"attn.proj\", \"adaLN_modulation.1\"]")"};
}

std::map<int64_t, double> losses_of(const std::string& run_dir) {
  std::map<int64_t, double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto m = nlohmann::json::parse(line);
    out[m["step"].get<int64_t>()] = m["loss"].get<double>();
  }
  return out;
}

int run_tool(const std::string& args) {
  const int status = std::system((std::string(REPA_TRAIN_EXE) + " " + args + " > /dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("a LoRA run killed with SIGKILL resumes from its checkpoint to the same losses and adapter file") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  Worker whole = start(lora_args(out, "whole"));
  CHECK(finish(whole) == 0);
  const auto reference = losses_of(out + "/whole");
  REQUIRE(reference.size() == 6);
  const auto lora_file = out + "/whole/pytorch_lora_weights.safetensors";
  REQUIRE(fs::exists(lora_file));
  CHECK(repa::io::SafetensorsFile::open(lora_file).contains("transformer.blocks.0.attn.qkv.alpha"));
  CHECK(!fs::exists(out + "/whole/checkpoints/checkpoint-3/model.safetensors"));

  Worker killed = start(lora_args(out, "killed"));
  bool past_checkpoint = false;
  const bool reached = read_events_until(killed, [&](const nlohmann::json& e) {
    if (e["type"] == "checkpoint" && e["step"] == 3) past_checkpoint = true;
    return past_checkpoint && e["type"] == "metrics" && e["step"].get<int>() >= 4;
  });
  REQUIRE(reached);
  ::kill(killed.pid, SIGKILL);
  CHECK(finish(killed) == -SIGKILL);
  auto args = lora_args(out, "killed");
  args.insert(args.end(), {"--set", "resume_from_checkpoint=latest"});
  Worker resumed = start(args);
  int64_t first_step = -1;
  read_events_until(resumed, [&](const nlohmann::json& e) {
    if (e["type"] == "run_started") first_step = e["step"];
    return false;
  });
  CHECK(finish(resumed) == 0);
  CHECK(first_step == 3);
  const auto losses = losses_of(out + "/killed");
  REQUIRE(losses.size() == 6);
  for (int64_t step = 1; step <= 6; ++step) CHECK(losses.at(step) == reference.at(step));
  CHECK(repa::test::read_bytes(out + "/killed/pytorch_lora_weights.safetensors") == repa::test::read_bytes(lora_file));
}

TEST_CASE("merge: base + LoRA file → merged weights; bad input is named") {
  repa::test::ScratchDir dir;
  const auto base = dir.file("base.safetensors");
  const auto w = torch::randn({3, 2});
  repa::io::save_safetensors(base, {{"proj.weight", w}, {"proj.bias", torch::ones({3})}});
  const auto a = torch::randn({1, 2}), b = torch::randn({3, 1});
  repa::io::save_safetensors(dir.file("lora.safetensors"),
                             {{"transformer.proj.lora_A.weight", a},
                              {"transformer.proj.lora_B.weight", b},
                              {"transformer.proj.alpha", torch::tensor(2.0f).reshape({})}});
  CHECK(run_tool("merge --base " + base + " --lora " + dir.file("lora.safetensors") + " --out " + dir.file("m")) == 0);
  const auto merged = repa::io::SafetensorsFile::open(dir.file("m/diffusion_pytorch_model.safetensors"));
  CHECK(torch::allclose(merged.tensor("proj.weight"), w + 2.0 * b.matmul(a), 1e-6, 1e-6));
  CHECK(torch::equal(merged.tensor("proj.bias"), torch::ones({3})));
  CHECK(run_tool("merge --base " + base) == 2);
  CHECK(run_tool("merge --base " + dir.file("missing.safetensors") + " --lora " + dir.file("lora.safetensors") +
                 " --out " + dir.file("x.safetensors")) == 2);
}

TEST_CASE("run_started carries the LoRA settings, the parameter counts and the adapter file the run writes") {
  repa::test::ScratchDir dir;
  const std::string out = dir.file("runs");
  auto args = lora_args(out, "described");
  args[std::find(args.begin(), args.end(), "max_train_steps=6") - args.begin()] = "max_train_steps=2";
  args.insert(args.end(), {"--set", "lora_alpha=8", "--set", "lora_init_type=gaussian"});
  Worker w = start(args);
  nlohmann::json lora;
  read_events_until(w, [&](const nlohmann::json& e) {
    if (e["type"] == "run_started") lora = e["lora"];
    return false;
  });
  CHECK(finish(w) == 0);
  REQUIRE(lora.is_object());
  CHECK(lora["rank"] == 4);
  CHECK(lora["alpha"] == 8.0);
  CHECK(lora["scaling"] == 2.0);
  CHECK(lora["init"] == "gaussian");
  CHECK(lora["dora"] == false);
  CHECK(lora["format"] == "comfyui");
  CHECK(lora["targets"] == nlohmann::json::array({"attn.qkv", "attn.proj", "adaLN_modulation.1"}));
  CHECK(lora["adapter_file"] == out + "/described/pytorch_lora_weights.safetensors");
  // The counts agree with the file the run wrote: adapters, and the projector saved beside them.
  const auto file = repa::io::SafetensorsFile::open(lora["adapter_file"].get<std::string>());
  int64_t adapter = 0, projector = 0, modules = 0;
  for (const auto& name : file.names()) {
    const auto n = file.tensor(name).numel();
    if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) adapter += n;
    if (name.find(".lora_A.") != std::string::npos) ++modules;
    if (name.find("_projector.") != std::string::npos) projector += n;
  }
  CHECK(adapter > 0);
  CHECK(lora["adapter_parameters"] == adapter);
  CHECK(lora["adapted_modules"] == modules);
  CHECK(lora["trainable_parameters"] == adapter + projector);
  CHECK(lora["base_parameters"].get<int64_t>() > 10 * adapter);
}

TEST_CASE("merge of a Flux LoRA also writes the official single file, which reads back as the merged weights") {
  repa::test::ScratchDir dir;
  const auto fixture =
      repa::io::SafetensorsFile::open(repa::test::fixture_path("text2image/flux_transformer_forward_1_0.safetensors"));
  std::map<std::string, torch::Tensor> base;
  for (const auto& name : fixture.names())
    if (name.rfind("param.", 0) == 0) base[name.substr(6)] = fixture.tensor(name);
  fs::create_directories(dir.file("base"));
  repa::io::save_safetensors(dir.file("base/diffusion_pytorch_model.safetensors"),
                             repa::io::NamedTensors(base.begin(), base.end()));
  repa::test::write_bytes(dir.file("base/config.json"), fixture.metadata().at("config"));
  // A rank-2 adapter on a double block's to_q and a single block's MLP input (part of the fused linear1).
  torch::manual_seed(3);
  repa::io::NamedTensors lora;
  for (const std::string m : {"transformer_blocks.0.attn.to_q", "single_transformer_blocks.1.proj_mlp"}) {
    const auto& w = base.at(m + ".weight");
    lora.emplace_back("transformer." + m + ".lora_A.weight", torch::randn({2, w.size(1)}));
    lora.emplace_back("transformer." + m + ".lora_B.weight", torch::randn({w.size(0), 2}));
    lora.emplace_back("transformer." + m + ".alpha", torch::tensor(4.0f).reshape({}));
  }
  repa::io::save_safetensors(dir.file("lora.safetensors"), lora);
  REQUIRE(run_tool("merge --base " + dir.file("base") + " --lora " + dir.file("lora.safetensors") + " --out " +
                   dir.file("merged")) == 0);
  const auto merged = repa::io::SafetensorsFile::open(dir.file("merged/diffusion_pytorch_model.safetensors"));
  CHECK(fs::exists(dir.file("merged/config.json")));
  const auto single = repa::io::SafetensorsFile::open(dir.file("merged.safetensors"));
  CHECK(single.contains("double_blocks.0.img_attn.qkv.weight"));
  CHECK(single.contains("single_blocks.1.linear1.weight"));
  std::map<std::string, torch::Tensor> official;
  for (const auto& name : single.names()) official[name] = single.tensor(name);
  const auto back = repa::models::flux_official_to_diffusers(official, "merged.safetensors");
  CHECK(back.size() == merged.names().size());
  for (const auto& name : merged.names()) {
    CAPTURE(name);
    REQUIRE(back.count(name));
    CHECK(torch::equal(back.at(name), merged.tensor(name)));
  }
  // The merge did change the adapted weights: W + (alpha / r) B A.
  const auto a = lora[0].second, b = lora[1].second;
  CHECK(torch::allclose(merged.tensor("transformer_blocks.0.attn.to_q.weight"),
                        base.at("transformer_blocks.0.attn.to_q.weight") + 2.0 * b.matmul(a), 1e-5, 1e-5));

  CHECK(run_tool("merge --base " + dir.file("base") + " --lora " + dir.file("lora.safetensors") + " --out " +
                 dir.file("plain") + " --no-single-file") == 0);
  CHECK_FALSE(fs::exists(dir.file("plain.safetensors")));
  CHECK(run_tool("merge --base " + dir.file("base") + " --lora " + dir.file("lora.safetensors") + " --out " +
                 dir.file("f.safetensors") + " --single-file " + dir.file("bfl.safetensors")) == 0);
  CHECK(fs::exists(dir.file("bfl.safetensors")));
}
