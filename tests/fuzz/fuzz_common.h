// What every fuzz target shares: the line between a documented input error (fine) and a bug
// (crash).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "topology/error.h"

namespace nccl_moe::fuzz {

// A bug the sanitizers cannot see (wrong exception type, broken invariant): say what, then
// abort, which libFuzzer records as a crash with its input.
[[noreturn]] inline void bug(const std::string& what) {
  std::fprintf(stderr, "fuzz: BUG: %s\n", what.c_str());
  std::abort();
}

// Runs `action`; topo::Error is the documented way to reject input, any other exception is a bug
// (nlohmann's, std::out_of_range, ...). Returns whether the action completed.
template <typename Action>
bool acceptsOrRejects(const char* what, Action&& action) {
  try {
    action();
    return true;
  } catch (const topo::Error&) {
    return false;
  } catch (const std::exception& e) {
    bug(std::string(what) + ": unexpected exception " + typeid(e).name() + ": " + e.what());
  } catch (...) {
    bug(std::string(what) + ": unexpected non-standard exception");
  }
}

// Runs `action`, which must not throw at all (output of a cluster the library accepted).
template <typename Action>
void mustSucceed(const char* what, Action&& action) {
  try {
    action();
  } catch (const std::exception& e) {
    bug(std::string(what) + " threw " + typeid(e).name() + ": " + e.what());
  } catch (...) {
    bug(std::string(what) + " threw a non-standard exception");
  }
}

}  // namespace nccl_moe::fuzz
