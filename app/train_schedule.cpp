// repa-train schedule CONFIG: the alignment weight the config plans for each step (warm-up, decay, step
// cut-off; the similarity threshold depends on training and is not part of the plan), as CSV or a table.
#include <cstdio>

#include "app/train_commands.h"
#include "core/align/coefficient_schedule.h"
#include "core/base/error.h"
#include "core/config/command_line.h"
#include "core/config/registry.h"

namespace repa::app {
namespace {

struct StepRange {
  int64_t first = 0, last = 0, stride = 1;
};

StepRange parse_steps(const std::string& text) {
  StepRange range;
  const auto fail = [&] {
    return InputError("--steps expects FIRST:LAST:STRIDE (e.g. 0:10000:500), got '" + text + "'");
  };
  const auto first_colon = text.find(':');
  const auto second_colon = text.find(':', first_colon + 1);
  if (first_colon == std::string::npos || second_colon == std::string::npos) throw fail();
  try {
    std::size_t used = 0;
    const auto number = [&](const std::string& part) {
      const long long value = std::stoll(part, &used);
      if (used != part.size()) throw fail();
      return static_cast<int64_t>(value);
    };
    range.first = number(text.substr(0, first_colon));
    range.last = number(text.substr(first_colon + 1, second_colon - first_colon - 1));
    range.stride = number(text.substr(second_colon + 1));
  } catch (const std::logic_error&) {
    throw fail();
  }
  if (range.stride <= 0 || range.last < range.first || range.first < 0) throw fail();
  return range;
}

}  // namespace

int schedule_command(const Args& args) {
  if (args.empty() || args[0] == "--help") {
    std::printf(
        "Usage: repa-train schedule CONFIG [--preset P] [--set key=value]... [--steps FIRST:LAST:STRIDE]\n"
        "                           [--format csv|table]\n"
        "  The planned crepa_weight and/or urepa_weight per step (both columns when neither is enabled).\n"
        "  --steps defaults to 0:max_train_steps in 20 strides.\n");
    return args.empty() ? 2 : 0;
  }
  const auto parsed = config::parse_config_arguments(args, {"--steps", "--format"});
  std::string steps_text, format = "csv";
  for (std::size_t i = 0; i < parsed.flags.size(); ++i) {
    if (parsed.flags[i] == "--steps") {
      steps_text = parsed.flags[++i];
    } else if (parsed.flags[i] == "--format") {
      format = parsed.flags[++i];
    } else {
      std::fprintf(stderr, "repa-train schedule: unknown argument '%s'\n", parsed.flags[i].c_str());
      return 2;
    }
  }
  if (format != "csv" && format != "table") {
    std::fprintf(stderr, "repa-train schedule: --format must be csv or table, got '%s'\n", format.c_str());
    return 2;
  }
  const auto resolved = config::resolve_config(parsed.config_path, parsed.preset, parsed.overrides);
  const auto max_steps_value = resolved["max_train_steps"];
  const int64_t max_train_steps = max_steps_value.is_number() ? max_steps_value.get<int64_t>() : 0;

  StepRange range;
  if (!steps_text.empty()) {
    range = parse_steps(steps_text);
  } else if (max_train_steps > 0) {
    range = {0, max_train_steps, std::max<int64_t>(1, max_train_steps / 20)};
  } else {
    throw InputError("max_train_steps is not set: give --steps FIRST:LAST:STRIDE");
  }

  std::vector<std::string> prefixes;
  for (const std::string prefix : {"crepa", "urepa"})
    if (resolved[prefix + "_enabled"] == true) prefixes.push_back(prefix);
  if (prefixes.empty()) prefixes = {"crepa", "urepa"};
  std::vector<align::CoefficientSchedule> schedules;
  for (const auto& prefix : prefixes)
    schedules.emplace_back(align::ScheduleConfig::from_json(resolved, prefix, max_train_steps));

  if (format == "csv") {
    std::printf("step");
    for (const auto& prefix : prefixes) std::printf(",%s_weight", prefix.c_str());
    std::printf("\n");
  } else {
    std::printf("%10s", "step");
    for (const auto& prefix : prefixes) std::printf("  %14s", (prefix + "_weight").c_str());
    std::printf("\n");
  }
  for (int64_t step = range.first; step <= range.last; step += range.stride) {
    if (format == "csv") {
      std::printf("%lld", static_cast<long long>(step));
      for (const auto& schedule : schedules) std::printf(",%.9g", schedule.planned_weight(step));
    } else {
      std::printf("%10lld", static_cast<long long>(step));
      for (const auto& schedule : schedules) std::printf("  %14.6f", schedule.planned_weight(step));
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace repa::app
