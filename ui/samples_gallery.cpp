#include "ui/samples_gallery.h"

#include <QDir>
#include <QFileInfo>
#include <QImageReader>
#include <QRegularExpression>

#include "ui/json_fields.h"
#include "ui/sample_viewer.h"

namespace repa::ui {
namespace {

constexpr int kThumbSize = 256;
constexpr int kStepRole = Qt::UserRole + 1;
constexpr int kGridColumns = 8;  // the worker's sample grids (core/train/sample_grid.cpp)
constexpr int kGridPadding = 2;

QString sampler_text(const nlohmann::json& event) {
  QStringList parts;
  if (const auto it = event.find("sampler"); it != event.end() && it->is_string())
    parts << QString::fromStdString(it->get<std::string>());
  if (const auto it = event.find("num_steps"); it != event.end() && it->is_number_integer())
    parts << QObject::tr("%1 steps").arg(it->get<qint64>());
  if (const auto it = event.find("guidance"); it != event.end() && it->is_number())
    parts << QObject::tr("guidance %1").arg(it->get<double>(), 0, 'g', 3);
  if (const auto it = event.find("ema"); it != event.end() && it->is_boolean() && it->get<bool>())
    parts << QStringLiteral("EMA");
  return parts.join(QStringLiteral(", "));
}

}  // namespace

QRect sample_cell_rect(const QSize& grid_size, int count, int index) {
  if (count <= 0 || index < 0 || index >= count) return {};
  const int columns = std::min(kGridColumns, count);
  const int rows = (count + columns - 1) / columns;
  const int w = (grid_size.width() - kGridPadding) / columns - kGridPadding;
  const int h = (grid_size.height() - kGridPadding) / rows - kGridPadding;
  // The worker's layout exactly, or nothing: a cropped guess would show a wrong sample under a right caption.
  if (w <= 0 || h <= 0 || columns * (w + kGridPadding) + kGridPadding != grid_size.width() ||
      rows * (h + kGridPadding) + kGridPadding != grid_size.height())
    return {};
  return {kGridPadding + (index % columns) * (w + kGridPadding), kGridPadding + (index / columns) * (h + kGridPadding),
          w, h};
}

QString resolve_sample_path(const QString& path, const QString& worker_dir, const QString& run_dir) {
  if (path.isEmpty() || !QDir::isRelativePath(path)) return path;
  QStringList candidates;
  if (!worker_dir.isEmpty()) candidates << QDir(worker_dir).filePath(path);
  if (!run_dir.isEmpty()) {
    candidates << QDir(run_dir).filePath(path);
    candidates << QDir(run_dir).filePath(QStringLiteral("samples/") + QFileInfo(path).fileName());
  }
  for (const QString& candidate : candidates)
    if (QFileInfo::exists(candidate)) return QDir::cleanPath(candidate);
  return candidates.isEmpty() ? path : QDir::cleanPath(candidates.front());
}

SamplesGallery::SamplesGallery(QWidget* parent) : QListWidget(parent) {
  setObjectName(QStringLiteral("samplesGallery"));
  setViewMode(QListView::IconMode);
  setIconSize(QSize(kThumbSize, kThumbSize));
  setResizeMode(QListView::Adjust);
  setMovement(QListView::Static);
  setSpacing(8);
  setWordWrap(true);
  setUniformItemSizes(true);
  setToolTip(tr("Double-click a grid to view its samples one by one and across steps"));
  connect(this, &QListWidget::itemActivated, this, [this](QListWidgetItem* item) { open_viewer(row(item)); });
}

qint64 SamplesGallery::step_from_file_name(const QString& path) {
  // "step_000500.png", "samples-1200.png", "500.png": the last run of digits is the step.
  static const QRegularExpression digits(QStringLiteral("(\\d+)(?!.*\\d)"));
  const QRegularExpressionMatch m = digits.match(QFileInfo(path).completeBaseName());
  return m.hasMatch() ? m.captured(1).toLongLong() : -1;
}

void SamplesGallery::add_sample(const QString& path, qint64 step) {
  SampleGridInfo info;
  info.path = path;
  info.step = step;
  insert(info);
}

void SamplesGallery::add_sample_event(const QString& path, const nlohmann::json& event, qint64 seed) {
  SampleGridInfo info;
  info.path = path;
  if (const auto step = int_field(event, "step")) info.step = *step;
  if (const auto it = event.find("classes"); it != event.end() && it->is_array())
    for (const auto& c : *it)
      info.classes << (c.is_string() ? QString::fromStdString(c.get<std::string>()) : QString());
  if (const auto it = event.find("prompts"); it != event.end() && it->is_boolean()) info.prompts = it->get<bool>();
  info.sampler = sampler_text(event);
  info.seed = seed;
  insert(info);
}

bool SamplesGallery::insert(const SampleGridInfo& given) {
  SampleGridInfo info = given;
  info.path = QFileInfo(given.path).absoluteFilePath();
  if (known_.contains(info.path)) return false;
  QImageReader reader(info.path);
  const QSize size = reader.size();
  if (!size.isValid()) return false;  // not written yet or not an image; a later scan picks it up
  // Scaled decoding keeps big grids cheap on the GUI thread.
  reader.setScaledSize(size.scaled(kThumbSize, kThumbSize, Qt::KeepAspectRatio));
  const QImage thumb = reader.read();
  if (thumb.isNull()) return false;
  if (info.step < 0) info.step = step_from_file_name(info.path);
  known_.insert(info.path, info);

  auto* item = new QListWidgetItem(QIcon(QPixmap::fromImage(thumb)),
                                   info.step >= 0 ? tr("step %1").arg(info.step) : QFileInfo(info.path).fileName());
  item->setData(kStepRole, info.step);
  // A text-to-image grid names its prompts (each once, in cell order) above the path.
  QStringList shown;
  if (info.prompts)
    for (const QString& prompt : info.classes)
      if (!shown.contains(prompt)) shown << (prompt.isEmpty() ? tr("(empty prompt)") : prompt);
  item->setToolTip(shown.isEmpty() ? info.path : shown.join(QLatin1Char('\n')) + QLatin1Char('\n') + info.path);
  item->setData(Qt::UserRole, info.path);
  int row = 0;  // newest (highest step) first
  while (row < count() && this->item(row)->data(kStepRole).toLongLong() > info.step) ++row;
  insertItem(row, item);
  if (viewer_ && viewer_->isVisible()) viewer_->set_grids(grids());
  return true;
}

void SamplesGallery::scan(const QString& directory) {
  const QFileInfoList files = QDir(directory).entryInfoList({QStringLiteral("*.png")}, QDir::Files, QDir::Name);
  for (const QFileInfo& file : files) add_sample(file.absoluteFilePath());
}

void SamplesGallery::clear_samples() {
  clear();
  known_.clear();
  if (viewer_) viewer_->set_grids({});
}

QList<qint64> SamplesGallery::steps() const {
  QList<qint64> result;
  for (int i = 0; i < count(); ++i) result << item(i)->data(kStepRole).toLongLong();
  return result;
}

QList<SampleGridInfo> SamplesGallery::grids() const {
  QList<SampleGridInfo> result;
  for (int i = count() - 1; i >= 0; --i) result << known_.value(item(i)->data(Qt::UserRole).toString());
  return result;
}

SampleViewer* SamplesGallery::open_viewer(int row, int cell) {
  if (row < 0 || row >= count()) return nullptr;
  if (!viewer_) viewer_ = new SampleViewer(this);
  viewer_->set_grids(grids());
  viewer_->show_sample(count() - 1 - row, cell);  // rows are newest first, grids oldest first
  viewer_->show();
  viewer_->raise();
  return viewer_;
}

}  // namespace repa::ui
