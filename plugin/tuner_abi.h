// NCCL's tuner-plugin ABI, every version nccl-moe serves: one header per version under
// plugin/tuner_abi/ (as NCCL keeps them), each declared from NCCL's documented layout. NCCL
// dlsym()s "ncclTunerPlugin_v<N>" newest first (2.30 tries v6, v5, v4, v3, v2; 2.28 starts at v5;
// NCCL's development tree after 2.30.7 starts at v7)
// and reads the struct the symbol names. tests/plugin/test_tuner_abi_layout.cc pins every layout.
#pragma once

#include "plugin/tuner_abi/common.h"
#include "plugin/tuner_abi/tuner_v2.h"
#include "plugin/tuner_abi/tuner_v3.h"
#include "plugin/tuner_abi/tuner_v4.h"
#include "plugin/tuner_abi/tuner_v5.h"
#include "plugin/tuner_abi/tuner_v6.h"
#include "plugin/tuner_abi/tuner_v7.h"

namespace nccl_moe::tuner_abi {

// The domain info and constants the version-independent calls carry (tuner_calls.h): v5's table,
// which v5 and v6 pass as it is and v7 as a copy of its shared rows (tuner_abi/tuner_v7.h). Older
// versions pass none.
using NvlDomainInfo = NvlDomainInfoV6;
using TunerConstants = TunerConstantsV6;

// The name this plugin reports in every version's struct (NCCL logs "Using <name> (v6)").
constexpr const char* kPluginName = "nccl-moe";

}  // namespace nccl_moe::tuner_abi
