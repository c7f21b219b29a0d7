// A run folder's metrics.jsonl read whole: one metrics object per line (lines may omit "type"). Used to
// put a continued run's history back into the charts and by the run comparison and TensorBoard export.
#pragma once
#include <QString>
#include <nlohmann/json.hpp>
#include <vector>

namespace repa::ui {

struct MetricsFile {
  std::vector<nlohmann::json> rows;  // metrics objects with a numeric "step", in file order
  int bad_lines = 0;                 // lines that were not a JSON object with a step (a torn last line)
  QString error;                     // the file could not be read at all
};

// Reads `path` (a metrics.jsonl, or a run folder holding one). Rows past `max_step` are left out when
// max_step >= 0 (a run continued from an earlier checkpoint rewrites those steps).
MetricsFile read_metrics_file(const QString& path, qint64 max_step = -1);

// The numeric series a metrics file holds, in first-seen order (a row's keys alphabetically), without "step"
// and "wall_time".
std::vector<std::string> metric_names(const MetricsFile& file);

// Writes every numeric series of `file` as TensorBoard scalars (one event per step, tags as in
// metrics.jsonl) into a new events.out.tfevents.* file in `directory`. Returns its path, or "" and *error.
QString export_to_tensorboard(const MetricsFile& file, const QString& directory, QString* error);

}  // namespace repa::ui
