// repa-train inspect FILE: tensor names, dtypes, shapes and metadata of a safetensors checkpoint.
#include <cstdio>

#include "app/train_commands.h"
#include "core/base/error.h"
#include "core/io/safetensors.h"

namespace repa::app {

int inspect_command(const Args& args) {
  if (args.size() != 1 || args[0] == "--help") {
    std::printf("Usage: repa-train inspect FILE.safetensors|INDEX.safetensors.index.json\n");
    return args.size() == 1 ? 0 : 2;
  }
  const auto ckpt = io::SafetensorsCheckpoint::open(args[0]);
  for (const auto& [key, value] : ckpt.metadata()) std::printf("# %s = %s\n", key.c_str(), value.c_str());
  for (const auto& name : ckpt.names()) {
    const auto& info = ckpt.info(name);
    std::string shape;
    for (std::size_t i = 0; i < info.shape.size(); ++i) shape += (i ? "x" : "") + std::to_string(info.shape[i]);
    std::printf("%-60s %-5s %s\n", name.c_str(), info.dtype.c_str(), shape.empty() ? "scalar" : shape.c_str());
  }
  return 0;
}

}  // namespace repa::app
