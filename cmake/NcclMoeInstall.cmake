# Install rules and packaging: the library (versioned soname plus the NCCL tuner-plugin name
# libnccl-tuner-moe.so), the public header, the CLI tools that exist, a CMake package
# (find_package(NcclMoe) -> NcclMoe::nccl_moe) and a pkg-config file (nccl_moe.pc).
# Included at the end of the top-level CMakeLists.txt, once every target is defined.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(NCCL_MOE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/NcclMoe")

# NCCL_TUNER_PLUGIN=moe makes NCCL dlopen("libnccl-tuner-moe.so"). A symlink, not a copy: the
# dynamic loader then maps the one libnccl_moe.so whichever name a process opens it by, so the
# MoE API and the tuner share their process-wide state. Also made in the build tree, so that
# LD_LIBRARY_PATH=<build>/src works as an install does.
set(_plugin_link "${CMAKE_BINARY_DIR}/src/libnccl-tuner-moe.so")
add_custom_command(
  OUTPUT "${_plugin_link}"
  COMMAND ${CMAKE_COMMAND} -E create_symlink "libnccl_moe.so.${PROJECT_VERSION_MAJOR}" "${_plugin_link}"
  DEPENDS nccl_moe
  COMMENT "Linking libnccl-tuner-moe.so -> libnccl_moe.so.${PROJECT_VERSION_MAJOR}"
  VERBATIM)
add_custom_target(nccl_moe_tuner_link ALL DEPENDS "${_plugin_link}")

# Installed programs and the library find NCCL and the CUDA runtime where the build found them.
set_target_properties(nccl_moe PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
install(TARGETS nccl_moe EXPORT NcclMoeTargets
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(FILES "${_plugin_link}" DESTINATION "${CMAKE_INSTALL_LIBDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/include/nccl_moe.h" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

# The rank bootstrap for rank programs (tools/bootstrap): a static library and its C++ header
# (not in a library-only build: NCCL_MOE_LIBRARY_ONLY, the Python wheel's).
if(TARGET nccl_moe_bootstrap)
  install(TARGETS nccl_moe_bootstrap EXPORT NcclMoeTargets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
  install(FILES "${PROJECT_SOURCE_DIR}/include/nccl_moe_bootstrap.h" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
endif()

foreach(tool nccl-moe-topo nccl-moe-run nccl-moe-perf nccl-moe-demo)
  if(TARGET ${tool})
    set_target_properties(${tool} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}"
                                             INSTALL_RPATH_USE_LINK_PATH ON)
    install(TARGETS ${tool} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
  endif()
endforeach()

# CMake package: NcclMoeConfig.cmake finds CUDA and NCCL (with the FindNCCL module shipped next
# to it) and MPI when the bootstrap was built with it, then defines NcclMoe::nccl_moe and
# NcclMoe::bootstrap.
install(EXPORT NcclMoeTargets NAMESPACE NcclMoe:: DESTINATION "${NCCL_MOE_CMAKE_DIR}")
configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/NcclMoeConfig.cmake.in"
  "${CMAKE_BINARY_DIR}/packaging/NcclMoeConfig.cmake"
  INSTALL_DESTINATION "${NCCL_MOE_CMAKE_DIR}")
write_basic_package_version_file(
  "${CMAKE_BINARY_DIR}/packaging/NcclMoeConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${CMAKE_BINARY_DIR}/packaging/NcclMoeConfig.cmake"
  "${CMAKE_BINARY_DIR}/packaging/NcclMoeConfigVersion.cmake"
  "${CMAKE_CURRENT_LIST_DIR}/FindNCCL.cmake"
  DESTINATION "${NCCL_MOE_CMAKE_DIR}")

# pkg-config: relocatable (prefix from the .pc file's own place); NCCL's and CUDA's include and
# library directories as this build found them.
set(_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
file(RELATIVE_PATH NCCL_MOE_PC_PREFIX "/prefix/${_pc_dir}" "/prefix")
string(REGEX REPLACE "/$" "" NCCL_MOE_PC_PREFIX "${NCCL_MOE_PC_PREFIX}")
get_filename_component(NCCL_MOE_PC_NCCL_LIBDIR "${NCCL_LIBRARY}" DIRECTORY)
set(_pc_includes ${NCCL_INCLUDE_DIR} ${CUDAToolkit_INCLUDE_DIRS})
list(REMOVE_DUPLICATES _pc_includes)
list(JOIN _pc_includes " -I" NCCL_MOE_PC_DEP_INCLUDES)
configure_file("${CMAKE_CURRENT_LIST_DIR}/nccl_moe.pc.in" "${CMAKE_BINARY_DIR}/packaging/nccl_moe.pc" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/packaging/nccl_moe.pc" DESTINATION "${_pc_dir}")

# nccl_moe_bootstrap.pc: the static bootstrap with what it links (NCCL, the CUDA runtime, MPI).
set(NCCL_MOE_PC_CUDA_LIBDIR "${CUDAToolkit_LIBRARY_DIR}")
set(NCCL_MOE_PC_MPI_LIBS "")
if(NCCL_MOE_WITH_MPI)
  list(JOIN MPI_C_LIBRARIES " " NCCL_MOE_PC_MPI_LIBS)
endif()
if(TARGET nccl_moe_bootstrap)
  configure_file("${CMAKE_CURRENT_LIST_DIR}/nccl_moe_bootstrap.pc.in"
                 "${CMAKE_BINARY_DIR}/packaging/nccl_moe_bootstrap.pc" @ONLY)
  install(FILES "${CMAKE_BINARY_DIR}/packaging/nccl_moe_bootstrap.pc" DESTINATION "${_pc_dir}")
endif()

# The nccl_moe Python package, in its own install component "python":
# - a pip build (scikit-build-core sets SKBUILD; the wheel's install prefix is its site-packages):
#   the library itself as nccl_moe/lib/libnccl_moe.so, one plain file (a wheel holds no symlinks);
#   scikit-build-core adds the package's .py files (pyproject.toml: wheel.packages), and
#   pyproject.toml installs this component only;
# - `cmake --install`: the .py files under NCCL_MOE_PYTHON_INSTALL_DIR (relative to the prefix, or
#   absolute) and nccl_moe/lib/libnccl_moe.so as a relative symlink to the installed library, so
#   that the package loads the one copy in <prefix>/lib. Part of every install with
#   -DNCCL_MOE_INSTALL_PYTHON=ON; otherwise only on request: `cmake --install build --component python`.
# nccl_moe/library.py looks in nccl_moe/lib/ before the build tree and the loader's path.
if(SKBUILD)
  # The file is copied as built: give it its install RUNPATH (NCCL's directory) from the start,
  # not the build tree's, which CMake pads with an empty entry (the current directory).
  set_target_properties(nccl_moe PROPERTIES BUILD_WITH_INSTALL_RPATH ON)
  install(FILES "$<TARGET_FILE:nccl_moe>" DESTINATION nccl_moe/lib RENAME libnccl_moe.so COMPONENT python)
else()
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_FOUND)
    set(_python_dir "lib/python${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}/site-packages")
  else()
    set(_python_dir "lib/python3/site-packages")
  endif()
  # STRING, not PATH: CMake would make a relative -D value absolute against the current directory.
  set(NCCL_MOE_PYTHON_INSTALL_DIR "${_python_dir}" CACHE STRING
      "Where cmake --install puts the nccl_moe Python package (relative to the prefix, or absolute)")
  if(NCCL_MOE_INSTALL_PYTHON)
    set(_python_exclude "")
    message(STATUS "nccl-moe: cmake --install also installs the Python package to ${NCCL_MOE_PYTHON_INSTALL_DIR}")
  else()
    set(_python_exclude EXCLUDE_FROM_ALL)
  endif()
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/python/nccl_moe" DESTINATION "${NCCL_MOE_PYTHON_INSTALL_DIR}"
          COMPONENT python ${_python_exclude} FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
  # The link is made at install time, when the prefix (cmake --install --prefix, DESTDIR) is known.
  install(CODE "
    set(_pkg \"${NCCL_MOE_PYTHON_INSTALL_DIR}\")
    if(NOT IS_ABSOLUTE \"\${_pkg}\")
      set(_pkg \"\${CMAKE_INSTALL_PREFIX}/\${_pkg}\")
    endif()
    set(_link \"\$ENV{DESTDIR}\${_pkg}/nccl_moe/lib/libnccl_moe.so\")
    set(_target \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/libnccl_moe.so.${PROJECT_VERSION_MAJOR}\")
    file(RELATIVE_PATH _relative \"\${_pkg}/nccl_moe/lib\" \"\${_target}\")
    file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${_pkg}/nccl_moe/lib\")
    message(STATUS \"Installing: \${_link} -> \${_relative}\")
    file(CREATE_LINK \"\${_relative}\" \"\${_link}\" SYMBOLIC)
  " COMPONENT python ${_python_exclude})
endif()
