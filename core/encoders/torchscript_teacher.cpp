#include "core/encoders/torchscript_teacher.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "core/base/error.h"

namespace repa::encoders {

TorchScriptTeacher::TorchScriptTeacher(const std::string& path, const TeacherOptions& options)
    : path_(path), options_(options) {
  if (!std::filesystem::is_regular_file(path)) throw InputError("TorchScript encoder file not found: " + path);
  const auto warning = "loading TorchScript encoder " + path +
                       ": TorchScript runs code from that file; load only files you trust";
  if (options_.on_notice)
    options_.on_notice(warning);
  else
    spdlog::warn("{}", warning);
  try {
    module_ = torch::jit::load(path, options_.device);
  } catch (const c10::Error& e) {
    throw InputError("cannot load TorchScript encoder " + path + ": " + e.what_without_backtrace());
  }
  module_.eval();
  for (auto p : module_.parameters()) p.set_requires_grad(false);
  if (options_.device.is_cuda() && options_.half_precision) {
    dtype_ = *options_.half_precision;
    module_.to(dtype_);
  }
  // One forward on a blank image tells the token width and checks the output's form early.
  const auto side = options_.preprocessing == Preprocessing::Repa ? 224 : options_.image_size;
  dim_ = run(torch::zeros({1, 3, side, side}, torch::TensorOptions().device(options_.device))).patch_tokens.size(-1);
}

TeacherTokens TorchScriptTeacher::run(const torch::Tensor& model_input) {
  torch::NoGradGuard no_grad;
  c10::IValue output;
  try {
    output = module_.forward({model_input.to(dtype_)});
  } catch (const c10::Error& e) {
    throw InputError("TorchScript encoder " + path_ + " failed on input " + c10::str(model_input.sizes()) + ": " +
                     e.what_without_backtrace());
  }
  TeacherTokens tokens;
  if (output.isTensor()) {
    tokens.patch_tokens = output.toTensor();
  } else if (output.isGenericDict()) {
    const auto dict = output.toGenericDict();
    if (!dict.contains("x_norm_patchtokens"))
      throw InputError("TorchScript encoder " + path_ + " returned a dict without 'x_norm_patchtokens'");
    tokens.patch_tokens = dict.at("x_norm_patchtokens").toTensor();
    if (dict.contains("x_norm_clstoken")) tokens.cls_token = dict.at("x_norm_clstoken").toTensor().to(torch::kFloat32);
  } else {
    throw InputError("TorchScript encoder " + path_ + " returned " + output.tagKind() +
                     "; expected a (B,N,D) tensor or a dict with 'x_norm_patchtokens'");
  }
  if (tokens.patch_tokens.dim() != 3)
    throw InputError("TorchScript encoder " + path_ + " returned tokens of shape " +
                     c10::str(tokens.patch_tokens.sizes()) + "; expected (B,N,D)");
  tokens.patch_tokens = tokens.patch_tokens.to(torch::kFloat32);
  return tokens;
}

TeacherTokens TorchScriptTeacher::encode(const torch::Tensor& pixels) {
  auto input = pixels.to(options_.device, torch::kFloat32);
  input = options_.preprocessing == Preprocessing::Repa ? preprocess_repa(input)
                                                        : preprocess_simpletuner(input, options_.image_size);
  return run(input);
}

}  // namespace repa::encoders
