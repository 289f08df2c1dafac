#include "tools/bootstrap/id_distribution.h"

#include <stdexcept>

#include "tools/bootstrap/mpi_id.h"
#include "tools/bootstrap/store_settings.h"
#include "tools/bootstrap/tcp_store.h"
#include "tools/bootstrap/unique_id_hex.h"

namespace nccl_moe::bootstrap {
namespace {

DistributedId throughStore(const RankLayout& layout, const EnvironmentLookup& lookup, const IdMaker& make) {
  const StoreSettings settings = readStoreSettings(layout, lookup);
  const std::chrono::milliseconds timeout = readBootstrapTimeout(lookup);
  const StoreJob job{layout.size, settings.jobName};
  DistributedId result;
  result.source = "TCP store at " + settings.host + ":" + std::to_string(settings.port);
  if (layout.rank == 0) {
    UniqueIdServer server(settings.port, job);  // the port first: a taken one fails before NCCL starts
    result.id = make();
    server.serve(result.id, timeout);
  } else {
    result.id = fetchUniqueId(settings.host, settings.port, job, layout.rank, timeout);
  }
  return result;
}

}  // namespace

DistributedId distributeUniqueId(const RankLayout& layout, const EnvironmentLookup& lookup, const IdMaker& make) {
  if (std::optional<std::string> hex = readText(lookup, "NCCL_MOE_UNIQUE_ID")) {
    try {
      return {decodeUniqueIdHex(*hex), "NCCL_MOE_UNIQUE_ID"};
    } catch (const std::invalid_argument& error) {
      throw BootstrapError(std::string("NCCL_MOE_UNIQUE_ID is malformed: ") + error.what());
    }
  }
  if (layout.size == 1) return {make(), "made here (a job of one rank)"};
  if (mpiCarriesId(layout)) return {broadcastIdOverMpi(layout, make), "MPI"};
  return throughStore(layout, lookup, make);
}

}  // namespace nccl_moe::bootstrap
