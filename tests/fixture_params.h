// The weights a reference fixture carries: its "param.<module path>" tensors, keyed by the module path.
#pragma once
#include <map>
#include <string>

#include "core/io/safetensors.h"

namespace repa::test {

inline std::map<std::string, torch::Tensor> fixture_params(const io::SafetensorsFile& file) {
  std::map<std::string, torch::Tensor> params;
  for (const auto& name : file.names())
    if (name.rfind("param.", 0) == 0) params[name.substr(6)] = file.tensor(name);
  return params;
}

}  // namespace repa::test
