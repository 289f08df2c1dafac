// nccl-moe rank bootstrap (C++17): who this process is, under whichever launcher started it, the
// job's ncclUniqueId, and its GPU. Everything a rank program needs before ncclCommInitRank:
//
//   const nccl_moe::RankBootstrap me = nccl_moe::bootstrapRank();
//   ncclCommInitRank(&comm, me.layout.size, me.uniqueId, me.layout.rank);
//
// A static library beside libnccl_moe.so (CMake: NcclMoe::bootstrap; pkg-config:
// nccl_moe_bootstrap). It never calls the nccl-moe API, so plain NCCL programs may use it too.
// docs/launching.md has the recipes (nccl-moe-run, mpirun, srun, torchrun) and every variable.
//
// 1. The rank layout comes from the first launcher whose variables are set, in this order:
//      nccl-moe-run   NCCL_MOE_RANK, NCCL_MOE_NRANKS, NCCL_MOE_LOCAL_RANK, NCCL_MOE_DOMAIN_SIZE
//      torchrun       RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE
//      Open MPI       OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE
//      MPICH / PMI    PMI_RANK, PMI_SIZE, MPI_LOCALRANKID, MPI_LOCALNRANKS
//      SLURM          SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE /
//                     SLURM_TASKS_PER_NODE / SLURM_NTASKS_PER_NODE with SLURM_NODEID
//    and none of them: one process alone. A missing, malformed or inconsistent value is a
//    BootstrapError naming the variable.
// 2. The unique id: NCCL_MOE_UNIQUE_ID (hex) when set; a fresh one for a job of one rank; over
//    MPI under an MPI launcher when the library was built with NCCL_MOE_WITH_MPI=ON; otherwise
//    rank 0 serves it over TCP at NCCL_MOE_BOOTSTRAP_ADDR / MASTER_ADDR and
//    NCCL_MOE_BOOTSTRAP_PORT / MASTER_PORT. Every wait ends after NCCL_MOE_BOOTSTRAP_TIMEOUT
//    seconds (default 300) with a BootstrapError saying what did not come.
// 3. The GPU: NCCL_MOE_DEVICE when set (nccl-moe-run sets 0: it gives each rank its own
//    CUDA_VISIBLE_DEVICES, or lets ranks share one GPU), else local rank % visible devices.
#pragma once

#include <nccl.h>

#include <stdexcept>
#include <string>

namespace nccl_moe {

enum class Launcher { kNone, kNcclMoeRun, kTorchrun, kOpenMpi, kPmi, kSlurm };

// "nccl-moe-run", "torchrun", "Open MPI", "MPICH/PMI", "SLURM" or "none (one process)".
const char* launcherName(Launcher launcher);

struct RankLayout {
  Launcher launcher = Launcher::kNone;
  int rank = 0;
  int size = 1;
  int localRank = 0;  // index among this node's ranks (nccl-moe-run: inside its NVLink domain)
  int localSize = 1;  // ranks on this node (nccl-moe-run: ranks per NVLink domain)
};

class BootstrapError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Step 1 alone: reads the process environment, touches neither the GPU nor the network.
RankLayout readRankLayout();

struct BootstrapOptions {
  bool selectDevice = true;  // false: the program makes its GPU current itself
};

struct RankBootstrap {
  RankLayout layout;
  ncclUniqueId uniqueId{};
  int device = -1;       // the CUDA device made current; -1 when not selected
  std::string idSource;  // how the id came, for logs ("MPI", "TCP store at host:29500", ...)
};

// Steps 1 to 3 (the device before the id: MPI initialises after the GPU is chosen). Throws
// BootstrapError.
RankBootstrap bootstrapRank(const BootstrapOptions& options = {});
// Steps 2 and 3 for a layout the program already read (and checked its flags against).
RankBootstrap bootstrapRank(const RankLayout& layout, const BootstrapOptions& options = {});

}  // namespace nccl_moe
