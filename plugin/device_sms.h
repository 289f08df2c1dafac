// The SM count of the calling thread's current GPU (NCCL runs the tuner's init on the
// communicator's device), or 0 when there is no usable GPU.
#pragma once

namespace nccl_moe {

int currentDeviceSms();

}  // namespace nccl_moe
