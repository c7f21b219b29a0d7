// The main window opens offscreen, shows its chart and log, and saves a screenshot.
#include <qcustomplot.h>

#include <QDir>
#include <QPlainTextEdit>
#include <QTabWidget>
#include <QtTest>

#include "ui/main_window.h"

class MainWindowTest : public QObject {
  Q_OBJECT

 private slots:
  void opens_and_saves_a_screenshot() {
    repa::ui::MainWindow window;
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QCOMPARE(window.windowTitle(), QStringLiteral("REPA Studio"));
    QVERIFY(window.loss_chart() != nullptr);
    QVERIFY(window.findChild<QPlainTextEdit*>(QStringLiteral("logView")) != nullptr);

    QDir().mkpath(QStringLiteral(REPA_SCREENSHOT_DIR));
    const QString path = QStringLiteral(REPA_SCREENSHOT_DIR "/main_window.png");
    const QPixmap shot = window.grab();
    QVERIFY(!shot.isNull());
    QVERIFY(shot.width() >= 800);
    QVERIFY(shot.save(path));
    QVERIFY(QFileInfo(path).size() > 1000);
  }
};

QTEST_MAIN(MainWindowTest)
#include "tst_main_window.moc"
