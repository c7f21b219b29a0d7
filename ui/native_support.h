// Keeps the window honest about configs the studio's worker cannot train (core/config/native_training.h):
// such presets are marked in the Presets menu, the Model tab shows why under Model Family with a button to
// export for SimpleTuner, and Start is disabled with the reason (tooltip and status line).
#pragma once
#include <QObject>
#include <QString>

class QAction;
class QFrame;
class QLabel;
class QMenu;
class QPushButton;

namespace repa::ui {

class SettingsPanel;

// The text a preset's menu entry gets when the worker cannot train it.
QString export_only_preset_suffix();

class NativeSupport : public QObject {
  Q_OBJECT

 public:
  NativeSupport(SettingsPanel* settings, QObject* parent);

  // Marks the presets of `menu` (actions named preset_<name>) that the worker cannot train.
  void mark_presets(QMenu* menu);
  // Why the open document cannot train natively; "" when it can.
  QString blocker() const { return blocker_; }
  QFrame* banner() const { return banner_; }
  QPushButton* export_button() const { return export_button_; }

 signals:
  // The blocker changed (Start's state follows it).
  void changed(const QString& blocker);

 private:
  void refresh();

  SettingsPanel* settings_ = nullptr;
  QFrame* banner_ = nullptr;
  QLabel* banner_text_ = nullptr;
  QPushButton* export_button_ = nullptr;
  QString blocker_;
};

}  // namespace repa::ui
