// What the toolbar and status bar show about a run, kept up to date from its events.
#pragma once
#include <QString>
#include <nlohmann/json.hpp>

namespace repa::ui {

// The life of a run as the window sees it. Stalled: no heartbeat for too long, never shown as running.
enum class RunState { Idle, Starting, Running, Paused, Stopping, Stalled, Finished, Stopped, Failed };

QString state_name(RunState state);
// Maps the worker's "state" event values (starting|running|paused|stopping|finished|failed).
RunState state_from_worker(const std::string& state, RunState fallback);
// The state a `state` event (or status.json) reports: "finished" with reason "stopped" is a stop.
RunState state_of(const nlohmann::json& state_event, RunState fallback);

struct RunProgress;
// The status bar's line for a state ("Training in runs/demo", "Paused at step 40", ...); empty where another
// message says more (a failure's reason, a stall) or nothing is running.
QString state_message(RunState state, const RunProgress& progress);

struct RunProgress {
  qint64 step = -1;
  qint64 max_steps = 0;
  double steps_per_sec = 0;  // smoothed from step_time_ms, or from step deltas over wall time
  double images_per_sec = 0;
  qint64 memory_bytes = -1;
  QString device;
  QString run_dir;
  QString run_name;
  QString last_error;
  QString last_checkpoint;
  QString adapter_file;  // a LoRA run's adapter (run_started's lora.adapter_file), written when the run ends
  // A full text-to-image run's end (the finished state event): the fine-tuned diffusers folder and, for the SD
  // families, the single-file checkpoint.
  QString pipeline_folder;
  QString single_file;
  nlohmann::json lora;   // run_started's lora object (rank, alpha, targets, format, ...), null for full training
  nlohmann::json config;  // the resolved config when run_started carries it

  void reset() { *this = RunProgress(); }
  // Takes any event; returns true when something shown changed.
  bool update(const nlohmann::json& event);
  // "12:34" style remaining time, or "" when unknown.
  QString eta_text() const;
  QString memory_text() const;

 private:
  double last_wall_ = -1;
  qint64 last_wall_step_ = -1;
};

}  // namespace repa::ui
