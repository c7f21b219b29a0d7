// repa-studio: the desktop window. Thin: application setup, command line, then the main window.
//   repa-studio [CONFIG.json | RUN_DIR] [--preset NAME] [--start]
#include <QApplication>
#include <QCommandLineParser>
#include <QFileInfo>
#include <QMessageBox>
#include <QTimer>

#include "core/base/version.h"
#include "ui/main_window.h"
#include "ui/settings_panel.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("repa-studio"));
  QApplication::setApplicationName(QStringLiteral("REPA Studio"));
  QApplication::setApplicationVersion(QString::fromLatin1(repa::kVersion));

  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral("Train diffusion models with representation alignment."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(QStringLiteral("path"),
                               QStringLiteral("A studio config (.json) to open, or a run directory to follow."));
  const QCommandLineOption preset(QStringLiteral("preset"), QStringLiteral("Start from this preset."),
                                  QStringLiteral("name"));
  parser.addOption(preset);
  const QCommandLineOption start(QStringLiteral("start"), QStringLiteral("Press Start once the window is up."));
  parser.addOption(start);
  parser.process(app);

  repa::ui::MainWindow window;
  window.show();
  if (parser.isSet(preset)) window.settings()->load_preset(parser.value(preset));
  const QStringList paths = parser.positionalArguments();
  if (!paths.isEmpty()) {
    const QString path = paths.front();
    QString error;
    const bool ok = QFileInfo(path).isDir() ? window.attach_run(path) : window.settings()->open_file(path, &error);
    if (!ok)
      QMessageBox::warning(&window, QStringLiteral("REPA Studio"),
                           error.isEmpty() ? QStringLiteral("%1 is not a run directory").arg(path) : error);
  }
  if (parser.isSet(start)) QTimer::singleShot(0, &window, [&window] { window.start_run(); });
  return QApplication::exec();
}
