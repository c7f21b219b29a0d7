# Shared helpers for the project's targets: warnings, the LibTorch precompiled header, core modules.

set(REPA_WARNINGS -Wall -Wextra)

# Our own code compiles warning-free; third-party headers are included as SYSTEM so theirs stay out.
function(repa_warnings target)
  target_compile_options(${target} PRIVATE ${REPA_WARNINGS})
endfunction()

# One precompiled header serves every LibTorch-heavy target (REUSE_FROM keeps it to a single compile).
if(REPA_USE_PCH)
  add_library(repa_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
  target_link_libraries(repa_pch PUBLIC ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json spdlog::spdlog)
  target_precompile_headers(repa_pch PRIVATE ${PROJECT_SOURCE_DIR}/cmake/repa_pch.h)
endif()

function(repa_use_pch target)
  if(REPA_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM repa_pch)
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
