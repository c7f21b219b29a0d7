// `repa-train run --nproc-per-node N` (or studio.num_processes N): the run as N local processes, started
// the way torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
// The launcher forwards SIGINT/SIGTERM/SIGHUP, gives rank 0 its stdin (commands) and stdout (events), and
// when one process dies it names the rank and ends the others.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "app/train_commands.h"

namespace repa::app {

struct LocalLaunch {
  int processes = 1;
  Args child_args;  // the run's arguments without --nproc-per-node
  int threads = 1;  // LibTorch threads of each process
};

// The launch this command line asks for, or nothing when it runs as one process (or is itself a launched
// rank: WORLD_SIZE is set). `configured_processes` is the config's studio.num_processes.
std::optional<LocalLaunch> local_launch_request(const Args& args, int configured_processes);

// Strips --nproc-per-node N from `args` (InputError for a bad value); 0 when absent.
int take_nproc_per_node(Args& args);

// For `repa-train run`: strips --nproc-per-node from `args` and returns the launch that it or the config's
// studio.num_processes asks for.
std::optional<LocalLaunch> local_launch_for_run(Args& args);

// Starts the processes and waits for them; the exit code of the run (0 when every rank finished).
int launch_local_processes(const LocalLaunch& launch);

}  // namespace repa::app
