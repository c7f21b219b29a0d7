// The precompiled header shared by the LibTorch-heavy targets.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
