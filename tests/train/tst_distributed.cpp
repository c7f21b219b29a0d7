// c10d data parallelism on CPU with Gloo over 127.0.0.1: the environment a launcher sets, rank 0's weights
// broadcast, scalars averaged, bucketed gradient all-reduce equal to one process's full-batch gradient (with
// accumulation and unused parameters), and a dead or failing rank named on the survivor.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>

#include "core/base/error.h"
#include "core/train/distributed.h"
#include "core/train/gradient_buckets.h"
#include "tests/test_support.h"

using namespace repa::train;

namespace {

// Runs body(rank) in `world` forked processes; returns each child's exit code (124: killed after 60 s).
std::vector<int> run_ranks(int world, const std::function<int(const DistributedEnv&)>& body) {
  DistributedEnv env;
  env.world_size = world;
  env.master_port = free_local_port();
  std::vector<pid_t> children;
  std::fflush(nullptr);  // children must not print the parent's buffered output again
  for (int r = 0; r < world; ++r) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      torch::set_num_threads(1);
      int code = 99;
      try {
        DistributedEnv mine = env;
        mine.rank = mine.local_rank = r;
        code = body(mine);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        code = 98;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    children.push_back(pid);
  }
  std::vector<int> codes(children.size(), -1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::size_t left = children.size();
  while (left > 0) {
    for (std::size_t k = 0; k < children.size(); ++k) {
      if (codes[k] != -1) continue;
      int status = 0;
      if (::waitpid(children[k], &status, WNOHANG) == children[k]) {
        codes[k] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        --left;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (std::size_t k = 0; k < children.size(); ++k)
        if (codes[k] == -1) {
          ::kill(children[k], SIGKILL);
          ::waitpid(children[k], nullptr, 0);
          codes[k] = 124;
          --left;
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return codes;
}

DistributedOptions quick(int seconds = 20) {
  DistributedOptions options;
  options.timeout = std::chrono::seconds(seconds);
  return options;
}

struct ScopedEnv {
  using Values = std::vector<std::pair<std::string, std::string>>;
  explicit ScopedEnv(Values values) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_NTASKS",
                             "SLURM_PROCID", "SLURM_LOCALID"})
      ::unsetenv(name);
    for (const auto& [k, v] : values) ::setenv(k.c_str(), v.c_str(), 1);
    names = std::move(values);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : names) ::unsetenv(k.c_str());
  }
  std::vector<std::pair<std::string, std::string>> names;
};

torch::nn::Sequential small_net() {
  return torch::nn::Sequential(torch::nn::Linear(5, 7), torch::nn::Tanh(), torch::nn::Linear(7, 3));
}

}  // namespace

TEST_CASE("the launcher's environment: torchrun names, SLURM names, and named errors") {
  {
    ScopedEnv env(ScopedEnv::Values{{"RANK", "1"},
                                    {"WORLD_SIZE", "4"},
                                    {"LOCAL_RANK", "1"},
                                    {"MASTER_ADDR", "10.0.0.2"},
                                    {"MASTER_PORT", "29555"}});
    const auto d = DistributedEnv::from_environment();
    CHECK(d.rank == 1);
    CHECK(d.world_size == 4);
    CHECK(d.local_rank == 1);
    CHECK(d.master_addr == "10.0.0.2");
    CHECK(d.master_port == 29555);
    CHECK(d.enabled());
  }
  {
    ScopedEnv env(ScopedEnv::Values{});
    const auto d = DistributedEnv::from_environment();
    CHECK(d.world_size == 1);
    CHECK_FALSE(d.enabled());
  }
  {
    ScopedEnv env(ScopedEnv::Values{{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "1"}, {"SLURM_LOCALID", "0"}});
    const auto d = DistributedEnv::from_environment();
    CHECK(d.world_size == 2);
    CHECK(d.rank == 1);
    CHECK(d.local_rank == 0);
  }
  {
    ScopedEnv env(ScopedEnv::Values{{"WORLD_SIZE", "2"}});
    CHECK(repa::test::contains(repa::test::error_of([] { DistributedEnv::from_environment(); }), "RANK is not set"));
  }
  {
    ScopedEnv env(ScopedEnv::Values{{"WORLD_SIZE", "2"}, {"RANK", "2"}});
    CHECK(repa::test::contains(repa::test::error_of([] { DistributedEnv::from_environment(); }),
                               "RANK 2 is not below WORLD_SIZE 2"));
  }
  {
    ScopedEnv env(ScopedEnv::Values{{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "29x"}});
    CHECK(repa::test::contains(repa::test::error_of([] { DistributedEnv::from_environment(); }), "MASTER_PORT='29x'"));
  }
}

TEST_CASE("rank_slice keeps this rank's rows of the global batch") {
  const auto global = torch::arange(12).reshape({6, 2});
  CHECK(torch::equal(rank_slice(global, 1, 3), torch::tensor({4, 5, 6, 7}).reshape({2, 2})));
  CHECK(torch::equal(rank_slice(global, 0, 1), global));
  CHECK_THROWS_AS(rank_slice(global, 0, 4), repa::Error);
}

TEST_CASE("two ranks: weights broadcast from rank 0, scalars averaged, any() agreed") {
  const auto codes = run_ranks(2, [](const DistributedEnv& env) {
    DataParallel group(env, quick());
    if (group.backend_name() != "gloo") return 10;
    torch::manual_seed(100 + static_cast<uint64_t>(env.rank));  // different weights on purpose
    auto net = small_net();
    std::vector<torch::Tensor> weights;
    for (auto& p : net->parameters()) weights.push_back(p);
    group.broadcast_from_main(weights);
    torch::manual_seed(100);  // what rank 0 drew
    auto reference = small_net();
    for (std::size_t k = 0; k < weights.size(); ++k)
      if (!torch::equal(weights[k], reference->parameters()[k])) return 11;
    const auto mean = group.average({static_cast<double>(env.rank + 1), 10.0 * env.rank});
    if (mean.size() != 2 || mean[0] != 1.5 || mean[1] != 5.0) return 12;
    if (!group.any(env.rank == 1) || group.any(false)) return 13;
    group.barrier();
    return 0;
  });
  CHECK(codes == std::vector<int>{0, 0});
}

TEST_CASE("bucketed gradient all-reduce equals one process's gradient of the whole batch") {
  // The global batch of 8 and its loss: each rank takes 4 rows, micro-batches of 2 with accumulation.
  torch::manual_seed(7);
  const auto inputs = torch::randn({8, 5});
  const auto targets = torch::randn({8, 3});
  torch::manual_seed(8);
  auto reference = small_net();
  torch::nn::functional::mse_loss(reference->forward(inputs), targets).backward();
  repa::test::ScratchDir scratch("repa-dist-grad");
  for (std::size_t k = 0; k < reference->parameters().size(); ++k)
    torch::save(reference->parameters()[k].grad(), scratch.file("grad" + std::to_string(k) + ".pt"));

  const auto codes = run_ranks(2, [&](const DistributedEnv& env) {
    DataParallel group(env, quick());
    torch::manual_seed(8);
    auto net = small_net();
    auto extra = torch::zeros({4}, torch::requires_grad());  // never used: keeps no gradient
    // First in the list, so in the last bucket: buckets start in order and an unused parameter holds its
    // bucket until the backward ends.
    std::vector<torch::Tensor> params{extra};
    for (auto& p : net->parameters()) params.push_back(p);
    GradientBuckets buckets(group, params, /*bucket_bytes=*/64);  // several buckets, started in order
    if (buckets.bucket_count() < 3) return 20;
    const auto mine_x = rank_slice(inputs, env.rank, 2);
    const auto mine_y = rank_slice(targets, env.rank, 2);
    for (int step = 0; step < 2; ++step) {  // twice: the buckets reset between steps
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      for (int micro = 0; micro < 2; ++micro) {
        buckets.prepare_backward(micro == 1);
        const auto x = mine_x.narrow(0, 2 * micro, 2), y = mine_y.narrow(0, 2 * micro, 2);
        (torch::nn::functional::mse_loss(net->forward(x), y) / 2.0).backward();
      }
      buckets.finish();
      if (buckets.buckets_started_during_backward() < 1) return 21;
      for (std::size_t k = 1; k < params.size(); ++k) {
        torch::Tensor expected;
        torch::load(expected, scratch.file("grad" + std::to_string(k - 1) + ".pt"));
        if (!torch::allclose(params[k].grad(), expected, 1e-5, 1e-6)) return 22;
      }
      if (extra.grad().defined()) return 23;
    }
    if (buckets.bytes_per_step() != (5 * 7 + 7 + 7 * 3 + 3 + 4) * 4) return 24;
    return 0;
  });
  CHECK(codes == std::vector<int>{0, 0});
}

TEST_CASE("a rank killed with SIGKILL is named by the survivor, which stops") {
  repa::test::ScratchDir scratch("repa-dist-dead");
  const std::string message_file = scratch.file("message.txt");
  const auto codes = run_ranks(2, [&](const DistributedEnv& env) {
    DataParallel group(env, quick(30));
    auto t = torch::ones({16});
    group.all_reduce_sum(t);
    if (env.rank == 1) ::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    try {
      group.all_reduce_sum(t);
    } catch (const DistributedError& e) {
      std::ofstream(message_file) << e.what();
      return 3;
    }
    return 0;
  });
  CHECK(codes == std::vector<int>{3, 128 + SIGKILL});
  const auto message = repa::test::read_bytes(message_file);
  INFO(message);
  CHECK(repa::test::contains(message, "rank 1 of 2 stopped responding"));
  CHECK(repa::test::contains(message, "rank 0 stops too"));
}

TEST_CASE("rank 0 killed: the other rank names the store's host") {
  repa::test::ScratchDir scratch("repa-dist-dead0");
  const std::string message_file = scratch.file("message.txt");
  const auto codes = run_ranks(2, [&](const DistributedEnv& env) {
    DataParallel group(env, quick(30));
    auto t = torch::ones({16});
    group.all_reduce_sum(t);
    if (env.rank == 0) ::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    try {
      group.all_reduce_sum(t);
    } catch (const DistributedError& e) {
      std::ofstream(message_file) << e.what();
      return 3;
    }
    return 0;
  });
  CHECK(codes == std::vector<int>{128 + SIGKILL, 3});
  const auto message = repa::test::read_bytes(message_file);
  INFO(message);
  CHECK(repa::test::contains(message, "rank 0 of 2 (host of the rendezvous store"));
}

TEST_CASE("rank 0's failure while filling caches stops the waiting rank with rank 0's message") {
  repa::test::ScratchDir scratch("repa-dist-first");
  const std::string message_file = scratch.file("message.txt");
  const std::string order_file = scratch.file("order.txt");
  const auto codes = run_ranks(2, [&](const DistributedEnv& env) {
    DataParallel group(env, quick());
    // First call succeeds: rank 1 runs only after rank 0 finished.
    group.main_first("filling the latent cache", [&] {
      if (env.rank == 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
      std::ofstream(order_file, std::ios::app) << env.rank;
    });
    try {
      group.main_first("filling the teacher cache", [&] {
        if (env.rank == 0) throw repa::InputError("image 7 is corrupt");
      });
    } catch (const std::exception& e) {
      if (env.rank == 1) std::ofstream(message_file) << e.what();
      return env.rank == 0 ? 4 : 5;
    }
    return 0;
  });
  CHECK(codes == std::vector<int>{4, 5});
  CHECK(repa::test::read_bytes(order_file) == "01");
  const auto message = repa::test::read_bytes(message_file);
  INFO(message);
  CHECK(repa::test::contains(message, "rank 0 of 2 failed while filling the teacher cache: image 7 is corrupt"));
}

TEST_CASE("no process at the master's port: joining fails within the timeout and says where") {
  DistributedEnv env;
  env.world_size = 2;
  env.rank = 1;
  env.master_port = free_local_port();
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    DataParallel group(env, quick(2));
  } catch (const DistributedError& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(repa::test::contains(message,
                             "rank 1 of 2 could not join the run at 127.0.0.1:" + std::to_string(env.master_port)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
}

TEST_CASE("rank 0 shares the run folder, the random state, and when to stop; any rank may ask to stop") {
  const auto codes = run_ranks(2, [](const DistributedEnv& env) {
    DataParallel group(env, quick());
    const auto folder = group.share_from_main("run_dir", env.rank == 0 ? "runs/a" : "runs/other");
    if (folder != "runs/a") return 30;
    torch::manual_seed(static_cast<uint64_t>(env.rank));  // set-up drew differently per rank
    group.broadcast_cpu_generator();
    auto draw = torch::randn({4});
    torch::manual_seed(0);
    if (!torch::equal(draw, torch::randn({4}))) return 31;
    for (int64_t step = 0; step < 6; ++step) {
      // Rank 1 is signalled before step 3: rank 0 may have published step 3 already, so both stop before the
      // same step, 3 or 4. The barrier stands for a step's gradient all-reduce.
      if (group.stop_together(step, env.rank == 1 && step >= 3)) return 40 + static_cast<int>(step);
      group.barrier();
    }
    return 0;
  });
  CHECK(codes[0] == codes[1]);
  CHECK((codes[0] == 43 || codes[0] == 44));
}

TEST_CASE("the first bucket closes at 1 MiB, as DDP's, so the last layers' gradients travel early") {
  const auto codes = run_ranks(1, [](const DistributedEnv& env) {
    DataParallel group(env, quick());
    torch::nn::Linear big(512, 512), head(512, 8);  // 1 MiB + 2 KiB, then 16 KiB + 32 B
    std::vector<torch::Tensor> params = big->parameters();
    for (auto& p : head->parameters()) params.push_back(p);
    GradientBuckets by_default(group, params);
    GradientBuckets one_size(group, params, 25ll << 20, 25ll << 20);
    if (by_default.bucket_count() != 2 || one_size.bucket_count() != 1) return 40;
    if (by_default.bytes_per_step() != (512 * 512 + 512 + 512 * 8 + 8) * 4) return 41;
    return 0;
  });
  CHECK(codes == std::vector<int>{0});
}
