# The GPU architectures built when the user names none (neither -DCMAKE_CUDA_ARCHITECTURES nor the
# CUDAARCHS environment variable): SASS for every architecture from Ampere on that this nvcc can
# target, plus PTX of the newest so that later GPUs JIT-compile it. Included after project(), once
# CMAKE_CUDA_COMPILER_VERSION is known; the top-level CMakeLists.txt records beforehand whether the
# user chose (NCCL_MOE_USER_CUDA_ARCHITECTURES). A list this file stored on an earlier configure
# (NCCL_MOE_DEFAULT_CUDA_ARCHITECTURES) still counts as the default and is worked out again.
#
#   CUDA 13.x:        80 86 89 90 100 110 120 SASS + compute_120 PTX (13.0 dropped everything below 75)
#   CUDA 12.8-12.9:   80 86 89 90 100 120 SASS     + compute_120 PTX
#   CUDA 12.0-12.7:   80 86 89 90 SASS             + compute_90 PTX
# (CMake spelling: 80-real;...;110-real;120, the last meaning SASS and PTX.)
#
# SASS of X.Y runs on every X.Z with Z >= Y, so 80 also covers 87 (Orin), 100 covers 103 (B300) and
# 120 covers 121. 86 and 89 get SASS of their own, compiled for those chips. The kernels use no
# architecture-specific instruction (FP8 conversion is done in software: misc/numerics.h), so every
# entry compiles the same code.

set(NCCL_MOE_MIN_CUDA_VERSION 12.0)
if(CMAKE_CUDA_COMPILER_VERSION VERSION_LESS NCCL_MOE_MIN_CUDA_VERSION)
  message(FATAL_ERROR "nccl-moe needs CUDA ${NCCL_MOE_MIN_CUDA_VERSION} or newer; nvcc "
                      "${CMAKE_CUDA_COMPILER} is ${CMAKE_CUDA_COMPILER_VERSION}. Set CUDA_HOME or "
                      "-DCMAKE_CUDA_COMPILER=<newer nvcc>.")
endif()

# nccl_moe_default_cuda_architectures(<out-var>): the list above for CMAKE_CUDA_COMPILER_VERSION.
function(nccl_moe_default_cuda_architectures out)
  set(real 80 86 89)
  set(newest 90)
  if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.8)
    list(APPEND real 90 100)
    set(newest 120)
  endif()
  if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 13.0)
    list(APPEND real 110)
  endif()
  list(TRANSFORM real APPEND "-real")
  # The newest without a suffix: its SASS and its PTX from one compilation.
  set(${out} ${real} ${newest} PARENT_SCOPE)
endfunction()

if(NOT NCCL_MOE_USER_CUDA_ARCHITECTURES)
  nccl_moe_default_cuda_architectures(_nccl_moe_archs)
  # Cached, so a later configure of this build directory keeps the list (and -D still replaces it).
  set(CMAKE_CUDA_ARCHITECTURES "${_nccl_moe_archs}" CACHE STRING
      "CUDA architectures to build (nccl-moe's default for CUDA ${CMAKE_CUDA_COMPILER_VERSION})" FORCE)
  set(NCCL_MOE_DEFAULT_CUDA_ARCHITECTURES "${_nccl_moe_archs}" CACHE INTERNAL "")
  set(_nccl_moe_arch_origin "default for CUDA ${CMAKE_CUDA_COMPILER_VERSION}")
else()
  set(_nccl_moe_arch_origin "chosen by the user")
endif()
message(STATUS "nccl-moe: CUDA architectures ${CMAKE_CUDA_ARCHITECTURES} (${_nccl_moe_arch_origin})")
