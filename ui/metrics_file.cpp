#include "ui/metrics_file.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <set>

#include "core/base/bounded_json.h"
#include "core/io/tensorboard_events.h"

namespace repa::ui {

MetricsFile read_metrics_file(const QString& given, qint64 max_step) {
  MetricsFile out;
  const QString path = QFileInfo(given).isDir() ? QDir(given).filePath(QStringLiteral("metrics.jsonl")) : given;
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    out.error = QObject::tr("cannot read %1: %2").arg(path, file.errorString());
    return out;
  }
  while (!file.atEnd()) {
    const QByteArray line = file.readLine().trimmed();
    if (line.isEmpty()) continue;
    nlohmann::json row = repa::try_parse_json_bounded(std::string_view(line.constData(), line.size()));
    const auto step = row.is_object() ? row.find("step") : row.end();
    if (!row.is_object() || step == row.end() || !step->is_number() ||
        (row.contains("type") && row["type"] != "metrics")) {
      ++out.bad_lines;
      continue;
    }
    if (max_step >= 0 && step->get<double>() > static_cast<double>(max_step)) continue;
    row["type"] = "metrics";
    out.rows.push_back(std::move(row));
  }
  return out;
}

std::vector<std::string> metric_names(const MetricsFile& file) {
  std::vector<std::string> names;
  std::set<std::string> seen{"step", "wall_time", "type"};
  for (const auto& row : file.rows)
    for (const auto& [key, value] : row.items())
      if (value.is_number() && seen.insert(key).second) names.push_back(key);
  return names;
}

QString export_to_tensorboard(const MetricsFile& file, const QString& directory, QString* error) {
  try {
    // Rows without wall_time (older runs) get the export's own time, so TensorBoard's relative axis still works.
    const double now = static_cast<double>(QDateTime::currentMSecsSinceEpoch()) / 1000.0;
    double first = now;
    if (!file.rows.empty() && file.rows.front().value("wall_time", nlohmann::json()).is_number())
      first = file.rows.front()["wall_time"].get<double>();
    repa::io::TensorBoardWriter writer(directory.toStdString(), first);
    for (const auto& row : file.rows) {
      std::vector<std::pair<std::string, float>> values;
      for (const auto& [key, value] : row.items())
        if (value.is_number() && key != "step" && key != "wall_time") values.emplace_back(key, value.get<float>());
      const auto wall = row.find("wall_time");
      writer.add_scalars(static_cast<int64_t>(row["step"].get<double>()),
                         wall != row.end() && wall->is_number() ? wall->get<double>() : now, values);
    }
    writer.flush();
    return QString::fromStdString(writer.path());
  } catch (const std::exception& e) {
    if (error) *error = QString::fromUtf8(e.what());
    return {};
  }
}

}  // namespace repa::ui
