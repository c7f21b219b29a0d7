// repa-train options: every option with its type, default and range (--json: all declared fields;
// --markdown: docs/options.md); --presets lists the presets.
#include <cstdio>

#include "app/train_commands.h"
#include "core/config/options_doc.h"
#include "core/config/presets.h"

namespace repa::app {

int options_command(const Args& args) {
  bool presets = false, json = false, markdown = false;
  for (const auto& arg : args) {
    if (arg == "--presets")
      presets = true;
    else if (arg == "--json")
      json = true;
    else if (arg == "--markdown")
      markdown = true;
    else if (arg == "--help") {
      std::printf("Usage: repa-train options [--presets] [--json | --markdown]\n");
      return 0;
    } else {
      std::fprintf(stderr, "repa-train options: unknown argument '%s'\n", arg.c_str());
      return 2;
    }
  }
  if (markdown) {
    std::fputs(config::options_markdown().c_str(), stdout);
  } else if (presets && json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& preset : config::presets())
      list.push_back({{"name", preset.name},
                      {"description", preset.description},
                      {"notes", preset.notes},
                      {"config", preset.config}});
    std::printf("%s\n", list.dump(2).c_str());
  } else if (presets) {
    std::fputs(config::presets_text().c_str(), stdout);
  } else if (json) {
    std::printf("%s\n", config::options_json().dump(2).c_str());
  } else {
    std::fputs(config::options_text().c_str(), stdout);
  }
  return 0;
}

}  // namespace repa::app
