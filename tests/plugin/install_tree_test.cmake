# CTest script: `cmake --install` the build into a scratch prefix, check what landed there, then
# configure and build examples/ against the installed package only (find_package(NcclMoe)).
# Arguments: BUILD_DIR, EXAMPLES_DIR, WORK_DIR, CXX_COMPILER, CUDA_ROOT; PYTHON_EXECUTABLE (optional:
# then the Python package's install is checked too).
foreach(arg BUILD_DIR EXAMPLES_DIR WORK_DIR CXX_COMPILER CUDA_ROOT)
  if(NOT DEFINED ${arg})
    message(FATAL_ERROR "install_tree_test.cmake needs -D${arg}=...")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${what} failed (${result}):\n${out}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
run_step("cmake --install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

# The library under its soname and the plugin name (a symlink to the same file), the headers, the
# static rank bootstrap, the CMake package and the pkg-config files.
file(GLOB_RECURSE libraries LIST_DIRECTORIES false "${prefix}/lib*/libnccl_moe.so.0")
list(LENGTH libraries found)
if(NOT found EQUAL 1)
  message(FATAL_ERROR "expected one libnccl_moe.so.0 under ${prefix}, found: ${libraries}")
endif()
get_filename_component(libdir "${libraries}" DIRECTORY)
foreach(file
    "${libdir}/libnccl_moe.so" "${libdir}/libnccl-tuner-moe.so" "${prefix}/include/nccl_moe.h"
    "${libdir}/libnccl_moe_bootstrap.a" "${prefix}/include/nccl_moe_bootstrap.h"
    "${libdir}/cmake/NcclMoe/NcclMoeConfig.cmake" "${libdir}/cmake/NcclMoe/NcclMoeConfigVersion.cmake"
    "${libdir}/pkgconfig/nccl_moe.pc" "${libdir}/pkgconfig/nccl_moe_bootstrap.pc")
  if(NOT EXISTS "${file}")
    message(FATAL_ERROR "not installed: ${file}")
  endif()
endforeach()
if(NOT IS_SYMLINK "${libdir}/libnccl-tuner-moe.so")
  message(FATAL_ERROR "libnccl-tuner-moe.so must be a symlink (one copy of the library per process)")
endif()
file(REAL_PATH "${libdir}/libnccl-tuner-moe.so" plugin_target)
file(REAL_PATH "${libdir}/libnccl_moe.so.0" library_target)
if(NOT plugin_target STREQUAL library_target)
  message(FATAL_ERROR "libnccl-tuner-moe.so -> ${plugin_target}, not ${library_target}")
endif()

find_program(PKG_CONFIG_EXECUTABLE pkg-config)
if(PKG_CONFIG_EXECUTABLE)
  set(ENV{PKG_CONFIG_PATH} "${libdir}/pkgconfig")
  execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --cflags --libs nccl_moe
    RESULT_VARIABLE result OUTPUT_VARIABLE flags ERROR_VARIABLE flags)
  if(NOT result EQUAL 0 OR NOT flags MATCHES "-lnccl_moe" OR NOT flags MATCHES "/include")
    message(FATAL_ERROR "pkg-config nccl_moe: ${flags}")
  endif()
  message(STATUS "pkg-config nccl_moe: ${flags}")
  execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --cflags --libs nccl_moe_bootstrap
    RESULT_VARIABLE result OUTPUT_VARIABLE flags ERROR_VARIABLE flags)
  if(NOT result EQUAL 0 OR NOT flags MATCHES "-lnccl_moe_bootstrap" OR NOT flags MATCHES "-lcudart")
    message(FATAL_ERROR "pkg-config nccl_moe_bootstrap: ${flags}")
  endif()
endif()

# The Python package: not part of a plain install (NCCL_MOE_INSTALL_PYTHON is off in this build),
# installed on request as the "python" component, where it loads the installed library through
# its nccl_moe/lib/ link, with NCCL_MOE_LIBRARY unset and from outside the checkout.
file(GLOB_RECURSE stray LIST_DIRECTORIES false "${prefix}/*.py")
if(stray)
  message(FATAL_ERROR "a plain install installed Python files: ${stray}")
endif()
if(PYTHON_EXECUTABLE)
  run_step("cmake --install --component python"
    ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}" --component python)
  file(GLOB_RECURSE links LIST_DIRECTORIES false "${prefix}/*libnccl_moe.so")
  list(FILTER links INCLUDE REGEX "/nccl_moe/lib/libnccl_moe\\.so$")
  list(LENGTH links found)
  if(NOT found EQUAL 1 OR NOT IS_SYMLINK "${links}")
    message(FATAL_ERROR "expected one nccl_moe/lib/libnccl_moe.so link under ${prefix}, found: ${links}")
  endif()
  file(REAL_PATH "${links}" link_target)
  if(NOT link_target STREQUAL library_target)
    message(FATAL_ERROR "nccl_moe/lib/libnccl_moe.so -> ${link_target}, not ${library_target}")
  endif()
  get_filename_component(package_dir "${links}" DIRECTORY)
  get_filename_component(site_dir "${package_dir}/../.." ABSOLUTE)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env --unset=NCCL_MOE_LIBRARY "PYTHONPATH=${site_dir}"
      "${PYTHON_EXECUTABLE}" -c "import nccl_moe; print(nccl_moe.load_library().path)"
    WORKING_DIRECTORY "${WORK_DIR}"
    RESULT_VARIABLE result OUTPUT_VARIABLE loaded ERROR_VARIABLE error OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT result EQUAL 0 OR NOT loaded STREQUAL links)
    message(FATAL_ERROR "the installed package loaded '${loaded}', not ${links}: ${error}")
  endif()
  message(STATUS "installed Python package loads ${loaded}")
endif()

run_step("configure examples/"
  ${CMAKE_COMMAND} -S "${EXAMPLES_DIR}" -B "${WORK_DIR}/examples"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCUDAToolkit_ROOT=${CUDA_ROOT}" -DCMAKE_BUILD_TYPE=Release)
run_step("build examples/" ${CMAKE_COMMAND} --build "${WORK_DIR}/examples")
if(NOT EXISTS "${WORK_DIR}/examples/moe_layer")
  message(FATAL_ERROR "examples/ built no moe_layer")
endif()
