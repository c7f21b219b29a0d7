# Shared helpers for the project's targets: warnings, the LibTorch precompiled header, core modules.

set(REPA_WARNINGS -Wall -Wextra)

# Our own code compiles warning-free; third-party headers are included as SYSTEM so theirs stay out.
function(repa_warnings target)
  target_compile_options(${target} PRIVATE ${REPA_WARNINGS})
endfunction()

# repa_pch_library(name [compile options...]): a library whose only job is to compile cmake/repa_pch.h once,
# under the given options, for the targets that REUSE_FROM it.
function(repa_pch_library name)
  add_library(${name} STATIC ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
  target_link_libraries(${name} PUBLIC ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json spdlog::spdlog)
  target_compile_options(${name} PRIVATE ${ARGN})
  target_precompile_headers(${name} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/repa_pch.h)
endfunction()

# One precompiled header serves every LibTorch-heavy target (REUSE_FROM keeps it to a single compile).
if(REPA_USE_PCH)
  repa_pch_library(repa_pch)
endif()

function(repa_use_pch target)
  if(REPA_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM repa_pch)
  endif()
endfunction()

# Test code does not need the optimizer: the work a test measures runs in the core libraries and LibTorch, which
# keep the build type's flags. In optimized builds the test executables compile at REPA_TEST_OPTIMIZATION (-O1
# takes about 40% off their compile time against -O3), with a precompiled header of their own built the same way
# (GCC refuses a precompiled header made under other -O flags).
set(REPA_TEST_OPTIMIZATION "-O1" CACHE STRING
    "Optimization flag of test code in Release/RelWithDebInfo/MinSizeRel builds (empty: the build type's own)")
set(REPA_TEST_OPT_FLAGS "")
if(REPA_TEST_OPTIMIZATION)
  set(REPA_TEST_OPT_FLAGS "$<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:${REPA_TEST_OPTIMIZATION}>")
endif()
if(REPA_USE_PCH AND REPA_BUILD_TESTS)
  repa_pch_library(repa_test_pch ${REPA_TEST_OPT_FLAGS})
endif()

# repa_test_code(target [NO_PCH]): a test executable or test library: REPA_TEST_OPTIMIZATION, and unless NO_PCH
# the test precompiled header.
function(repa_test_code target)
  cmake_parse_arguments(ARG "NO_PCH" "" "" ${ARGN})
  target_compile_options(${target} PRIVATE ${REPA_TEST_OPT_FLAGS})
  if(REPA_USE_PCH AND NOT ARG_NO_PCH)
    target_precompile_headers(${target} REUSE_FROM repa_test_pch)
  endif()
endfunction()

# repa_core_module(NAME folder DEPS ...): a static library of every .cpp under core/<folder>.
function(repa_core_module name)
  cmake_parse_arguments(ARG "NO_TORCH" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${name}/*.cpp)
  set(target repa_${name})
  if(sources)
    add_library(${target} STATIC ${sources})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${target} PUBLIC ${ARG_DEPS} ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json
                                             spdlog::spdlog Threads::Threads)
    repa_warnings(${target})
    if(NOT ARG_NO_TORCH)
      repa_use_pch(${target})
    endif()
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${target} INTERFACE ${ARG_DEPS} ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json
                                                spdlog::spdlog Threads::Threads)
  endif()
endfunction()
