// The id over MPI, in builds with NCCL_MOE_WITH_MPI=ON (mpi_id.cc); other builds compile
// mpi_id_absent.cc, where MPI never carries it.
#pragma once

#include <nccl.h>

#include "nccl_moe_bootstrap.h"
#include "tools/bootstrap/unique_id.h"

namespace nccl_moe::bootstrap {

// True when this build has MPI and either `layout` came from an MPI launcher (Open MPI,
// MPICH/PMI) or the program initialised MPI itself.
bool mpiCarriesId(const RankLayout& layout);

// Rank 0 makes the id and broadcasts it over MPI_COMM_WORLD. MPI is initialised and finalised
// here unless the program initialised it, in which case it is left as it was. Throws
// BootstrapError (on every rank) when MPI's ranks are not the launcher's or rank 0 cannot make it.
ncclUniqueId broadcastIdOverMpi(const RankLayout& layout, const IdMaker& make);

}  // namespace nccl_moe::bootstrap
