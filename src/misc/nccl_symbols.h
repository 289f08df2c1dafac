// NCCL functions newer than NCCL 2.7 that the library calls, referenced weakly: a libnccl.so.2
// without them still lets the library load (even with RTLD_NOW, as Python's ctypes and NCCL's
// plugin loader open it), and ncclMoeCommCreate's version check (nccl_version.h) then explains
// what is missing instead of the loader's "undefined symbol". Every file that calls one of them
// includes this header (misc/nccl_status.h does); tests/unit/nccl_symbols_test.cmake checks the
// built library's references against this list.
#pragma once

#include <nccl.h>

#pragma weak ncclGetLastError  // NCCL 2.13
#pragma weak ncclCommFinalize  // NCCL 2.14
#pragma weak ncclCommSplit     // NCCL 2.18
