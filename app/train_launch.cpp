// The local launcher of data-parallel runs (app/local_launch.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "app/local_launch.h"
#include "core/base/error.h"
#include "core/train/config_values.h"
#include "core/train/distributed.h"

extern char** environ;

namespace repa::app {

namespace {

constexpr int kMaxProcesses = 64;
// The handler forwards signals to these (kill is async-signal-safe).
pid_t g_children[kMaxProcesses];
volatile sig_atomic_t g_child_count = 0;

void forward_signal(int signal_number) {
  for (int k = 0; k < g_child_count; ++k)
    if (g_children[k] > 0) ::kill(g_children[k], signal_number);
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + std::string(::strsignal(sig)) + ")";
  }
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

// The run's exit code from a rank's: bad input stays 2, anything else that is not success is 1.
int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status) == 2 ? 2 : (WEXITSTATUS(status) == 0 ? 0 : 1);
  return 1;
}

}  // namespace

int take_nproc_per_node(Args& args) {
  int n = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--nproc-per-node" && args[i] != "--nproc_per_node") continue;
    if (i + 1 >= args.size()) throw InputError("--nproc-per-node expects a number of processes");
    const std::string& text = args[i + 1];
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(text.c_str(), &end, 10);
    if (end == text.c_str() || *end != '\0' || errno == ERANGE || value < 1 || value > kMaxProcesses)
      throw InputError("--nproc-per-node expects a whole number from 1 to " + std::to_string(kMaxProcesses) +
                       ", got '" + text + "'");
    n = static_cast<int>(value);
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    --i;
  }
  return n;
}

std::optional<LocalLaunch> local_launch_request(const Args& args, int configured_processes) {
  LocalLaunch launch;
  launch.child_args = args;
  const int flag = take_nproc_per_node(launch.child_args);
  const bool launched_rank = std::getenv("WORLD_SIZE") != nullptr;
  if (flag > 0 && launched_rank)
    throw InputError(
        "--nproc-per-node inside a launched process (WORLD_SIZE is set): start the run either with "
        "--nproc-per-node or with a launcher's RANK/WORLD_SIZE, not both");
  if (launched_rank) return std::nullopt;
  launch.processes = flag > 0 ? flag : std::max(1, configured_processes);
  if (launch.processes <= 1) return std::nullopt;
  // The machine's threads are shared: each process gets its part (at least one).
  launch.threads = std::max(1, torch::get_num_threads() / launch.processes);
  return launch;
}

// In app/train_run.cpp.
nlohmann::json resolve_run_config(const Args& args, std::string* events_mode, std::vector<std::string>* warnings);

std::optional<LocalLaunch> local_launch_for_run(Args& args) {
  auto launch = local_launch_request(args, 1);
  args = launch ? launch->child_args : [&] {
    Args stripped = args;
    take_nproc_per_node(stripped);
    return stripped;
  }();
  if (launch || std::getenv("WORLD_SIZE")) return launch;
  std::string events_mode;
  const auto config = resolve_run_config(args, &events_mode, nullptr);
  const auto configured = train::integer_or(train::studio_settings(config), "num_processes", 1);
  return local_launch_request(args, static_cast<int>(configured));
}

int launch_local_processes(const LocalLaunch& launch) {
  const int n = launch.processes;
  char exe[4096];
  const ssize_t length = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (length <= 0) throw Error("cannot find this program's path (/proc/self/exe) to start the processes");
  exe[length] = '\0';
  const char* port_text = std::getenv("MASTER_PORT");
  const int port = port_text && *port_text ? std::atoi(port_text) : train::free_local_port();
  const char* addr_text = std::getenv("MASTER_ADDR");
  const std::string addr = addr_text && *addr_text ? addr_text : "127.0.0.1";

  // Everything exec needs is built before fork: the child may only call async-signal-safe functions.
  std::vector<std::string> argv_text = {exe, "--threads", std::to_string(launch.threads), "run"};
  argv_text.insert(argv_text.end(), launch.child_args.begin(), launch.child_args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::vector<std::string>> env_text(static_cast<std::size_t>(n));
  std::vector<std::vector<char*>> envp(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    auto& env = env_text[static_cast<std::size_t>(r)];
    for (char** e = environ; *e; ++e) {
      const std::string entry = *e;
      const auto name = entry.substr(0, entry.find('='));
      if (name == "RANK" || name == "WORLD_SIZE" || name == "LOCAL_RANK" || name == "LOCAL_WORLD_SIZE" ||
          name == "MASTER_ADDR" || name == "MASTER_PORT" || name == "REPA_NUM_THREADS" || name == "OMP_NUM_THREADS")
        continue;
      env.push_back(entry);
    }
    env.push_back("RANK=" + std::to_string(r));
    env.push_back("LOCAL_RANK=" + std::to_string(r));
    env.push_back("WORLD_SIZE=" + std::to_string(n));
    env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(n));
    env.push_back("MASTER_ADDR=" + addr);
    env.push_back("MASTER_PORT=" + std::to_string(port));
    env.push_back("OMP_NUM_THREADS=" + std::to_string(launch.threads));
    for (auto& e : env) envp[static_cast<std::size_t>(r)].push_back(e.data());
    envp[static_cast<std::size_t>(r)].push_back(nullptr);
  }

  struct sigaction action {};
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &action, nullptr);
  const pid_t launcher = ::getpid();
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      forward_signal(SIGKILL);
      throw Error(std::string("cannot start rank ") + std::to_string(r) + ": " + std::strerror(errno));
    }
    if (pid == 0) {
      // Own process group: a terminal's Ctrl-C reaches the launcher once and is forwarded once.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(1);
      for (int s : {SIGINT, SIGTERM, SIGHUP}) ::signal(s, SIG_DFL);
      if (r != 0) {
        // Commands on stdin go to rank 0, which decides for all.
        const int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
      }
      ::execve(exe, argv.data(), envp[static_cast<std::size_t>(r)].data());
      ::_exit(127);
    }
    pids.push_back(pid);
    g_children[r] = pid;
    g_child_count = r + 1;
  }
  std::fprintf(stderr, "repa-train run: %d processes (ranks 0-%d, %d thread%s each, rendezvous %s:%d)\n", n, n - 1,
               launch.threads, launch.threads == 1 ? "" : "s", addr.c_str(), port);

  std::vector<int> status(static_cast<std::size_t>(n), -1);
  int running = n, first_failure = -1, code = 0;
  std::chrono::steady_clock::time_point failed_at;
  bool terminated = false, killed = false;
  while (running > 0) {
    int st = 0;
    const pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < n; ++r) {
        if (pids[static_cast<std::size_t>(r)] != pid) continue;
        status[static_cast<std::size_t>(r)] = st;
        g_children[r] = -1;
        --running;
        const int rank_code = exit_code_of(st);
        if (rank_code != 0 && first_failure < 0) {
          first_failure = r;
          code = rank_code;
          failed_at = std::chrono::steady_clock::now();
          std::fprintf(stderr, "repa-train run: rank %d of %d (pid %d) %s%s\n", r, n, static_cast<int>(pid),
                       describe_exit(st).c_str(), running > 0 ? "; the other ranks stop" : "");
        } else if (rank_code != 0 && code == 0) {
          code = rank_code;
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    // The survivors notice a dead rank at their next collective and end with their own message; a grace,
    // then SIGTERM (checkpoint attempt), then SIGKILL for one stuck in computation.
    if (first_failure >= 0) {
      const auto waited = std::chrono::steady_clock::now() - failed_at;
      if (!terminated && waited > std::chrono::seconds(20)) {
        terminated = true;
        forward_signal(SIGTERM);
      } else if (!killed && waited > std::chrono::seconds(30)) {
        killed = true;
        forward_signal(SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  g_child_count = 0;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::signal(s, SIG_DFL);
  if (first_failure >= 0 && code == 0) code = 1;
  return code;
}

}  // namespace repa::app
