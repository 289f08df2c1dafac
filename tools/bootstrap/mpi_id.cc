// The id over MPI (NCCL_MOE_WITH_MPI=ON).
#include "tools/bootstrap/mpi_id.h"

#include <mpi.h>

#include <array>
#include <cstring>
#include <string>

namespace nccl_moe::bootstrap {
namespace {

void checkMpi(int result, const char* call) {
  if (result == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(result, text, &length);
  throw BootstrapError(std::string(call) + " failed: " + std::string(text, length));
}

bool mpiInitialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  return initialized != 0;
}

// Initialises MPI for the broadcast alone when the program did not; finalises what it started.
class MpiForBootstrap {
 public:
  MpiForBootstrap() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) throw BootstrapError("MPI was finalised before the bootstrap; bootstrap the ranks first");
    if (!mpiInitialized()) {
      checkMpi(MPI_Init(nullptr, nullptr), "MPI_Init");
      owned_ = true;
    }
  }
  ~MpiForBootstrap() {
    if (owned_) MPI_Finalize();
  }
  MpiForBootstrap(const MpiForBootstrap&) = delete;
  MpiForBootstrap& operator=(const MpiForBootstrap&) = delete;

 private:
  bool owned_ = false;
};

}  // namespace

bool mpiCarriesId(const RankLayout& layout) {
  return layout.launcher == Launcher::kOpenMpi || layout.launcher == Launcher::kPmi || mpiInitialized();
}

ncclUniqueId broadcastIdOverMpi(const RankLayout& layout, const IdMaker& make) {
  MpiForBootstrap mpi;
  int rank = 0, size = 0;
  checkMpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  // Agreed on by every rank before the broadcast, so that no rank waits in it for one that left.
  int mismatch = rank != layout.rank || size != layout.size ? 1 : 0;
  checkMpi(MPI_Allreduce(MPI_IN_PLACE, &mismatch, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  if (mismatch) {
    throw BootstrapError("MPI_COMM_WORLD has this process as rank " + std::to_string(rank) + " of " +
                         std::to_string(size) + ", the " + launcherName(layout.launcher) + " variables say rank " +
                         std::to_string(layout.rank) + " of " + std::to_string(layout.size) +
                         " (on this or another rank)");
  }
  // Byte 0: 1 when rank 0 made the id; then the id.
  std::array<char, 1 + sizeof(ncclUniqueId)> message{};
  std::string failure;
  if (rank == 0) {
    try {
      const ncclUniqueId id = make();
      message[0] = 1;
      std::memcpy(&message[1], id.internal, sizeof(id.internal));
    } catch (const BootstrapError& error) {
      failure = error.what();
    }
  }
  checkMpi(MPI_Bcast(message.data(), static_cast<int>(message.size()), MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
  if (message[0] != 1) {
    throw BootstrapError(rank == 0 ? failure : "rank 0 could not make the unique id (its output says why)");
  }
  ncclUniqueId id{};
  std::memcpy(id.internal, &message[1], sizeof(id.internal));
  return id;
}

}  // namespace nccl_moe::bootstrap
