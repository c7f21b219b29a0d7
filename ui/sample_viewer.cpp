#include "ui/sample_viewer.h"

#include <QHBoxLayout>
#include <QImageReader>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QShortcut>
#include <QVBoxLayout>

namespace repa::ui {
namespace {

constexpr int kLargeSide = 384;
constexpr int kStripSide = 96;

QImage enlarged(const QImage& image, int side) {
  if (image.isNull()) return image;
  // Small samples (32 px) are scaled up pixel by pixel: smoothing would invent detail the model never drew.
  const bool small = image.width() * 2 <= side;
  return image.scaled(side, side, Qt::KeepAspectRatio, small ? Qt::FastTransformation : Qt::SmoothTransformation);
}

}  // namespace

SampleViewer::SampleViewer(QWidget* parent) : QDialog(parent) {
  setObjectName(QStringLiteral("sampleViewer"));
  setWindowTitle(tr("Sample"));
  image_ = new QLabel(this);
  image_->setObjectName(QStringLiteral("sampleImage"));
  image_->setAlignment(Qt::AlignCenter);
  image_->setMinimumSize(kLargeSide, kLargeSide);
  caption_ = new QLabel(this);
  caption_->setObjectName(QStringLiteral("sampleCaption"));
  caption_->setWordWrap(true);
  caption_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  previous_ = new QPushButton(tr("◀ Previous sample"), this);
  previous_->setObjectName(QStringLiteral("previousSample"));
  next_ = new QPushButton(tr("Next sample ▶"), this);
  next_->setObjectName(QStringLiteral("nextSample"));
  earlier_ = new QPushButton(tr("◀ Earlier step"), this);
  earlier_->setObjectName(QStringLiteral("earlierStep"));
  later_ = new QPushButton(tr("Later step ▶"), this);
  later_->setObjectName(QStringLiteral("laterStep"));
  strip_ = new QListWidget(this);
  strip_->setObjectName(QStringLiteral("acrossSteps"));
  strip_->setViewMode(QListView::IconMode);
  strip_->setFlow(QListView::LeftToRight);
  strip_->setWrapping(false);
  strip_->setMovement(QListView::Static);
  strip_->setIconSize(QSize(kStripSide, kStripSide));
  strip_->setFixedHeight(kStripSide + 48);
  strip_->setToolTip(tr("The same sample (same class, same noise) at every step; click one to show it large"));

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(previous_);
  buttons->addWidget(next_);
  buttons->addStretch(1);
  buttons->addWidget(earlier_);
  buttons->addWidget(later_);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(image_, 1);
  layout->addWidget(caption_);
  layout->addLayout(buttons);
  layout->addWidget(new QLabel(tr("This sample across steps:"), this));
  layout->addWidget(strip_);

  connect(previous_, &QPushButton::clicked, this, &SampleViewer::previous_sample);
  connect(next_, &QPushButton::clicked, this, &SampleViewer::next_sample);
  connect(earlier_, &QPushButton::clicked, this, &SampleViewer::earlier_step);
  connect(later_, &QPushButton::clicked, this, &SampleViewer::later_step);
  connect(new QShortcut(Qt::Key_Left, this), &QShortcut::activated, this, &SampleViewer::previous_sample);
  connect(new QShortcut(Qt::Key_Right, this), &QShortcut::activated, this, &SampleViewer::next_sample);
  connect(new QShortcut(Qt::Key_Up, this), &QShortcut::activated, this, &SampleViewer::earlier_step);
  connect(new QShortcut(Qt::Key_Down, this), &QShortcut::activated, this, &SampleViewer::later_step);
  connect(strip_, &QListWidget::currentRowChanged, this, [this](int row) {
    if (row >= 0 && row != grid_) show_sample(row, cell_);
  });
  resize(kLargeSide + 220, kLargeSide + 260);
}

void SampleViewer::set_grids(const QList<SampleGridInfo>& grids) {
  const qint64 step = current_step();
  grids_ = grids;
  loaded_.clear();
  int grid = grids_.isEmpty() ? -1 : static_cast<int>(grids_.size()) - 1;
  for (int i = 0; i < grids_.size(); ++i)
    if (grids_[i].step == step) grid = i;
  grid_ = grid;
  refresh();
}

int SampleViewer::cells_of(int grid) const {
  if (grid < 0 || grid >= grids_.size()) return 0;
  if (!grids_[grid].classes.isEmpty()) return static_cast<int>(grids_[grid].classes.size());
  // A grid found on disk without its event: whole rows of 8 square cells if the size says so, else one image.
  const QSize size = QImageReader(grids_[grid].path).size();
  const int side = (size.width() - 2) / 8 - 2;
  if (side > 0 && (size.height() - 2) % (side + 2) == 0) {
    const int count = 8 * ((size.height() - 2) / (side + 2));
    if (!sample_cell_rect(size, count, 0).isNull()) return count;
  }
  return 1;
}

int SampleViewer::cell_count() const {
  return cells_of(grid_);
}

qint64 SampleViewer::current_step() const {
  return grid_ >= 0 && grid_ < grids_.size() ? grids_[grid_].step : -1;
}

QImage SampleViewer::cell_image(int grid, int cell) {
  if (grid < 0 || grid >= grids_.size()) return {};
  const QString& path = grids_[grid].path;
  if (!loaded_.contains(path)) loaded_.insert(path, QImage(path));
  const QImage& whole = loaded_[path];
  const int count = cells_of(grid);
  if (count <= 1) return whole;
  const QRect rect = sample_cell_rect(whole.size(), count, cell);
  return rect.isNull() ? QImage() : whole.copy(rect);
}

void SampleViewer::show_sample(int grid, int cell) {
  if (grid < 0 || grid >= grids_.size()) return;
  grid_ = grid;
  cell_ = std::clamp(cell, 0, std::max(0, cells_of(grid) - 1));
  refresh();
}

void SampleViewer::next_sample() {
  const int count = cell_count();
  if (count > 0) show_sample(grid_, (cell_ + 1) % count);
}

void SampleViewer::previous_sample() {
  const int count = cell_count();
  if (count > 0) show_sample(grid_, (cell_ + count - 1) % count);
}

void SampleViewer::later_step() {
  if (grid_ + 1 < grids_.size()) show_sample(grid_ + 1, cell_);
}

void SampleViewer::earlier_step() {
  if (grid_ > 0) show_sample(grid_ - 1, cell_);
}

QString SampleViewer::caption() const {
  return caption_->text();
}

void SampleViewer::refresh() {
  if (grid_ < 0 || grid_ >= grids_.size()) {
    shown_ = QImage();
    image_->clear();
    caption_->setText(tr("No samples yet"));
    strip_->clear();
    for (QPushButton* b : {previous_, next_, earlier_, later_}) b->setEnabled(false);
    return;
  }
  const SampleGridInfo& info = grids_[grid_];
  const int count = cells_of(grid_);
  shown_ = cell_image(grid_, cell_);
  image_->setPixmap(QPixmap::fromImage(enlarged(shown_, kLargeSide)));
  QStringList parts;
  const QString label = cell_ < info.classes.size() ? info.classes[cell_] : QString();
  if (cell_ < info.classes.size() && info.prompts)
    parts << (label.isEmpty() ? tr("empty prompt") : tr("prompt “%1”").arg(label));
  else if (cell_ < info.classes.size())
    parts << (label.isEmpty() ? tr("unconditional") : tr("class “%1”").arg(label));
  parts << tr("step %1").arg(info.step);
  if (info.seed >= 0) parts << tr("seed %1").arg(info.seed);
  parts << tr("sample %1 of %2").arg(cell_ + 1).arg(count);
  if (!info.sampler.isEmpty()) parts << info.sampler;
  caption_->setText(parts.join(QStringLiteral(" · ")));
  caption_->setToolTip(info.prompts ? label : QString());  // a long prompt in full, whatever the width
  setWindowTitle(tr("Sample — step %1").arg(info.step));
  previous_->setEnabled(count > 1);
  next_->setEnabled(count > 1);
  earlier_->setEnabled(grid_ > 0);
  later_->setEnabled(grid_ + 1 < grids_.size());

  // The same cell of every grid: same class and same starting noise, so only training changed it.
  const QSignalBlocker block(strip_);
  strip_->clear();
  for (int g = 0; g < grids_.size(); ++g) {
    const QImage cell = cell_image(g, cell_);
    auto* item = new QListWidgetItem(QIcon(QPixmap::fromImage(enlarged(cell, kStripSide))),
                                     tr("step %1").arg(grids_[g].step), strip_);
    item->setData(Qt::UserRole, grids_[g].step);
    if (grids_[g].prompts && cell_ < grids_[g].classes.size()) item->setToolTip(grids_[g].classes[cell_]);
  }
  strip_->setCurrentRow(grid_);
}

}  // namespace repa::ui
