// The sample grids a run writes (samples/*.png), newest first, each captioned with its step.
#pragma once
#include <QHash>
#include <QListWidget>

namespace repa::ui {

class SamplesGallery : public QListWidget {
  Q_OBJECT

 public:
  explicit SamplesGallery(QWidget* parent = nullptr);

  // Adds one grid (from a `sample` event); step < 0 reads it from the file name. Known paths are ignored.
  void add_sample(const QString& path, qint64 step = -1);
  // Adds every PNG of `directory` not shown yet (attach, or a worker that wrote files between events).
  void scan(const QString& directory);
  void clear_samples();
  // Steps of the shown grids, in display order (newest first).
  QList<qint64> steps() const;

  static qint64 step_from_file_name(const QString& path);

 private:
  QHash<QString, qint64> known_;
};

}  // namespace repa::ui
