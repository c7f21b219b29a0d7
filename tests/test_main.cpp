#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "core/base/threads.h"

int main(int argc, char** argv) {
  repa::configure_torch_threads();
  doctest::Context context(argc, argv);
  return context.run();
}
