// One sample large: a cell of a sample grid with its class, step, seed and sampler; previous/next sample
// of the grid, earlier/later step, and a strip of the same cell (same class, same noise) at every step.
#pragma once
#include <QDialog>
#include <QHash>
#include <QImage>

#include "ui/samples_gallery.h"

class QLabel;
class QListWidget;
class QPushButton;

namespace repa::ui {

class SampleViewer : public QDialog {
  Q_OBJECT

 public:
  explicit SampleViewer(QWidget* parent = nullptr);

  // The run's grids, oldest first; keeps the shown step and cell where they still exist.
  void set_grids(const QList<SampleGridInfo>& grids);
  void show_sample(int grid, int cell);
  void next_sample();
  void previous_sample();
  void later_step();
  void earlier_step();

  int current_grid() const { return grid_; }
  int current_cell() const { return cell_; }
  qint64 current_step() const;
  int cell_count() const;  // cells of the shown grid
  QString caption() const;
  QImage shown_image() const { return shown_; }
  QListWidget* across_steps() const { return strip_; }

 private:
  int cells_of(int grid) const;
  QImage cell_image(int grid, int cell);
  void refresh();

  QList<SampleGridInfo> grids_;
  QHash<QString, QImage> loaded_;
  int grid_ = -1;
  int cell_ = 0;
  QImage shown_;
  QLabel* image_ = nullptr;
  QLabel* caption_ = nullptr;
  QListWidget* strip_ = nullptr;
  QPushButton* previous_ = nullptr;
  QPushButton* next_ = nullptr;
  QPushButton* earlier_ = nullptr;
  QPushButton* later_ = nullptr;
};

}  // namespace repa::ui
