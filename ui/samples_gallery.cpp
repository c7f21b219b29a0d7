#include "ui/samples_gallery.h"

#include <QDir>
#include <QFileInfo>
#include <QImageReader>
#include <QRegularExpression>

namespace repa::ui {
namespace {

constexpr int kThumbSize = 256;
constexpr int kStepRole = Qt::UserRole + 1;

}  // namespace

SamplesGallery::SamplesGallery(QWidget* parent) : QListWidget(parent) {
  setObjectName(QStringLiteral("samplesGallery"));
  setViewMode(QListView::IconMode);
  setIconSize(QSize(kThumbSize, kThumbSize));
  setResizeMode(QListView::Adjust);
  setMovement(QListView::Static);
  setSpacing(8);
  setWordWrap(true);
  setUniformItemSizes(true);
}

qint64 SamplesGallery::step_from_file_name(const QString& path) {
  // "step_000500.png", "samples-1200.png", "500.png": the last run of digits is the step.
  static const QRegularExpression digits(QStringLiteral("(\\d+)(?!.*\\d)"));
  const QRegularExpressionMatch m = digits.match(QFileInfo(path).completeBaseName());
  return m.hasMatch() ? m.captured(1).toLongLong() : -1;
}

void SamplesGallery::add_sample(const QString& path, qint64 step) {
  const QString absolute = QFileInfo(path).absoluteFilePath();
  if (known_.contains(absolute)) return;
  QImageReader reader(absolute);
  const QSize size = reader.size();
  if (!size.isValid()) return;  // not written yet or not an image; a later scan picks it up
  // Scaled decoding keeps big grids cheap on the GUI thread.
  reader.setScaledSize(size.scaled(kThumbSize, kThumbSize, Qt::KeepAspectRatio));
  const QImage thumb = reader.read();
  if (thumb.isNull()) return;
  if (step < 0) step = step_from_file_name(absolute);
  known_.insert(absolute, step);

  auto* item = new QListWidgetItem(QIcon(QPixmap::fromImage(thumb)),
                                   step >= 0 ? tr("step %1").arg(step) : QFileInfo(absolute).fileName());
  item->setData(kStepRole, step);
  item->setToolTip(absolute);
  item->setData(Qt::UserRole, absolute);
  int row = 0;  // newest (highest step) first
  while (row < count() && this->item(row)->data(kStepRole).toLongLong() > step) ++row;
  insertItem(row, item);
}

void SamplesGallery::scan(const QString& directory) {
  const QFileInfoList files =
      QDir(directory).entryInfoList({QStringLiteral("*.png")}, QDir::Files, QDir::Name);
  for (const QFileInfo& file : files) add_sample(file.absoluteFilePath());
}

void SamplesGallery::clear_samples() {
  clear();
  known_.clear();
}

QList<qint64> SamplesGallery::steps() const {
  QList<qint64> result;
  for (int i = 0; i < count(); ++i) result << item(i)->data(kStepRole).toLongLong();
  return result;
}

}  // namespace repa::ui
