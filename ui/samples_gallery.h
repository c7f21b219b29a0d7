// The sample grids a run writes (samples/*.png), newest first, each captioned with its step. Double-click
// (or Enter) opens the sample viewer on the grid's first cell.
#pragma once
#include <QHash>
#include <QImage>
#include <QListWidget>
#include <QStringList>
#include <nlohmann/json.hpp>

namespace repa::ui {

class SampleViewer;

// What a `sample` event says about one grid (docs/events.md); files found by a scan know only their step.
struct SampleGridInfo {
  QString path;
  qint64 step = -1;
  QStringList classes;  // one per cell, "" for an unconditional cell; empty when unknown
  bool prompts = false;  // `classes` holds each cell's prompt (a text-to-image run), not a class name
  QString sampler;      // "euler, 20 steps, guidance 2.0, EMA"
  qint64 seed = -1;     // the run's seed (every grid of a run draws the same noises from it)
};

// Where cell `index` of a grid of `count` cells lies in an image of `grid_size`: 8 columns of square cells
// with 2 px borders, as the worker writes them (core/data/image_tensor tensor_grid_to_image). Null if the
// image cannot hold that layout.
QRect sample_cell_rect(const QSize& grid_size, int count, int index);

// A sample path from an event as the window can open it: absolute paths as they are; relative ones against
// the worker's working directory (the worker writes paths relative to where it runs), else inside the run
// folder, else as samples/<file name> of the run folder (a headless run started elsewhere).
QString resolve_sample_path(const QString& path, const QString& worker_dir, const QString& run_dir);

class SamplesGallery : public QListWidget {
  Q_OBJECT

 public:
  explicit SamplesGallery(QWidget* parent = nullptr);

  // Adds one grid (from a `sample` event); step < 0 reads it from the file name. Known paths are ignored.
  void add_sample(const QString& path, qint64 step = -1);
  // Adds one grid with what its `sample` event says (step, classes, sampler) and the run's `seed`.
  void add_sample_event(const QString& path, const nlohmann::json& event, qint64 seed = -1);
  // Adds every PNG of `directory` not shown yet (attach, or a worker that wrote files between events).
  void scan(const QString& directory);
  void clear_samples();
  // Steps of the shown grids, in display order (newest first).
  QList<qint64> steps() const;
  // The grids in step order (oldest first), for the viewer.
  QList<SampleGridInfo> grids() const;

  static qint64 step_from_file_name(const QString& path);

  // Opens the large viewer on cell `cell` of the grid shown in `row`; returns it (owned by the gallery).
  SampleViewer* open_viewer(int row, int cell = 0);
  SampleViewer* viewer() const { return viewer_; }

 private:
  bool insert(const SampleGridInfo& info);

  QHash<QString, SampleGridInfo> known_;
  SampleViewer* viewer_ = nullptr;
};

}  // namespace repa::ui
