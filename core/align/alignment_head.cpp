#include "core/align/alignment_head.h"

#include <torch/torch.h>

#include "core/align/config_values.h"
#include "core/base/error.h"

namespace repa::align {

AlignmentHeadOptions AlignmentHeadOptions::from_json(const nlohmann::json& config) {
  namespace cv = config_values;
  static const nlohmann::json kNoStudio = nlohmann::json::object();
  const auto& studio = config.is_object() && config.contains("studio") && config.at("studio").is_object()
                           ? config.at("studio")
                           : kNoStudio;
  AlignmentHeadOptions out;
  out.projector = parse_projector_kind(cv::text(studio, "projector").value_or("layernorm_linear"));
  out.projector_hidden_dim = cv::integer(studio, "projector_hidden_dim").value_or(2048);
  out.teacher_tokens = parse_teacher_tokens(cv::text(studio, "teacher_tokens").value_or("patch"));
  out.irepa = cv::flag(config, "irepa_enabled").value_or(false) || out.projector == ProjectorKind::Conv;
  if (out.irepa) out.projector = ProjectorKind::Conv;
  out.irepa_kernel_size = cv::integer(config, "irepa_projector_kernel_size").value_or(3);
  out.irepa_spatial_norm_alpha = cv::number(config, "irepa_spatial_norm_alpha").value_or(0.6);
  if (out.irepa_spatial_norm_alpha < 0)
    throw InputError("config key 'irepa_spatial_norm_alpha': must be >= 0, got " +
                     std::to_string(out.irepa_spatial_norm_alpha));
  if (out.irepa && (out.irepa_kernel_size < 1 || out.irepa_kernel_size % 2 == 0))
    throw InputError("config key 'irepa_projector_kernel_size': expected 1, 3, 5 or 7, got " +
                     std::to_string(out.irepa_kernel_size));
  return out;
}

ProjectorSetImpl::ProjectorSetImpl(const AlignmentHeadOptions& options, int64_t input_dim,
                                   const std::vector<int64_t>& teacher_dims) {
  if (teacher_dims.empty()) throw InputError("alignment: at least one teacher is needed");
  torch::nn::ModuleList list;
  for (const int64_t dim : teacher_dims) {
    ProjectorConfig c;
    c.kind = options.projector;
    c.input_dim = input_dim;
    c.output_dim = dim;
    c.hidden_dim = options.projector_hidden_dim;
    c.kernel_size = options.irepa_kernel_size;
    heads.emplace_back(c);
    list->push_back(heads.back());
  }
  if (teacher_dims.size() == 1 && options.projector != ProjectorKind::Mlp)
    register_module("projector", heads.front());
  else
    register_module("projectors", list);
}

torch::Tensor prepare_teacher(const torch::Tensor& teacher, const AlignmentHeadOptions& options, int64_t batch,
                              int64_t expected_dim, size_t index, const char* regularizer) {
  const std::string name = std::string(regularizer) + " teacher " + std::to_string(index);
  if (!teacher.defined()) throw InputError(name + ": no tokens were given");
  auto tokens = teacher;
  if (tokens.dim() == 2 && options.teacher_tokens == TeacherTokens::Cls) tokens = tokens.unsqueeze(1);
  if (tokens.dim() != 3) throw InputError(name + ": expected tokens (B, N, D), got shape " + shape_string(teacher));
  if (tokens.size(0) != batch)
    throw InputError(name + ": batch of " + std::to_string(tokens.size(0)) + " in " + shape_string(teacher) +
                     ", the hidden states have " + std::to_string(batch));
  if (tokens.size(2) != expected_dim)
    throw InputError(name + ": width " + std::to_string(tokens.size(2)) + " in " + shape_string(teacher) +
                     " does not match its projector's output width " + std::to_string(expected_dim));
  if (options.teacher_tokens == TeacherTokens::Cls && tokens.size(1) != 1)
    throw InputError(name + ": teacher_tokens is 'cls' but " + shape_string(teacher) + " holds " +
                     std::to_string(tokens.size(1)) + " tokens; pass the CLS token (B, D)");
  tokens = tokens.detach().to(torch::kFloat32);
  if (options.irepa) tokens = spatial_zscore(tokens, options.irepa_spatial_norm_alpha);
  return tokens;
}

std::map<std::string, torch::Tensor> projector_weights_from_simpletuner(
    const std::map<std::string, torch::Tensor>& checkpoint, const std::string& prefix) {
  const std::string head = prefix + "_projector.";
  const std::pair<std::string, std::string> renames[] = {
      {"0.", "projector.norm."}, {"1.", "projector.linear."}, {"projection.", "projector.projection."}};
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, tensor] : checkpoint) {
    if (name.rfind(head, 0) != 0) continue;
    const std::string rest = name.substr(head.size());
    for (const auto& [from, to] : renames)
      if (rest.rfind(from, 0) == 0) out[to + rest.substr(from.size())] = tensor;
  }
  return out;
}

TokenGrid teacher_grid(int64_t token_count) {
  return infer_token_grid(token_count, {1, 1});
}

}  // namespace repa::align
