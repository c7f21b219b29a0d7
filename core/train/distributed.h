// Data-parallel training on PyTorch's c10d: one process per device, configured as torchrun and SLURM
// configure them (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), a TCPStore rendezvous on rank 0,
// Gloo on CPU and NCCL when the build has it. Every collective has a timeout, and a failed one names the
// rank that died or stopped answering, so every surviving rank ends with the same message.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/base/error.h"

namespace repa::train {

// A collective that failed: a rank died, timed out or reported its own failure. The message names the rank.
class DistributedError : public Error {
 public:
  using Error::Error;
};

// Where this process sits in the run. World size 1 (no variables set) is an ordinary single-process run.
struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;

  bool enabled() const { return world_size > 1; }
  // RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT, else SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID; a
  // malformed or inconsistent value throws InputError naming the variable.
  static DistributedEnv from_environment();
};

struct DistributedOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};  // rendezvous and every collective
  std::string backend = "auto";  // auto (NCCL for CUDA tensors when built with it, else Gloo), gloo, nccl
  bool cuda = false;             // the run's tensors live on CUDA (selects NCCL under "auto")
};

// True when this build can create a Gloo (CPU) or NCCL (CUDA) process group.
bool gloo_available();
bool nccl_available();

class DataParallel {
 public:
  // Rendezvous with every rank (rank 0 hosts the TCPStore); throws DistributedError after the timeout.
  DataParallel(const DistributedEnv& env, const DistributedOptions& options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }
  const std::string& backend_name() const { return backend_name_; }

  // Rank 0's values into every rank's tensors, in place (coalesced per dtype).
  void broadcast_from_main(const std::vector<torch::Tensor>& tensors);
  // Sum over ranks in place.
  void all_reduce_sum(torch::Tensor& tensor);
  // The same, started now; the returned function waits for it (rethrowing a named failure).
  std::function<void()> all_reduce_sum_async(torch::Tensor tensor);
  // The mean over ranks of each value (one all-reduce for the lot).
  std::vector<double> average(const std::vector<double>& values);
  // True on every rank when any rank passes true (stops and checkpoints at the same step everywhere).
  bool any(bool flag);
  void barrier();

  // Rank 0's `value` on every rank (the run folder's name, the checkpoint to resume), through the store.
  std::string share_from_main(const std::string& key, const std::string& value);

  // Whether the run stops before `step`: rank 0 decides (its commands, any rank's signal) and publishes
  // the decision in the store; the others wait for it without a deadline, so a paused rank 0 holds them
  // while their heartbeats go on.
  bool stop_together(int64_t step, bool stop_here);

  // Rank 0's CPU random generator state on every rank (set-up may have drawn differently per rank).
  void broadcast_cpu_generator();

  // Runs `work` on rank 0 first (filling caches), then on the other ranks, which wait in the store without
  // a collective timeout (a cache may take hours) but stop when rank 0 fails or dies.
  void main_first(const std::string& what, const std::function<void()>& work);

  // Runs `work` on every rank at once (each filling its share of a cache), then waits, without a collective
  // timeout, until every rank has finished; stops when any rank fails or dies, naming it.
  void each_share(const std::string& what, const std::function<void()>& work);

  // Tells the other ranks why this rank is about to fail, so their message names it.
  void report_failure(const std::string& message) noexcept;

  // Rewrites a collective's error into one that names the failed rank(s) (reads heartbeats and failure notes).
  [[noreturn]] void rethrow_named(const std::string& during, const std::exception& error);

  // What the failing collective's survivors should say (used by rethrow_named; exposed for tests).
  std::string diagnose(const std::string& during, const std::string& error);

  // Seconds spent waiting for collectives since the last call (the bench's all-reduce time).
  double take_wait_seconds();
  void add_wait_seconds(double seconds);

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  DistributedEnv env_;
  DistributedOptions options_;
  std::string backend_name_;
  std::unique_ptr<Impl> impl_;
};

// A free TCP port on 127.0.0.1 (tests and the local launcher pick MASTER_PORT with it).
int free_local_port();

// The rows of a global batch that belong to `rank`: [rank·per_rank, (rank+1)·per_rank) of dimension 0.
torch::Tensor rank_slice(const torch::Tensor& global, int rank, int world_size);

}  // namespace repa::train
