#include "core/base/memory.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <map>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <dlfcn.h>

namespace repa {

std::string keep_freed_memory() {
  if (std::getenv("REPA_MALLOC_DEFAULT")) return "malloc: glibc defaults (REPA_MALLOC_DEFAULT is set)";
#if defined(__GLIBC__)
  constexpr int kMmapThreshold = 32 << 20;  // glibc refuses more than HEAP_MAX_SIZE / 2 = 32 MB
  constexpr int kTrimThreshold = 1 << 30;
  constexpr int kTopPad = 64 << 20;
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1 &&
                  mallopt(M_TOP_PAD, kTopPad) == 1;
  return ok ? "malloc: freed blocks kept for reuse (mmap threshold 32 MB, trim threshold 1 GB)"
            : "malloc: glibc refused the thresholds; defaults in force";
#else
  return "malloc: the platform's defaults (not glibc)";
#endif
}

namespace {

// /proc/meminfo's fields in bytes ("MemAvailable:  123 kB").
std::map<std::string, double> meminfo() {
  std::map<std::string, double> fields;
  std::ifstream in("/proc/meminfo");
  std::string name, unit;
  double value = 0;
  while (in >> name >> value) {
    std::getline(in, unit);
    if (!name.empty() && name.back() == ':') name.pop_back();
    fields[name] = value * (unit.find("kB") != std::string::npos ? 1024.0 : 1.0);
  }
  return fields;
}

}  // namespace

// A cgroup v2 limit (a container's memory.max) bounds what the process gets, whatever the machine has.
static double cgroup_headroom() {
  std::ifstream max_file("/sys/fs/cgroup/memory.max"), current_file("/sys/fs/cgroup/memory.current");
  double limit = 0, current = 0;
  if (!(max_file >> limit) || !(current_file >> current)) return -1;  // "max": no limit
  return std::max(0.0, limit - current);
}

double available_memory_bytes() {
  auto fields = meminfo();
  if (!fields.count("MemAvailable")) return 0;
  double available = fields["MemAvailable"] + fields["SwapFree"];
  const double headroom = cgroup_headroom();
  if (headroom >= 0) available = std::min(available, headroom);
  return available;
}

double total_memory_bytes() {
  auto fields = meminfo();
  return fields["MemTotal"] + fields["SwapTotal"];
}

bool cuda_memory_bytes(double* free_bytes, double* total_bytes) {
  // Looked up at run time: a CPU-only build links no CUDA library, a CUDA LibTorch has libcudart loaded.
  using MemGetInfo = int (*)(std::size_t*, std::size_t*);
  void* runtime = nullptr;
  for (const char* name : {"libcudart.so", "libcudart.so.12", "libcudart.so.11.0"})
    if ((runtime = dlopen(name, RTLD_LAZY | RTLD_NOLOAD)) != nullptr) break;
  if (runtime == nullptr) return false;
  const auto mem_get_info = reinterpret_cast<MemGetInfo>(dlsym(runtime, "cudaMemGetInfo"));
  std::size_t free_memory = 0, total_memory = 0;
  const bool ok = mem_get_info != nullptr && mem_get_info(&free_memory, &total_memory) == 0 && total_memory > 0;
  dlclose(runtime);
  if (!ok) return false;
  *free_bytes = static_cast<double>(free_memory);
  *total_bytes = static_cast<double>(total_memory);
  return true;
}

}  // namespace repa
