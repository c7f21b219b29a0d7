// The Run panel's "Processes" field (studio.num_processes): generated from the registry with its timeout shown
// only for more than one process; the config the window writes carries it, and repa-train run launches that
// many local ranks from it (docs/distributed.md).
#include <QSpinBox>
#include <QtTest>
#include <algorithm>

#include "ui/option_form.h"
#include "ui/settings_panel.h"

using repa::ui::OptionForm;
using repa::ui::Panel;
using repa::ui::SettingsPanel;

class ProcessesSettingTest : public QObject {
  Q_OBJECT

 private slots:
  void processes_sit_on_the_run_panel_and_reveal_their_timeout() {
    SettingsPanel panel;
    OptionForm* form = panel.form();
    const auto keys = form->field_keys(Panel::Run);
    QVERIFY(std::find(keys.begin(), keys.end(), "studio.num_processes") != keys.end());
    auto* spin = qobject_cast<QSpinBox*>(form->editor("studio.num_processes"));
    QVERIFY(spin);
    QCOMPARE(spin->value(), 1);
    QCOMPARE(spin->minimum(), 1);
    QVERIFY(!form->is_shown("studio.distributed_timeout"));
    form->set_value("studio.num_processes", 2);
    QVERIFY(form->is_shown("studio.distributed_timeout"));
    QCOMPARE(form->config()["studio"]["num_processes"].get<int>(), 2);
  }
};

QTEST_MAIN(ProcessesSettingTest)
#include "tst_processes_setting.moc"
