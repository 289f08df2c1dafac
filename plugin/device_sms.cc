#include "device_sms.h"

#include <cuda_runtime_api.h>

namespace nccl_moe {

int currentDeviceSms() {
  int device = 0;
  int sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 0;
  return sms;
}

}  // namespace nccl_moe
