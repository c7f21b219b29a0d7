#include "core/train/distributed.h"

#include <ATen/CPUGeneratorImpl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

// Gloo's c10d headers compile only with USE_C10D_GLOO and the Gloo headers (Debian: libgloo-dev); the
// symbols are in libtorch_cpu either way.
#if __has_include(<gloo/config.h>)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#define REPA_HAVE_GLOO 1
#else
#define REPA_HAVE_GLOO 0
#endif

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if REPA_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
// CMake defines REPA_WITH_NCCL only for a CUDA libtorch with nccl.h (cmake/RepaDistributed.cmake).
#ifdef REPA_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <c10/cuda/CUDAFunctions.h>

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "core/base/stop_request.h"

namespace repa::train {

namespace {

// 2.0 split the collective implementations (Backend) from the user-facing ProcessGroup.
#if TORCH_VERSION_MAJOR >= 2
using CollectiveBackend = c10d::Backend;
#else
using CollectiveBackend = c10d::ProcessGroup;
#endif

int env_int(const char* name, int fallback, int min_value, bool* present = nullptr) {
  const char* text = std::getenv(name);
  if (present) *present = text != nullptr && *text != '\0';
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || value < min_value || value > 65535)
    throw InputError(std::string("environment variable ") + name + "='" + text + "' is not a whole number from " +
                     std::to_string(min_value) + " to 65535");
  return static_cast<int>(value);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::string store_key_heartbeat(int rank) {
  return "repa/heartbeat/" + std::to_string(rank);
}
std::string store_key_failed(int rank) {
  return "repa/failed/" + std::to_string(rank);
}

std::vector<uint8_t> bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}
std::string text_of(const std::vector<uint8_t>& bytes) {
  return {bytes.begin(), bytes.end()};
}

}  // namespace

bool gloo_available() {
  return REPA_HAVE_GLOO != 0;
}

bool nccl_available() {
#ifdef REPA_WITH_NCCL
  return true;
#else
  return false;
#endif
}

DistributedEnv DistributedEnv::from_environment() {
  DistributedEnv env;
  bool has_world = false, has_rank = false;
  env.world_size = env_int("WORLD_SIZE", 1, 1, &has_world);
  env.rank = env_int("RANK", 0, 0, &has_rank);
  env.local_rank = env_int("LOCAL_RANK", env.rank, 0);
  // SLURM's srun describes the same thing under its own names; MASTER_ADDR still comes from the job script.
  if (!has_world && std::getenv("SLURM_NTASKS") && std::getenv("SLURM_PROCID")) {
    env.world_size = env_int("SLURM_NTASKS", 1, 1);
    env.rank = env_int("SLURM_PROCID", 0, 0);
    env.local_rank = env_int("SLURM_LOCALID", 0, 0);
    has_rank = true;
  }
  if (env.world_size > 1 && !has_rank)
    throw InputError("WORLD_SIZE is " + std::to_string(env.world_size) +
                     " but RANK is not set (each process needs its RANK, 0 to WORLD_SIZE-1)");
  if (env.rank >= env.world_size)
    throw InputError("RANK " + std::to_string(env.rank) + " is not below WORLD_SIZE " + std::to_string(env.world_size));
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) env.master_addr = addr;
  env.master_port = env_int("MASTER_PORT", 29500, 1);
  return env;
}

struct DataParallel::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<CollectiveBackend> backend;
  torch::Device scalar_device{torch::kCPU};
  std::atomic<bool> stopping{false};
  std::thread heartbeat;
  std::mutex wait_mutex;
  double wait_seconds = 0.0;
};

namespace {

c10::intrusive_ptr<c10d::TCPStore> connect_store(const DistributedEnv& env, bool server,
                                                 std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(env.master_port);
  options.isServer = server;
  options.numWorkers = env.world_size;
  // Ranks meet in the process group's rendezvous, which has the run's timeout; extra clients (heartbeats,
  // diagnosis) must not count as workers.
  options.waitWorkers = false;
  options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
}

}  // namespace

DataParallel::DataParallel(const DistributedEnv& env, const DistributedOptions& options)
    : env_(env), options_(options), impl_(std::make_unique<Impl>()) {
  if (env_.world_size < 1 || env_.rank < 0 || env_.rank >= env_.world_size)
    throw InputError("rank " + std::to_string(env_.rank) + " of world size " + std::to_string(env_.world_size) +
                     " is not a valid place in the run");
  std::string backend = options_.backend;
  if (backend == "auto") backend = options_.cuda && nccl_available() ? "nccl" : "gloo";
  if (backend != "gloo" && backend != "nccl")
    throw InputError("distributed backend '" + options_.backend + "' is unknown (auto, gloo, nccl)");
  if (backend == "nccl" && !nccl_available())
    throw InputError("the NCCL backend was asked for, but this build has no NCCL (a CUDA libtorch and nccl.h)");
  if (backend == "gloo" && !gloo_available())
    throw InputError(
        "multi-process training needs Gloo, but this build has no Gloo headers (install libgloo-dev "
        "and rebuild)");
  if (backend == "gloo" && options_.cuda)
    throw InputError("the Gloo backend here reduces CPU tensors only: run with studio.device cpu or build with NCCL");
  backend_name_ = backend;
  try {
    impl_->store = connect_store(env_, env_.rank == 0, options_.timeout);
#ifdef REPA_WITH_NCCL
    if (backend == "nccl") {
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(env_.local_rank));
      impl_->scalar_device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env_.local_rank));
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options_.timeout;
      impl_->backend =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env_.rank, env_.world_size, nccl_options);
    }
#endif
#if REPA_HAVE_GLOO
    if (backend == "gloo") {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(options_.timeout);
      const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
      if (is_loopback(env_.master_addr))
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else if (interface && *interface)
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
      else
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      gloo_options->threads = 2;
      // The constructor connects every pair of ranks through the store: the rendezvous.
      impl_->backend =
          c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env_.rank, env_.world_size, gloo_options);
    }
#endif
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) +
                           " could not join the run at " + env_.master_addr + ":" + std::to_string(env_.master_port) +
                           " within " + std::to_string(options_.timeout.count() / 1000) +
                           " s (are all ranks started, and MASTER_ADDR/MASTER_PORT the same for all?): " + e.what());
  }
  if (!impl_->backend) throw InputError("no " + backend + " backend in this build");
  // A heartbeat of our own on a separate connection: after a failed collective, the survivors read whose
  // counter stopped to name the dead rank.
  auto heartbeat_store = connect_store(env_, false, options_.timeout);
  impl_->heartbeat = std::thread([this, heartbeat_store] {
    const std::string key = store_key_heartbeat(env_.rank);
    while (!impl_->stopping) {
      try {
        heartbeat_store->add(key, 1);
      } catch (const std::exception&) {
        return;  // the store is gone (rank 0 ended); whoever needs it reports that
      }
      for (int i = 0; i < 5 && !impl_->stopping; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

DataParallel::~DataParallel() {
  impl_->stopping = true;
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
  // Rank 0 hosts the store: leaving first would fail the others' last store calls, so it waits briefly for
  // their goodbyes.
  try {
    impl_->store->add("repa/left", 1);
    if (env_.rank == 0) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (impl_->store->add("repa/left", 0) < env_.world_size && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (const std::exception&) {
    // Leaving is best effort: the run's outcome is already decided.
  }
}

double DataParallel::take_wait_seconds() {
  std::lock_guard<std::mutex> lock(impl_->wait_mutex);
  const double s = impl_->wait_seconds;
  impl_->wait_seconds = 0.0;
  return s;
}

void DataParallel::add_wait_seconds(double seconds) {
  std::lock_guard<std::mutex> lock(impl_->wait_mutex);
  impl_->wait_seconds += seconds;
}

void DataParallel::report_failure(const std::string& message) noexcept {
  try {
    impl_->store->set(store_key_failed(env_.rank), bytes_of(message));
  } catch (...) {
    // The store may be gone with rank 0; the others then name rank 0 or see this rank's heartbeat stop.
  }
}

std::string DataParallel::diagnose(const std::string& during, const std::string& error) {
  const std::string world = " of " + std::to_string(env_.world_size);
  std::string named;
  try {
    auto store = connect_store(env_, false, std::chrono::seconds(3));
    for (int r = 0; r < env_.world_size; ++r) {
      if (r == env_.rank || !store->check({store_key_failed(r)})) continue;
      named += (named.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + world +
               " failed: " + text_of(store->get(store_key_failed(r)));
    }
    if (named.empty()) {
      // A live rank's heartbeat advances every 0.5 s; one that stands still for 2 s is dead or hung.
      std::vector<int64_t> before(static_cast<std::size_t>(env_.world_size));
      for (int r = 0; r < env_.world_size; ++r)
        before[static_cast<std::size_t>(r)] = store->add(store_key_heartbeat(r), 0);
      std::this_thread::sleep_for(std::chrono::seconds(2));
      for (int r = 0; r < env_.world_size; ++r) {
        if (r == env_.rank || store->add(store_key_heartbeat(r), 0) != before[static_cast<std::size_t>(r)]) continue;
        named += (named.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + world;
      }
      if (!named.empty()) named += " stopped responding (the process died or hangs)";
    }
  } catch (const std::exception&) {
    named = "rank 0" + world + " (host of the rendezvous store at " + env_.master_addr + ":" +
            std::to_string(env_.master_port) + ") is gone: the process died or the network failed";
  }
  if (named.empty()) named = "a collective failed and no rank could be named";
  return named + "; rank " + std::to_string(env_.rank) + " stops too (" + during + ": " + error + ")";
}

void DataParallel::rethrow_named(const std::string& during, const std::exception& error) {
  if (dynamic_cast<const DistributedError*>(&error)) throw DistributedError(error.what());
  std::string what = error.what();
  // c10 errors carry a C++ backtrace after the first line; the first line is the message.
  if (const auto newline = what.find('\n'); newline != std::string::npos) what.resize(newline);
  throw DistributedError(diagnose(during, what));
}

void DataParallel::all_reduce_sum(torch::Tensor& tensor) {
  const auto start = std::chrono::steady_clock::now();
  try {
    std::vector<at::Tensor> tensors{tensor};
    impl_->backend->allreduce(tensors)->wait();
  } catch (const std::exception& e) {
    rethrow_named("all-reduce", e);
  }
  add_wait_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

std::function<void()> DataParallel::all_reduce_sum_async(torch::Tensor tensor) {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    std::vector<at::Tensor> tensors{std::move(tensor)};
    work = impl_->backend->allreduce(tensors);
  } catch (const std::exception& e) {
    rethrow_named("all-reduce", e);
  }
  return [this, work] {
    const auto start = std::chrono::steady_clock::now();
    try {
      work->wait();
    } catch (const std::exception& e) {
      rethrow_named("gradient all-reduce", e);
    }
    add_wait_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
}

void DataParallel::broadcast_from_main(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (const auto& t : tensors)
    if (t.defined() && t.numel() > 0) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group] : by_type) {
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : group) flat_parts.push_back(t.detach().reshape({-1}));
    std::vector<at::Tensor> flat{torch::cat(flat_parts)};
    try {
      impl_->backend->broadcast(flat)->wait();
    } catch (const std::exception& e) {
      rethrow_named("broadcasting rank 0's weights", e);
    }
    int64_t offset = 0;
    for (auto& t : group) {
      t.detach().copy_(flat[0].narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

std::vector<double> DataParallel::average(const std::vector<double>& values) {
  if (values.empty()) return values;
  auto tensor = torch::tensor(values, torch::kFloat64).to(impl_->scalar_device);
  all_reduce_sum(tensor);
  tensor = (tensor / static_cast<double>(env_.world_size)).cpu();
  return {tensor.data_ptr<double>(), tensor.data_ptr<double>() + tensor.numel()};
}

bool DataParallel::any(bool flag) {
  auto tensor = torch::full({1}, flag ? 1.0 : 0.0, torch::kFloat64).to(impl_->scalar_device);
  all_reduce_sum(tensor);
  return tensor.cpu().item<double>() > 0.0;
}

void DataParallel::barrier() {
  try {
    impl_->backend->barrier()->wait();
  } catch (const std::exception& e) {
    rethrow_named("barrier", e);
  }
}

void DataParallel::main_first(const std::string& what, const std::function<void()>& work) {
  const std::string done_key = "repa/done/" + what;
  if (env_.rank == 0) {
    try {
      work();
    } catch (const std::exception& e) {
      report_failure(e.what());
      throw;
    }
    impl_->store->set(done_key, bytes_of("1"));
    return;
  }
  // The others wait without a deadline while rank 0 is alive and has not failed.
  try {
    while (!impl_->store->check({done_key})) {
      if (impl_->store->check({store_key_failed(0)}))
        throw DistributedError("rank 0 of " + std::to_string(env_.world_size) + " failed while " + what + ": " +
                               text_of(impl_->store->get(store_key_failed(0))) + "; rank " + std::to_string(env_.rank) +
                               " stops too");
      throw_if_stop_requested(what);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_named("waiting for rank 0 " + what, e);
  }
  work();
}

void DataParallel::each_share(const std::string& what, const std::function<void()>& work) {
  try {
    work();
  } catch (const std::exception& e) {
    report_failure(e.what());
    throw;
  }
  const auto done_key = [&](int r) { return "repa/done/" + what + "/" + std::to_string(r); };
  impl_->store->set(done_key(env_.rank), bytes_of("1"));
  try {
    for (int r = 0; r < env_.world_size; ++r) {
      while (!impl_->store->check({done_key(r)})) {
        if (impl_->store->check({store_key_failed(r)}))
          throw DistributedError("rank " + std::to_string(r) + " of " + std::to_string(env_.world_size) +
                                 " failed while " + what + ": " + text_of(impl_->store->get(store_key_failed(r))) +
                                 "; rank " + std::to_string(env_.rank) + " stops too");
        throw_if_stop_requested(what);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_named("waiting for the other ranks " + what, e);
  }
}

std::string DataParallel::share_from_main(const std::string& key, const std::string& value) {
  const std::string store_key = "repa/shared/" + key;
  try {
    if (env_.rank == 0) {
      impl_->store->set(store_key, bytes_of(value));
      return value;
    }
    impl_->store->wait({store_key}, options_.timeout);
    return text_of(impl_->store->get(store_key));
  } catch (const std::exception& e) {
    rethrow_named("receiving " + key + " from rank 0", e);
  }
}

bool DataParallel::stop_together(int64_t step, bool stop_here) {
  const std::string key = "repa/control/" + std::to_string(step);
  try {
    if (env_.rank == 0) {
      const bool stop = stop_here || impl_->store->check({"repa/stop_request"});
      impl_->store->set(key, bytes_of(stop ? "stop" : "go"));
      // Decisions are read once; two steps back no rank can still be waiting for one.
      if (step >= 2) impl_->store->deleteKey("repa/control/" + std::to_string(step - 2));
      return stop;
    }
    if (stop_here && !impl_->store->check({"repa/stop_request"}))
      impl_->store->set("repa/stop_request", bytes_of(std::to_string(env_.rank)));
    // Waits in slices so a rank 0 paused for hours never trips the store's own timeout.
    while (true) {
      try {
        impl_->store->wait({key}, std::chrono::seconds(30));
        break;
      } catch (const std::exception& e) {
        if (!impl_->store->check({key}) && std::string(e.what()).find("imeout") != std::string::npos) continue;
        throw;
      }
    }
    return text_of(impl_->store->get(key)) == "stop";
  } catch (const std::exception& e) {
    rethrow_named("agreeing on step " + std::to_string(step + 1), e);
  }
}

void DataParallel::broadcast_cpu_generator() {
  auto generator = at::detail::getDefaultCPUGenerator();
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    state = generator.get_state();
  }
  broadcast_from_main({state});
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    throw Error("cannot find a free port on 127.0.0.1: " + reason);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

torch::Tensor rank_slice(const torch::Tensor& global, int rank, int world_size) {
  if (world_size == 1) return global;
  const int64_t rows = global.size(0);
  if (rows % world_size != 0)
    throw Error("a global batch of " + std::to_string(rows) + " rows does not split into " +
                std::to_string(world_size) + " ranks");
  const int64_t per_rank = rows / world_size;
  return global.narrow(0, per_rank * rank, per_rank);
}

}  // namespace repa::train
