// docs/options.md is generated from the registry (`repa-train options --markdown > docs/options.md`); this
// test fails when the committed file is stale.
#include <doctest/doctest.h>

#include "core/config/options_doc.h"
#include "core/config/registry.h"
#include "tests/test_support.h"

TEST_CASE("docs/options.md is up to date with the registry") {
  const std::string committed = repa::test::read_bytes(repa::test::source_path("docs/options.md"));
  const std::string generated = repa::config::options_markdown();
  CHECK_MESSAGE(committed == generated,
                "docs/options.md is stale: run `repa-train options --markdown > docs/options.md`");
}

TEST_CASE("the generated docs list every option with its default and range") {
  const std::string doc = repa::config::options_markdown();
  for (const auto& spec : repa::config::registry())
    CHECK_MESSAGE(doc.find("`" + spec.key + "`") != std::string::npos, spec.key);
  CHECK(doc.find("| `crepa_lambda` | CREPA Weight | float | `0.5` | ≥ 0 | `crepa_enabled` = true | yes |") !=
        std::string::npos);
  CHECK(doc.find("| `xm_enabled` | Enable XM | bool | `false` |  |  | export only |") != std::string::npos);
  CHECK(doc.find("| export only; refuses a native run |") != std::string::npos);
  CHECK(doc.find("| `crepa_use_tae` | CREPA: Use Tiny AutoEncoder | bool | `false` |  | `crepa_enabled` = true | "
                 "when `studio.teacher_input` = \"vae_decode\" |") != std::string::npos);
  CHECK(doc.find("alias `validation_steps`") != std::string::npos);
  CHECK(doc.find("| `sit-xl-2` |") != std::string::npos);
}
