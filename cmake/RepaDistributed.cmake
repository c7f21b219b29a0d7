# Data-parallel training (core/train/distributed.cpp): Gloo comes with libtorch's CPU library (its headers from
# libgloo-dev, detected in the source); NCCL only for a CUDA libtorch with nccl.h, so a CPU build never needs it.
find_path(REPA_NCCL_INCLUDE_DIR nccl.h HINTS ENV NCCL_ROOT PATH_SUFFIXES include)
if(REPA_NCCL_INCLUDE_DIR AND (TORCH_CUDA_LIBRARIES OR CUDA_FOUND))
  target_compile_definitions(repa_train PRIVATE REPA_WITH_NCCL USE_C10D_NCCL)
  target_include_directories(repa_train PRIVATE ${REPA_NCCL_INCLUDE_DIR})
  message(STATUS "Distributed training: Gloo and NCCL (${REPA_NCCL_INCLUDE_DIR})")
else()
  message(STATUS "Distributed training: Gloo (no NCCL: CPU libtorch or no nccl.h)")
endif()
