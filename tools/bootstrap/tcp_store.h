// The id over TCP when no launcher or MPI carries it: rank 0 listens and answers every other
// rank's hello with the job's ncclUniqueId (store_wire.h); the others connect, retrying until
// rank 0 is up. Both sides give up after their timeout with a message that says what is missing.
#pragma once

#include <nccl.h>

#include <chrono>
#include <string>

#include "tools/bootstrap/unique_fd.h"

namespace nccl_moe::bootstrap {

struct StoreJob {
  int size = 1;
  std::string name;  // the launcher's job id ("" when it names none): another job's ranks are refused
};

// Rank 0's side. Listens from construction on, so the port is taken (or the error thrown) before
// the id is made.
class UniqueIdServer {
 public:
  UniqueIdServer(int port, StoreJob job);  // port 0: any free port (tests)
  int port() const { return port_; }

  // Answers hellos until every rank 1..size-1 has the id (a rank asking twice is answered twice);
  // refuses hellos of another job or size, drops connections that do not speak the protocol.
  // Throws BootstrapError naming the ranks that never asked when `timeout` passes.
  void serve(const ncclUniqueId& id, std::chrono::milliseconds timeout);

 private:
  UniqueFd listener_;
  int port_;
  StoreJob job_;
};

// Rank `rank`'s side (rank > 0). Throws BootstrapError when rank 0 refuses this rank, when
// something else answers at host:port, or when no answer came within `timeout`.
ncclUniqueId fetchUniqueId(const std::string& host, int port, const StoreJob& job, int rank,
                           std::chrono::milliseconds timeout);

// "300 s", "0.5 s": timeouts as messages show them.
std::string secondsText(std::chrono::milliseconds duration);

}  // namespace nccl_moe::bootstrap
