// Fuzzes what the window does with a followed events.jsonl / metrics.jsonl or the worker's stdout:
// EventStream splits the bytes into lines (fed in pieces, as appends arrive), each JSON object updates
// RunProgress and the run state, as RunFollower::handle does. The same lines go through the worker's own
// line parser for stdin commands (train::parse_command). EventStream and RunProgress need Qt Core only.
#include <QByteArray>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/train/run_control.h"
#include "fuzz/fuzz_support.h"
#include "ui/event_stream.h"
#include "ui/json_fields.h"
#include "ui/run_progress.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte chooses the size of the pieces the stream is fed in (1..256 bytes).
  const std::size_t piece = static_cast<std::size_t>(data[0]) + 1;
  const char* text = reinterpret_cast<const char*>(data + 1);
  const std::size_t length = size - 1;

  repa::ui::EventStream stream;
  repa::ui::RunProgress progress;
  repa::ui::RunState state = repa::ui::RunState::Idle;
  const auto handle = [&](const std::vector<repa::ui::StreamItem>& items) {
    for (const auto& item : items) {
      if (!item.event.is_object()) continue;
      progress.update(item.event);  // any exception ends the run as a finding (F5)
      if (repa::ui::text_field(item.event, "type") == "state") state = repa::ui::state_of(item.event, state);
    }
  };
  for (std::size_t at = 0; at < length; at += piece)
    handle(stream.feed(QByteArray(text + at, static_cast<qsizetype>(std::min(piece, length - at)))));
  handle(stream.flush());
  (void)progress.eta_text();
  (void)progress.memory_text();
  (void)repa::ui::state_name(state);

  for (const auto& line : repa::fuzz::split(std::string_view(text, length), '\n', 64)) {
    repa::train::Command command{};
    std::string error;
    if (!repa::train::parse_command(line, command, error) && error.empty()) __builtin_trap();  // unnamed refusal
    (void)repa::train::command_name(command);
  }
  return 0;
}
