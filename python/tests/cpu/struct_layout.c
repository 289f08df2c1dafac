/* Prints the layout and INITIALIZER values of the public structs, one "key value" per line, for
 * test_structs.py to compare with the ctypes mirrors. */
#include <stddef.h>
#include <stdio.h>

#include "nccl_moe.h"

#define SIZE(T) printf("%s.sizeof %zu\n", #T, sizeof(T))
#define FIELD(T, f) printf("%s.%s.offset %zu\n", #T, #f, offsetof(T, f))
#define VALUE(T, var, f) printf("%s.%s.init %lld\n", #T, #f, (long long)(var).f)
#define PTR(T, var, f) printf("%s.%s.init %lld\n", #T, #f, (long long)((var).f != NULL))

int main(void) {
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
  ncclMoeLayoutOptions_t options = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
  ncclMoeDispatchArgs_t dispatch = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  ncclMoeCombineArgs_t combine = NCCL_MOE_COMBINE_ARGS_INITIALIZER;

  SIZE(ncclMoeConfig_t);
  FIELD(ncclMoeConfig_t, size); FIELD(ncclMoeConfig_t, magic); FIELD(ncclMoeConfig_t, version);
  FIELD(ncclMoeConfig_t, numExperts); FIELD(ncclMoeConfig_t, hiddenSize);
  FIELD(ncclMoeConfig_t, maxTokensPerRank); FIELD(ncclMoeConfig_t, maxTopk);
  FIELD(ncclMoeConfig_t, dataType); FIELD(ncclMoeConfig_t, fp8Dispatch);
  FIELD(ncclMoeConfig_t, fp8PowerOfTwoScales); FIELD(ncclMoeConfig_t, dispatchSms);
  FIELD(ncclMoeConfig_t, combineSms); FIELD(ncclMoeConfig_t, timeoutMs);
  FIELD(ncclMoeConfig_t, lowLatencyMaxTokens); FIELD(ncclMoeConfig_t, lowLatencyFp8);
  FIELD(ncclMoeConfig_t, combineWindowTokens);
  VALUE(ncclMoeConfig_t, config, size); VALUE(ncclMoeConfig_t, config, magic);
  VALUE(ncclMoeConfig_t, config, version); VALUE(ncclMoeConfig_t, config, numExperts);
  VALUE(ncclMoeConfig_t, config, hiddenSize); VALUE(ncclMoeConfig_t, config, maxTokensPerRank);
  VALUE(ncclMoeConfig_t, config, maxTopk); VALUE(ncclMoeConfig_t, config, dataType);
  VALUE(ncclMoeConfig_t, config, fp8Dispatch); VALUE(ncclMoeConfig_t, config, fp8PowerOfTwoScales);
  VALUE(ncclMoeConfig_t, config, dispatchSms); VALUE(ncclMoeConfig_t, config, combineSms);
  VALUE(ncclMoeConfig_t, config, timeoutMs); VALUE(ncclMoeConfig_t, config, lowLatencyMaxTokens);
  VALUE(ncclMoeConfig_t, config, lowLatencyFp8); VALUE(ncclMoeConfig_t, config, combineWindowTokens);

  SIZE(ncclMoeRouting_t);
  FIELD(ncclMoeRouting_t, size); FIELD(ncclMoeRouting_t, magic); FIELD(ncclMoeRouting_t, version);
  FIELD(ncclMoeRouting_t, format); FIELD(ncclMoeRouting_t, numTokens); FIELD(ncclMoeRouting_t, topk);
  FIELD(ncclMoeRouting_t, topkIdx); FIELD(ncclMoeRouting_t, topkProbs);
  FIELD(ncclMoeRouting_t, routingMap); FIELD(ncclMoeRouting_t, denseProbs);
  VALUE(ncclMoeRouting_t, routing, size); VALUE(ncclMoeRouting_t, routing, magic);
  VALUE(ncclMoeRouting_t, routing, version); VALUE(ncclMoeRouting_t, routing, format);
  VALUE(ncclMoeRouting_t, routing, numTokens); VALUE(ncclMoeRouting_t, routing, topk);
  PTR(ncclMoeRouting_t, routing, topkIdx); PTR(ncclMoeRouting_t, routing, topkProbs);
  PTR(ncclMoeRouting_t, routing, routingMap); PTR(ncclMoeRouting_t, routing, denseProbs);

  SIZE(ncclMoeLayoutOptions_t);
  FIELD(ncclMoeLayoutOptions_t, size); FIELD(ncclMoeLayoutOptions_t, magic);
  FIELD(ncclMoeLayoutOptions_t, version); FIELD(ncclMoeLayoutOptions_t, layout);
  FIELD(ncclMoeLayoutOptions_t, padMultiple); FIELD(ncclMoeLayoutOptions_t, rowBudget);
  VALUE(ncclMoeLayoutOptions_t, options, size); VALUE(ncclMoeLayoutOptions_t, options, magic);
  VALUE(ncclMoeLayoutOptions_t, options, version); VALUE(ncclMoeLayoutOptions_t, options, layout);
  VALUE(ncclMoeLayoutOptions_t, options, padMultiple);
  VALUE(ncclMoeLayoutOptions_t, options, rowBudget);

  SIZE(ncclMoeDispatchArgs_t);
  FIELD(ncclMoeDispatchArgs_t, size); FIELD(ncclMoeDispatchArgs_t, magic);
  FIELD(ncclMoeDispatchArgs_t, version); FIELD(ncclMoeDispatchArgs_t, x);
  FIELD(ncclMoeDispatchArgs_t, recvRows); FIELD(ncclMoeDispatchArgs_t, recvX);
  FIELD(ncclMoeDispatchArgs_t, recvScales); FIELD(ncclMoeDispatchArgs_t, recvTopkIdx);
  FIELD(ncclMoeDispatchArgs_t, recvRoutingMap); FIELD(ncclMoeDispatchArgs_t, recvProbs);
  VALUE(ncclMoeDispatchArgs_t, dispatch, size); VALUE(ncclMoeDispatchArgs_t, dispatch, magic);
  VALUE(ncclMoeDispatchArgs_t, dispatch, version); PTR(ncclMoeDispatchArgs_t, dispatch, x);
  VALUE(ncclMoeDispatchArgs_t, dispatch, recvRows); PTR(ncclMoeDispatchArgs_t, dispatch, recvX);
  PTR(ncclMoeDispatchArgs_t, dispatch, recvScales); PTR(ncclMoeDispatchArgs_t, dispatch, recvTopkIdx);
  PTR(ncclMoeDispatchArgs_t, dispatch, recvRoutingMap); PTR(ncclMoeDispatchArgs_t, dispatch, recvProbs);

  SIZE(ncclMoeCombineArgs_t);
  FIELD(ncclMoeCombineArgs_t, size); FIELD(ncclMoeCombineArgs_t, magic);
  FIELD(ncclMoeCombineArgs_t, version); FIELD(ncclMoeCombineArgs_t, x);
  FIELD(ncclMoeCombineArgs_t, rows); FIELD(ncclMoeCombineArgs_t, out);
  FIELD(ncclMoeCombineArgs_t, probsGrad); FIELD(ncclMoeCombineArgs_t, outProbsGrad);
  VALUE(ncclMoeCombineArgs_t, combine, size); VALUE(ncclMoeCombineArgs_t, combine, magic);
  VALUE(ncclMoeCombineArgs_t, combine, version); PTR(ncclMoeCombineArgs_t, combine, x);
  VALUE(ncclMoeCombineArgs_t, combine, rows); PTR(ncclMoeCombineArgs_t, combine, out);
  PTR(ncclMoeCombineArgs_t, combine, probsGrad); PTR(ncclMoeCombineArgs_t, combine, outProbsGrad);

  ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  SIZE(ncclMoeCommInfo_t);
  FIELD(ncclMoeCommInfo_t, size); FIELD(ncclMoeCommInfo_t, magic); FIELD(ncclMoeCommInfo_t, version);
  FIELD(ncclMoeCommInfo_t, rank); FIELD(ncclMoeCommInfo_t, ranks); FIELD(ncclMoeCommInfo_t, domains);
  FIELD(ncclMoeCommInfo_t, ranksPerDomain); FIELD(ncclMoeCommInfo_t, netChunks);
  FIELD(ncclMoeCommInfo_t, netChunkRows); FIELD(ncclMoeCommInfo_t, dispatchSms);
  FIELD(ncclMoeCommInfo_t, combineSms); FIELD(ncclMoeCommInfo_t, bufferBytes);
  FIELD(ncclMoeCommInfo_t, metaSlotBytes); FIELD(ncclMoeCommInfo_t, netDispatchRowBytes);
  FIELD(ncclMoeCommInfo_t, netCombineRowBytes); FIELD(ncclMoeCommInfo_t, netSlotRows);
  FIELD(ncclMoeCommInfo_t, lowLatencyBufferBytes);
  VALUE(ncclMoeCommInfo_t, info, size); VALUE(ncclMoeCommInfo_t, info, magic);
  VALUE(ncclMoeCommInfo_t, info, version); VALUE(ncclMoeCommInfo_t, info, rank);
  VALUE(ncclMoeCommInfo_t, info, ranks); VALUE(ncclMoeCommInfo_t, info, domains);
  VALUE(ncclMoeCommInfo_t, info, ranksPerDomain); VALUE(ncclMoeCommInfo_t, info, netChunks);
  VALUE(ncclMoeCommInfo_t, info, netChunkRows); VALUE(ncclMoeCommInfo_t, info, dispatchSms);
  VALUE(ncclMoeCommInfo_t, info, combineSms); VALUE(ncclMoeCommInfo_t, info, bufferBytes);
  VALUE(ncclMoeCommInfo_t, info, metaSlotBytes); VALUE(ncclMoeCommInfo_t, info, netDispatchRowBytes);
  VALUE(ncclMoeCommInfo_t, info, netCombineRowBytes); VALUE(ncclMoeCommInfo_t, info, netSlotRows);
  VALUE(ncclMoeCommInfo_t, info, lowLatencyBufferBytes);

  ncclMoeLowLatencyDispatchArgs_t llDispatch = NCCL_MOE_LOW_LATENCY_DISPATCH_ARGS_INITIALIZER;
  SIZE(ncclMoeLowLatencyDispatchArgs_t);
  FIELD(ncclMoeLowLatencyDispatchArgs_t, size); FIELD(ncclMoeLowLatencyDispatchArgs_t, magic);
  FIELD(ncclMoeLowLatencyDispatchArgs_t, version); FIELD(ncclMoeLowLatencyDispatchArgs_t, numTokens);
  FIELD(ncclMoeLowLatencyDispatchArgs_t, topk); FIELD(ncclMoeLowLatencyDispatchArgs_t, x);
  FIELD(ncclMoeLowLatencyDispatchArgs_t, topkIdx); FIELD(ncclMoeLowLatencyDispatchArgs_t, recvX);
  FIELD(ncclMoeLowLatencyDispatchArgs_t, recvScales); FIELD(ncclMoeLowLatencyDispatchArgs_t, recvCount);
  FIELD(ncclMoeLowLatencyDispatchArgs_t, recvSrcInfo);
  VALUE(ncclMoeLowLatencyDispatchArgs_t, llDispatch, size); VALUE(ncclMoeLowLatencyDispatchArgs_t, llDispatch, magic);
  VALUE(ncclMoeLowLatencyDispatchArgs_t, llDispatch, version);
  VALUE(ncclMoeLowLatencyDispatchArgs_t, llDispatch, numTokens);
  VALUE(ncclMoeLowLatencyDispatchArgs_t, llDispatch, topk); PTR(ncclMoeLowLatencyDispatchArgs_t, llDispatch, x);
  PTR(ncclMoeLowLatencyDispatchArgs_t, llDispatch, topkIdx); PTR(ncclMoeLowLatencyDispatchArgs_t, llDispatch, recvX);
  PTR(ncclMoeLowLatencyDispatchArgs_t, llDispatch, recvScales);
  PTR(ncclMoeLowLatencyDispatchArgs_t, llDispatch, recvCount);
  PTR(ncclMoeLowLatencyDispatchArgs_t, llDispatch, recvSrcInfo);

  ncclMoeLowLatencyCombineArgs_t llCombine = NCCL_MOE_LOW_LATENCY_COMBINE_ARGS_INITIALIZER;
  SIZE(ncclMoeLowLatencyCombineArgs_t);
  FIELD(ncclMoeLowLatencyCombineArgs_t, size); FIELD(ncclMoeLowLatencyCombineArgs_t, magic);
  FIELD(ncclMoeLowLatencyCombineArgs_t, version); FIELD(ncclMoeLowLatencyCombineArgs_t, numTokens);
  FIELD(ncclMoeLowLatencyCombineArgs_t, topk); FIELD(ncclMoeLowLatencyCombineArgs_t, y);
  FIELD(ncclMoeLowLatencyCombineArgs_t, recvCount); FIELD(ncclMoeLowLatencyCombineArgs_t, recvSrcInfo);
  FIELD(ncclMoeLowLatencyCombineArgs_t, topkIdx); FIELD(ncclMoeLowLatencyCombineArgs_t, weights);
  FIELD(ncclMoeLowLatencyCombineArgs_t, out);
  VALUE(ncclMoeLowLatencyCombineArgs_t, llCombine, size); VALUE(ncclMoeLowLatencyCombineArgs_t, llCombine, magic);
  VALUE(ncclMoeLowLatencyCombineArgs_t, llCombine, version);
  VALUE(ncclMoeLowLatencyCombineArgs_t, llCombine, numTokens);
  VALUE(ncclMoeLowLatencyCombineArgs_t, llCombine, topk); PTR(ncclMoeLowLatencyCombineArgs_t, llCombine, y);
  PTR(ncclMoeLowLatencyCombineArgs_t, llCombine, recvCount);
  PTR(ncclMoeLowLatencyCombineArgs_t, llCombine, recvSrcInfo);
  PTR(ncclMoeLowLatencyCombineArgs_t, llCombine, topkIdx);
  PTR(ncclMoeLowLatencyCombineArgs_t, llCombine, weights); PTR(ncclMoeLowLatencyCombineArgs_t, llCombine, out);

  printf("NCCL_MOE_UNDEF_INT %lld\n", (long long)NCCL_MOE_UNDEF_INT);
  printf("NCCL_MOE_MAGIC %lld\n", (long long)NCCL_MOE_MAGIC);
  printf("NCCL_MOE_STRUCT_VERSION %lld\n", (long long)NCCL_MOE_STRUCT_VERSION);
  printf("NCCL_MOE_ROUTING_TOPK %d\nNCCL_MOE_ROUTING_MAP %d\n", NCCL_MOE_ROUTING_TOPK, NCCL_MOE_ROUTING_MAP);
  printf("NCCL_MOE_LAYOUT_PER_RANK %d\nNCCL_MOE_LAYOUT_EXPERT_MAJOR %d\n", NCCL_MOE_LAYOUT_PER_RANK,
         NCCL_MOE_LAYOUT_EXPERT_MAJOR);
  printf("ncclFloat32 %d\nncclBfloat16 %d\n", (int)ncclFloat32, (int)ncclBfloat16);
  printf("ncclInvalidArgument %d\nncclInvalidUsage %d\nncclRemoteError %d\n", (int)ncclInvalidArgument,
         (int)ncclInvalidUsage, (int)ncclRemoteError);
  printf("NCCL_MOE_VERSION_CODE %d\n", NCCL_MOE_VERSION_CODE);
  return 0;
}
