#include "ui/native_support.h"

#include <QAction>
#include <QFileDialog>
#include <QFrame>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QPushButton>

#include "core/config/native_training.h"
#include "core/config/presets.h"
#include "core/config/family_pipeline.h"
#include "ui/option_form.h"
#include "ui/settings_panel.h"

namespace repa::ui {

QString export_only_preset_suffix() {
  return QObject::tr(" — export for SimpleTuner (not trained here yet)");
}

NativeSupport::NativeSupport(SettingsPanel* settings, QObject* parent) : QObject(parent), settings_(settings) {
  banner_ = new QFrame;
  banner_->setObjectName(QStringLiteral("nativeSupportBanner"));
  banner_->setFrameShape(QFrame::StyledPanel);
  banner_->setStyleSheet(QStringLiteral("#nativeSupportBanner { background: #fff4e5; border: 1px solid #ef6c00; }"));
  banner_text_ = new QLabel(banner_);
  banner_text_->setObjectName(QStringLiteral("nativeSupportText"));
  banner_text_->setWordWrap(true);
  export_button_ = new QPushButton(tr("Export for SimpleTuner…"), banner_);
  export_button_->setObjectName(QStringLiteral("nativeSupportExport"));
  export_button_->setToolTip(
      tr("Write config.json and multidatabackend.json for SimpleTuner (File → Export for "
         "SimpleTuner)"));
  auto* layout = new QHBoxLayout(banner_);
  layout->setContentsMargins(6, 4, 6, 4);
  layout->addWidget(banner_text_, 1);
  layout->addWidget(export_button_);
  banner_->hide();
  // Under Model Family in the Model tab, where the family is chosen.
  settings_->form()->insert_after("model_family", banner_);
  if (!banner_->parent()) banner_->setParent(settings_);  // no such row: owned anyway, never shown

  connect(export_button_, &QPushButton::clicked, this, [this] {
    const QString dir =
        QFileDialog::getExistingDirectory(settings_, tr("Export config.json and multidatabackend.json to"));
    if (!dir.isEmpty()) settings_->export_simpletuner(dir);
  });
  connect(settings_->form(), &OptionForm::config_edited, this, &NativeSupport::refresh);
  connect(settings_, &SettingsPanel::document_changed, this, &NativeSupport::refresh);
  refresh();
}

void NativeSupport::mark_presets(QMenu* menu) {
  for (const repa::config::Preset& preset : repa::config::presets()) {
    const std::string why = repa::config::native_training_blocker(preset.config);
    if (why.empty()) continue;
    auto* action = menu->findChild<QAction*>(QStringLiteral("preset_") + QString::fromStdString(preset.name));
    if (!action) continue;
    action->setText(QString::fromStdString(preset.name) + export_only_preset_suffix());
    action->setToolTip(QString::fromStdString(preset.description) + QStringLiteral("\n") + QString::fromStdString(why));
    action->setStatusTip(QString::fromStdString(why));
  }
  menu->setToolTipsVisible(true);
}

void NativeSupport::refresh() {
  const auto config = settings_->form()->config();
  const std::string family_blocker = repa::config::native_training_blocker(config);
  // A family trained here still needs its pipeline folder: said before Start, with the fetch command.
  const std::string folder_problem = family_blocker.empty() ? repa::config::pipeline_folder_problem(config) : "";
  const QString blocker = QString::fromStdString(family_blocker.empty() ? folder_problem : family_blocker);
  banner_text_->setText((family_blocker.empty() ? tr("<b>Before Start:</b> %1") : tr("<b>Not trained here yet.</b> %1"))
                            .arg(blocker.toHtmlEscaped()));
  export_button_->setVisible(!family_blocker.empty());
  banner_->setVisible(!blocker.isEmpty());
  if (blocker == blocker_) return;
  blocker_ = blocker;
  emit changed(blocker_);
}

}  // namespace repa::ui
