#include "ui/run_progress.h"

#include <QCoreApplication>
#include <cmath>

#include "ui/json_fields.h"

namespace repa::ui {

QString state_name(RunState state) {
  switch (state) {
    case RunState::Idle:
      return QCoreApplication::translate("RunState", "idle");
    case RunState::Starting:
      return QCoreApplication::translate("RunState", "starting");
    case RunState::Running:
      return QCoreApplication::translate("RunState", "running");
    case RunState::Paused:
      return QCoreApplication::translate("RunState", "paused");
    case RunState::Stopping:
      return QCoreApplication::translate("RunState", "stopping");
    case RunState::Stalled:
      return QCoreApplication::translate("RunState", "stalled");
    case RunState::Finished:
      return QCoreApplication::translate("RunState", "finished");
    case RunState::Stopped:
      return QCoreApplication::translate("RunState", "stopped");
    case RunState::Failed:
      return QCoreApplication::translate("RunState", "failed");
  }
  return {};
}

namespace {

// A LoRA run ends by writing its adapter file: the line after the run names it.
QString adapter_note(const RunProgress& p) {
  if (p.adapter_file.isEmpty()) return {};
  return QCoreApplication::translate("RunState", " — LoRA adapter: %1").arg(p.adapter_file);
}

// A full run ends by writing its fine-tuned pipeline (and, for SD 1.x/2.x/XL, a single file): the line names them.
QString pipeline_note(const RunProgress& p) {
  if (p.pipeline_folder.isEmpty()) return {};
  QString note = QCoreApplication::translate("RunState", " — fine-tuned pipeline: %1").arg(p.pipeline_folder);
  if (!p.single_file.isEmpty())
    note += QCoreApplication::translate("RunState", " (single file: %1)").arg(p.single_file);
  return note;
}

}  // namespace

QString state_message(RunState state, const RunProgress& p) {
  const auto tr = [](const char* text) { return QCoreApplication::translate("RunState", text); };
  const QString where = p.run_dir.isEmpty() ? QString() : QStringLiteral(" — ") + p.run_dir;
  switch (state) {
    case RunState::Starting:
      return tr("Starting the worker…");
    case RunState::Running:
      return tr("Training") + where;
    case RunState::Paused:
      return tr("Paused at step %1 (Continue goes on)").arg(p.step) + where;
    case RunState::Stopping:
      return tr("Stopping: the worker saves a checkpoint…");
    case RunState::Finished:
      return tr("Finished at step %1").arg(p.step) + where + adapter_note(p) + pipeline_note(p);
    case RunState::Stopped:
      return tr("Stopped at step %1").arg(p.step) + where + adapter_note(p) + pipeline_note(p);
    case RunState::Idle:
    case RunState::Stalled:
    case RunState::Failed:
      return {};
  }
  return {};
}

RunState state_from_worker(const std::string& state, RunState fallback) {
  if (state == "starting") return RunState::Starting;
  if (state == "running") return RunState::Running;
  if (state == "paused") return RunState::Paused;
  if (state == "stopping") return RunState::Stopping;
  if (state == "finished") return RunState::Finished;
  if (state == "stopped") return RunState::Stopped;
  if (state == "failed") return RunState::Failed;
  return fallback;
}

RunState state_of(const nlohmann::json& event, RunState fallback) {
  if (!event.is_object()) return fallback;
  const RunState state = state_from_worker(text_field(event, "state"), fallback);
  if (state == RunState::Finished && text_field(event, "reason") == "stopped") return RunState::Stopped;
  return state;
}

namespace {

QString string_of(const nlohmann::json& event, const char* key) {
  return QString::fromStdString(text_field(event, key));
}

}  // namespace

bool RunProgress::update(const nlohmann::json& event) {
  if (!event.is_object()) return false;
  const std::string type = text_field(event, "type");
  if (type == "run_started") {
    if (event.contains("config") && event["config"].is_object()) config = event["config"];
    const auto it = event.find("max_train_steps");
    if (const auto n = int_field(event, "max_train_steps"); n && it->is_number_integer())
      max_steps = *n;
    else if (const auto c = int_field(config, "max_train_steps"); c && config["max_train_steps"].is_number_integer())
      max_steps = *c;
    device = string_of(event, "device");
    if (const QString dir = string_of(event, "run_dir"); !dir.isEmpty()) run_dir = dir;
    if (const QString dir = string_of(event, "output_dir"); run_dir.isEmpty() && !dir.isEmpty()) run_dir = dir;
    run_name = string_of(event, "run_name");
    lora = event.contains("lora") && event["lora"].is_object() ? event["lora"] : nlohmann::json();
    adapter_file = lora.is_object() ? string_of(lora, "adapter_file") : QString();
    pipeline_folder.clear();
    single_file.clear();
    if (const auto n = int_field(event, "step"); n && event["step"].is_number_integer()) step = *n;
    return true;
  }
  if (type == "metrics") {
    // A step that is no number, or none a qint64 can hold ("step": 1e20), leaves the progress as it was.
    const auto parsed_step = int_field(event, "step");
    if (!parsed_step) return false;
    const qint64 new_step = *parsed_step;
    if (const auto it = event.find("steps_per_sec"); it != event.end() && it->is_number() && it->get<double>() > 0) {
      steps_per_sec = steps_per_sec > 0 ? 0.8 * steps_per_sec + 0.2 * it->get<double>() : it->get<double>();
    } else if (const auto it = event.find("step_time_ms");
               it != event.end() && it->is_number() && it->get<double>() > 0) {
      const double rate = 1000.0 / it->get<double>();
      steps_per_sec = steps_per_sec > 0 ? 0.8 * steps_per_sec + 0.2 * rate : rate;
    } else if (const auto w = event.find("wall_time"); w != event.end() && w->is_number()) {
      const double wall = w->get<double>();
      if (last_wall_ >= 0 && wall > last_wall_ && new_step > last_wall_step_) {
        const double rate =
            (static_cast<double>(new_step) - static_cast<double>(last_wall_step_)) / (wall - last_wall_);
        steps_per_sec = steps_per_sec > 0 ? 0.8 * steps_per_sec + 0.2 * rate : rate;
      }
      last_wall_ = wall;
      last_wall_step_ = new_step;
    }
    step = new_step;
    if (const auto it = event.find("images_per_sec"); it != event.end() && it->is_number())
      images_per_sec = it->get<double>();
    if (const auto n = int_field(event, "memory_bytes")) memory_bytes = *n;
    return true;
  }
  if (type == "checkpoint") {
    last_checkpoint = string_of(event, "path");
    return true;
  }
  if (type == "state") {
    // Only the finished state names what the run wrote; other states leave it as it was.
    const QString folder = string_of(event, "pipeline_folder"), file = string_of(event, "single_file");
    if (folder.isEmpty() && file.isEmpty()) return false;
    pipeline_folder = folder;
    single_file = file;
    return true;
  }
  if (type == "error") {
    last_error = string_of(event, "message");
    return true;
  }
  if (type == "heartbeat") {
    if (const auto n = int_field(event, "step"); n && event["step"].is_number_integer()) step = *n;
    if (const auto n = int_field(event, "memory_bytes")) memory_bytes = *n;
    return true;
  }
  return false;
}

QString RunProgress::eta_text() const {
  if (max_steps <= 0 || step < 0 || steps_per_sec <= 0) return {};
  const double remaining = static_cast<double>(std::max<qint64>(0, max_steps - step)) / steps_per_sec;
  const qint64 seconds = static_cast<qint64>(std::llround(remaining));
  const qint64 h = seconds / 3600, m = (seconds % 3600) / 60, sec = seconds % 60;
  if (h > 0) return QStringLiteral("%1:%2:%3").arg(h).arg(m, 2, 10, QChar('0')).arg(sec, 2, 10, QChar('0'));
  return QStringLiteral("%1:%2").arg(m).arg(sec, 2, 10, QChar('0'));
}

QString RunProgress::memory_text() const {
  if (memory_bytes < 0) return {};
  const double mib = static_cast<double>(memory_bytes) / (1024.0 * 1024.0);
  if (mib >= 1024) return QStringLiteral("%1 GiB").arg(mib / 1024.0, 0, 'f', 2);
  return QStringLiteral("%1 MiB").arg(mib, 0, 'f', 0);
}

}  // namespace repa::ui
