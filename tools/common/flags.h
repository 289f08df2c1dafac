// Command-line flags of the tools (nccl-moe-perf, nccl-moe-demo): every value parsed strictly
// and checked against its range, so a typo or an out-of-range number is a usage error naming
// the flag, never a silent default or a crash later in the run. Usage errors are UsageError
// exceptions; runToolMain (tool_main.h) prints them as "<program>: <message>" and exits with 2.
#pragma once

#include <functional>
#include <iosfwd>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace nccl_moe::tools {

// A bad command line or environment: the program exits with status 2 before doing any work.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The parsers name `flag` in their errors. All reject empty text, surrounding spaces, a '+' sign
// and trailing characters.

// A whole decimal number in [min, max]; overflow is reported as out of range.
long long parseInteger(const std::string& flag, const std::string& text, long long min, long long max);

// A count with an optional binary suffix K, M or G (x 2^10, 2^20, 2^30, either case), as in
// nccl-tests: "4K" is 4096.
long long parseCount(const std::string& flag, const std::string& text, long long min, long long max);

// A count as parseCount's messages and --help show it: "16G", "1M", else the digits (4096).
std::string countText(long long value);

// A finite decimal number in [min, max] ("0.5", "1e-3"; not "nan" or "inf").
double parseNumber(const std::string& flag, const std::string& text, double min, double max);

// `text` if it is one of `choices`.
std::string parseChoice(const std::string& flag, const std::string& text, const std::vector<std::string>& choices);

// "X.Y.Z" of a version code X * 10000 + Y * 100 + Z (NCCL_MOE_VERSION_CODE, ncclGetVersion's).
std::string versionText(int code);

// What parse() did: the program runs, or --help / --version was answered (exit 0).
enum class ParseOutcome { kRun, kAnswered };

struct ProgramInfo {
  std::string name;     // "nccl-moe-perf": the prefix of its messages
  std::string usage;    // the synopsis after "usage: "
  std::string about;    // printed under the flags in --help; may be empty
  std::string version;  // what --version prints after the name
};

// The flags a program accepts, each bound to the field it sets. The field's value when the flag
// is added is its default, shown by --help with the flag's range.
class FlagSet {
 public:
  explicit FlagSet(ProgramInfo program) : program_(std::move(program)) {}

  template <class Int>
  void integer(const std::string& name, const std::string& help, Int* field, long long min, long long max) {
    addInteger(name, help, field, min, max, false);
  }
  // An integer that also takes K/M/G suffixes (parseCount).
  template <class Int>
  void count(const std::string& name, const std::string& help, Int* field, long long min, long long max) {
    addInteger(name, help, field, min, max, true);
  }
  void number(const std::string& name, const std::string& help, double* field, double min, double max);
  // One of `choices`; `metavar` names the value in --help (default: the flag's name in capitals).
  void choice(const std::string& name, const std::string& help, std::string* field, std::vector<std::string> choices,
              const std::string& metavar = "");
  // A non-empty text value such as a path; `metavar` names it in --help ("FILE").
  void text(const std::string& name, const std::string& metavar, const std::string& help, std::string* field);
  // A switch: present or not, no value.
  void toggle(const std::string& name, const std::string& help, bool* field);

  // Reads argv[1..argc): "--name value", "--name=value" or "-x value". --help / -h and --version
  // print to `out` and stop. Throws UsageError for an unknown flag, a missing value or a bad one.
  ParseOutcome parse(int argc, const char* const* argv, std::ostream& out);
  ParseOutcome parse(int argc, const char* const* argv);  // to stdout

  std::string help() const;

  // Whether the last parse() saw `name` on the command line (its value is then not the default).
  bool given(const std::string& name) const;

 private:
  struct Flag {
    std::string name;
    std::string metavar;  // empty for a switch
    std::string help;
    std::string range;         // "in [1, 1M], K/M/G suffixes", "one of a, b"; may be empty
    std::string defaultValue;  // empty: no default shown
    std::function<void(const std::string& value)> set;
  };

  template <class Int>
  void addInteger(const std::string& name, const std::string& help, Int* field, long long min, long long max,
                  bool withSuffixes) {
    static_assert(std::is_integral_v<Int> && !std::is_same_v<Int, bool>, "an integer field");
    checkFits(name, min, max, static_cast<long double>(std::numeric_limits<Int>::min()),
              static_cast<long double>(std::numeric_limits<Int>::max()));
    const auto parser = withSuffixes ? parseCount : parseInteger;
    add(Flag{name, "N", help, rangeText(min, max, withSuffixes),
             withSuffixes ? countText(static_cast<long long>(*field)) : std::to_string(*field),
             [=](const std::string& value) { *field = static_cast<Int>(parser(name, value, min, max)); }});
  }
  // A range the field cannot hold is a mistake in the program, not in its command line.
  static void checkFits(const std::string& name, long long min, long long max, long double lowest, long double highest);
  static std::string rangeText(long long min, long long max, bool withSuffixes);
  void add(Flag flag);
  const Flag* find(const std::string& name) const;

  ProgramInfo program_;
  std::vector<Flag> flags_;
  std::vector<std::string> given_;
};

}  // namespace nccl_moe::tools
