#include "app/train_commands.h"

namespace repa::app {

// Each command is defined in its own app/train_<name>.cpp.
int inspect_command(const Args& args);
int fetch_command(const Args& args);

const std::vector<TrainCommand>& train_commands() {
  static const std::vector<TrainCommand> commands = {
      {"inspect", "list the tensors and metadata of a safetensors file or sharded index", inspect_command},
      {"fetch", "download an encoder's weights (DINOv2 model.safetensors) into the cache", fetch_command},
  };
  return commands;
}

}  // namespace repa::app
