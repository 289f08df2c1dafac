#include "tools/common/flags.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>

namespace nccl_moe::tools {
namespace {

std::string quoted(const std::string& text) { return "'" + text + "'"; }

UsageError outOfRange(const std::string& flag, const std::string& text, const std::string& range) {
  return UsageError(flag + ": " + quoted(text) + " is out of range, want " + range);
}

std::string numberText(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// from_chars over the whole of `text`: nullopt for anything but a number alone (it takes no
// spaces and no '+'); `outOfRange` set when the number does not fit the type.
template <class T, class... Format>
std::optional<T> wholeNumber(const std::string& text, bool* overflow, Format... format) {
  T value{};
  const char* last = text.data() + text.size();
  const auto [end, error] = std::from_chars(text.data(), last, value, format...);
  *overflow = error == std::errc::result_out_of_range && end == last;
  if (error != std::errc() || end != last) return std::nullopt;
  return value;
}

long long multiplierOf(char suffix) {
  switch (suffix) {
    case 'K': case 'k': return 1LL << 10;
    case 'M': case 'm': return 1LL << 20;
    case 'G': case 'g': return 1LL << 30;
    default: return 1;
  }
}

// "--layout" -> "LAYOUT": the placeholder of a choice in --help.
std::string metavarOf(const std::string& name) {
  std::string text = name.substr(name.find_first_not_of('-'));
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
  return text;
}

bool isHelp(const std::string& arg) { return arg == "-h" || arg == "--help"; }
bool isVersion(const std::string& arg) { return arg == "--version"; }

}  // namespace

std::string countText(long long value) {
  if (value != 0 && value % (1LL << 30) == 0) return std::to_string(value / (1LL << 30)) + "G";
  if (value != 0 && value % (1LL << 20) == 0) return std::to_string(value / (1LL << 20)) + "M";
  return std::to_string(value);
}

long long parseInteger(const std::string& flag, const std::string& text, long long min, long long max) {
  bool overflow = false;
  const std::optional<long long> value = wholeNumber<long long>(text, &overflow);
  const std::string range = "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (overflow) throw outOfRange(flag, text, range);
  if (!value) throw UsageError(flag + ": " + quoted(text) + " is not an integer");
  if (*value < min || *value > max) throw outOfRange(flag, text, range);
  return *value;
}

long long parseCount(const std::string& flag, const std::string& text, long long min, long long max) {
  const long long multiplier = text.empty() ? 1 : multiplierOf(text.back());
  const std::string digits = multiplier == 1 ? text : text.substr(0, text.size() - 1);
  bool overflow = false;
  const std::optional<long long> value = wholeNumber<long long>(digits, &overflow);
  const std::string range = "[" + countText(min) + ", " + countText(max) + "]";
  if (overflow) throw outOfRange(flag, text, range);
  if (!value)
    throw UsageError(flag + ": " + quoted(text) + " is not a count (digits, optionally followed by K, M or G)");
  // Compared before multiplying, so that the product cannot overflow.
  if (*value > max / multiplier || *value < min / multiplier) throw outOfRange(flag, text, range);
  const long long scaled = *value * multiplier;
  if (scaled < min || scaled > max) throw outOfRange(flag, text, range);
  return scaled;
}

double parseNumber(const std::string& flag, const std::string& text, double min, double max) {
  bool overflow = false;
  const std::optional<double> value = wholeNumber<double>(text, &overflow, std::chars_format::general);
  const std::string range = "[" + numberText(min) + ", " + numberText(max) + "]";
  if (overflow) throw outOfRange(flag, text, range);
  if (!value || !std::isfinite(*value)) throw UsageError(flag + ": " + quoted(text) + " is not a finite number");
  if (!(*value >= min && *value <= max)) throw outOfRange(flag, text, range);
  return *value;
}

std::string parseChoice(const std::string& flag, const std::string& text, const std::vector<std::string>& choices) {
  if (std::find(choices.begin(), choices.end(), text) != choices.end()) return text;
  std::string list;
  for (const std::string& choice : choices) list += (list.empty() ? "" : ", ") + choice;
  throw UsageError(flag + ": " + quoted(text) + " is not one of " + list);
}

std::string versionText(int code) {
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." + std::to_string(code % 100);
}

void FlagSet::number(const std::string& name, const std::string& help, double* field, double min, double max) {
  add(Flag{name, "X", help, "in [" + numberText(min) + ", " + numberText(max) + "]", numberText(*field),
           [=](const std::string& value) { *field = parseNumber(name, value, min, max); }});
}

void FlagSet::choice(const std::string& name, const std::string& help, std::string* field,
                     std::vector<std::string> choices, const std::string& metavar) {
  std::string list;
  for (const std::string& choice : choices) list += (list.empty() ? "" : ", ") + choice;
  add(Flag{name, metavar.empty() ? metavarOf(name) : metavar, help, "one of " + list, *field,
           [=](const std::string& value) { *field = parseChoice(name, value, choices); }});
}

void FlagSet::text(const std::string& name, const std::string& metavar, const std::string& help, std::string* field) {
  add(Flag{name, metavar, help, "", *field, [=](const std::string& value) {
             if (value.empty()) throw UsageError(name + " needs a non-empty " + metavar);
             *field = value;
           }});
}

void FlagSet::toggle(const std::string& name, const std::string& help, bool* field) {
  add(Flag{name, "", help, "", "", [=](const std::string&) { *field = true; }});
}

ParseOutcome FlagSet::parse(int argc, const char* const* argv) { return parse(argc, argv, std::cout); }

ParseOutcome FlagSet::parse(int argc, const char* const* argv, std::ostream& out) {
  // A following argument that is itself a flag is not taken as a value: "--json --fp8" is a
  // missing file name, not a file called "--fp8" (--json=--fp8 still names one).
  const auto isFlag = [&](const std::string& arg) {
    return isHelp(arg) || isVersion(arg) || find(arg.substr(0, arg.find('='))) != nullptr;
  };
  given_.clear();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (isHelp(arg)) {
      out << help();
      return ParseOutcome::kAnswered;
    }
    if (isVersion(arg)) {
      out << program_.name << " " << program_.version << "\n";
      return ParseOutcome::kAnswered;
    }
    std::string name = arg;
    std::optional<std::string> value;
    if (const size_t equals = arg.find('='); arg.rfind("--", 0) == 0 && equals != std::string::npos) {
      name = arg.substr(0, equals);
      value = arg.substr(equals + 1);
    }
    const Flag* flag = find(name);
    if (flag == nullptr) {
      const std::string what = arg.rfind("-", 0) == 0 ? "unknown flag " : "unexpected argument ";
      throw UsageError(what + quoted(arg) + " (" + program_.name + " --help lists the flags)");
    }
    given_.push_back(name);
    if (flag->metavar.empty()) {
      if (value) throw UsageError(name + " takes no value");
      flag->set("");
      continue;
    }
    if (!value) {
      if (i + 1 >= argc || isFlag(argv[i + 1])) throw UsageError(name + " needs a value (" + flag->metavar + ")");
      value = argv[++i];
    }
    flag->set(*value);
  }
  return ParseOutcome::kRun;
}

std::string FlagSet::help() const {
  const auto label = [](const Flag& f) { return f.metavar.empty() ? f.name : f.name + " " + f.metavar; };
  size_t width = std::string("-h, --help").size();
  for (const Flag& f : flags_) width = std::max(width, label(f).size());
  std::ostringstream text;
  const auto line = [&](const std::string& left, const std::string& right) {
    text << "  " << left << std::string(width - left.size() + 2, ' ') << right << "\n";
  };
  text << "usage: " << program_.usage << "\n";
  for (const Flag& f : flags_) {
    std::string right = f.help;
    if (!f.range.empty()) right += ", " + f.range;
    if (!f.defaultValue.empty()) right += " (default " + f.defaultValue + ")";
    line(label(f), right);
  }
  line("-h, --help", "print this help");
  line("--version", "print the version");
  if (!program_.about.empty()) text << program_.about << (program_.about.back() == '\n' ? "" : "\n");
  return text.str();
}

bool FlagSet::given(const std::string& name) const {
  return std::find(given_.begin(), given_.end(), name) != given_.end();
}

void FlagSet::checkFits(const std::string& name, long long min, long long max, long double lowest,
                        long double highest) {
  if (min > max || static_cast<long double>(min) < lowest || static_cast<long double>(max) > highest)
    throw std::logic_error(name + ": range [" + std::to_string(min) + ", " + std::to_string(max) +
                           "] does not fit its field");
}

std::string FlagSet::rangeText(long long min, long long max, bool withSuffixes) {
  if (withSuffixes) return "in [" + countText(min) + ", " + countText(max) + "], K/M/G suffixes";
  return "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

void FlagSet::add(Flag flag) {
  if (find(flag.name) != nullptr || isHelp(flag.name) || isVersion(flag.name))
    throw std::logic_error(flag.name + " is defined twice");
  flags_.push_back(std::move(flag));
}

const FlagSet::Flag* FlagSet::find(const std::string& name) const {
  for (const Flag& f : flags_)
    if (f.name == name) return &f;
  return nullptr;
}

}  // namespace nccl_moe::tools
