// A build without MPI (NCCL_MOE_WITH_MPI=OFF): the id goes through the TCP store instead.
#include "tools/bootstrap/mpi_id.h"

namespace nccl_moe::bootstrap {

bool mpiCarriesId(const RankLayout&) { return false; }

ncclUniqueId broadcastIdOverMpi(const RankLayout&, const IdMaker&) {
  throw BootstrapError("this nccl-moe bootstrap was built without MPI (NCCL_MOE_WITH_MPI=OFF)");
}

}  // namespace nccl_moe::bootstrap
