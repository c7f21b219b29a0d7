// The SimpleTuner export of a data-parallel run: accelerate's launcher settings as SimpleTuner reads them
// (num_processes/num_machines in config.json; TRAINING_NUM_PROCESSES etc. in config.env for train.sh).
#include <doctest/doctest.h>

#include <filesystem>

#include "core/config/export.h"
#include "core/config/loader.h"
#include "tests/test_support.h"

using namespace repa::config;

namespace {
nlohmann::json resolved_with(int processes) {
  const nlohmann::json user = {{"mixed_precision", "bf16"},
                               {"train_batch_size", 3},
                               {"studio", {{"num_processes", processes}, {"distributed_timeout", 60}}}};
  auto report = load_config(user, "", {});
  return report.config;
}

bool mentions(const std::vector<std::string>& notes, const std::string& part) {
  for (const auto& n : notes)
    if (n.find(part) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("two processes: num_processes in config.json and the train.sh variables in config.env") {
  repa::test::ScratchDir dir("repa-export-dp");
  const auto exported = write_simpletuner_export(resolved_with(2), dir.file("out"));
  CHECK(exported.config.at("num_processes") == 2);
  CHECK(exported.config.at("num_machines") == 1);
  CHECK(exported.config.at("train_batch_size") == 3);  // per process, as in accelerate
  const auto env = repa::test::read_bytes(dir.file("out/config.env"));
  CHECK(repa::test::contains(env, "\nTRAINING_NUM_PROCESSES=2\n"));
  CHECK(repa::test::contains(env, "\nTRAINING_NUM_MACHINES=1\n"));
  CHECK(repa::test::contains(env, "\nMIXED_PRECISION=bf16\n"));
  CHECK(repa::test::contains(env, "\nACCELERATE_EXTRA_ARGS=\"--multi_gpu\"\n"));
  CHECK(mentions(exported.dropped, "studio.num_processes = 2: written as num_processes"));
  CHECK_FALSE(mentions(exported.dropped, "studio.num_processes = 2: studio-only"));
  CHECK(mentions(exported.dropped, "studio.distributed_timeout = 60: studio-only setting"));
}

TEST_CASE("one process: no launcher settings and no config.env") {
  repa::test::ScratchDir dir("repa-export-dp1");
  const auto exported = write_simpletuner_export(resolved_with(1), dir.file("out"));
  CHECK_FALSE(exported.config.contains("num_processes"));
  CHECK(exported.config_env.empty());
  CHECK_FALSE(std::filesystem::exists(dir.file("out/config.env")));
}
