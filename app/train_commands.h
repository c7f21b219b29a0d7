// The subcommands of repa-train. Each lives in app/train_<name>.cpp and returns the process exit code:
// 0 success, 1 runtime failure, 2 bad input (config, arguments, files).
#pragma once
#include <string>
#include <vector>

namespace repa::app {

using Args = std::vector<std::string>;  // the arguments after the subcommand's name

struct TrainCommand {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};

const std::vector<TrainCommand>& train_commands();

}  // namespace repa::app
