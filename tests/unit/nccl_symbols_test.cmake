# CTest script: the NCCL functions libnccl_moe.so references. Those NCCL has had since 2.7 may be
# ordinary references; newer ones must be weak, exactly the list in src/misc/nccl_symbols.h, so
# that the library loads beside any NCCL and ncclMoeCommCreate reports a too-old one itself.
# A new NCCL call fails this test until it is put in one list or the other (and the minimum in
# src/misc/nccl_version.h covers it). Arguments: LIBRARY, NM, SYMBOLS_HEADER.
cmake_minimum_required(VERSION 3.22)  # IN_LIST
execute_process(COMMAND "${NM}" -D --undefined-only "${LIBRARY}"
                RESULT_VARIABLE result OUTPUT_VARIABLE listing ERROR_VARIABLE error)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${NM} -D ${LIBRARY} failed: ${error}")
endif()

set(since_2_7 ncclAllGather ncclAllReduce ncclBroadcast ncclReduce ncclReduceScatter ncclCommAbort
    ncclCommCount ncclCommCuDevice ncclCommDestroy ncclCommGetAsyncError ncclCommInitRank
    ncclCommUserRank ncclGetErrorString ncclGetUniqueId ncclGetVersion ncclGroupEnd ncclGroupStart
    ncclRecv ncclSend)
file(STRINGS "${SYMBOLS_HEADER}" weak_lines REGEX "^#pragma weak nccl[A-Za-z]+")
set(expected_weak "")
foreach(line IN LISTS weak_lines)
  string(REGEX MATCH "nccl[A-Za-z]+" name "${line}")
  list(APPEND expected_weak ${name})
endforeach()

string(REPLACE "\n" ";" lines "${listing}")
set(problems "")
set(found_weak "")
foreach(line IN LISTS lines)
  if(NOT line MATCHES "^ *([UwWv]) (nccl[A-Za-z0-9_]+)")
    continue()
  endif()
  set(kind "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  if(name MATCHES "^ncclMoe")
    continue()
  endif()
  if(kind STREQUAL "U")
    if(NOT name IN_LIST since_2_7)
      string(APPEND problems "  ${name}: an ordinary reference to an NCCL function newer than 2.7; "
                             "add it to src/misc/nccl_symbols.h (and check kMinNccl* in nccl_version.h)\n")
    endif()
  else()
    list(APPEND found_weak ${name})
    if(NOT name IN_LIST expected_weak)
      string(APPEND problems "  ${name}: weak but not listed in src/misc/nccl_symbols.h\n")
    endif()
  endif()
endforeach()
foreach(name IN LISTS expected_weak)
  if(NOT name IN_LIST found_weak)
    string(APPEND problems "  ${name}: listed in src/misc/nccl_symbols.h but not a weak reference of "
                           "the library (a file calls it without including the header, or nothing calls it)\n")
  endif()
endforeach()
if(problems)
  message(FATAL_ERROR "NCCL references of ${LIBRARY}:\n${problems}")
endif()
message(STATUS "NCCL references ok; weak: ${found_weak}")
