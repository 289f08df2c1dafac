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

# The rank bootstrap for rank programs (tools/bootstrap): a static library and its C++ header.
install(TARGETS nccl_moe_bootstrap EXPORT NcclMoeTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/include/nccl_moe_bootstrap.h" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

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
configure_file("${CMAKE_CURRENT_LIST_DIR}/nccl_moe_bootstrap.pc.in"
               "${CMAKE_BINARY_DIR}/packaging/nccl_moe_bootstrap.pc" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/packaging/nccl_moe_bootstrap.pc" DESTINATION "${_pc_dir}")
