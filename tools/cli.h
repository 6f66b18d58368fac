#ifndef VFE_TOOLS_CLI_H_
#define VFE_TOOLS_CLI_H_

// The `vfe` program's shared pieces: exit codes, usage errors, option values, and the entry
// point of every subcommand (each parses its own arguments, which follow the command name).

#include <string>
#include <vector>

namespace vfe::cli {

constexpr int kModelError = 1;
constexpr int kUsageError = 2;
constexpr int kNumericalFailure = 3;
constexpr int kIoError = 4;  ///< an input could not be read or an output written (vfe::IoError)

/// The table of exit codes every command's --help and the program's usage end with.
constexpr const char* kExitCodes =
    "exit codes: 0 success, 1 model error, 2 usage error, 3 numerical failure,\n"
    "            4 I/O error (an input could not be read or the output written)\n";

/// A failure every process of an MPI run has reported on standard error already (each its own
/// message, before any of them exits): main exits with `code` and prints nothing more.
struct ReportedFailure {
  int code = kModelError;
};

/// A command line that cannot be run: main prints the message and the command's usage text
/// (the program's when `usage` is null) and exits with kUsageError.
struct UsageError {
  std::string message;
  const char* usage = nullptr;
};

/// An option `command` does not take: names it, the nearest option the usage text lists
/// ("did you mean '--iterations'?"), and carries the usage.
UsageError UnknownOption(const std::string& command, const std::string& option, const char* usage);

/// A finite number given to `option`; throws UsageError otherwise.
double ParseNumber(const std::string& option, const std::string& text, const char* usage);
/// An integer given to `option` in [min, max]; throws UsageError naming `what` otherwise.
long ParseInteger(const std::string& option, const std::string& text, long min, long max,
                  const std::string& what, const char* usage);

int RunCommand(const std::vector<std::string>& args);
int CheckCommand(const std::vector<std::string>& args);
int DotCommand(const std::vector<std::string>& args);
int AgentCommand(const std::vector<std::string>& args);
int PredictiveCodingCommand(const std::vector<std::string>& args);
int NodesCommand(const std::vector<std::string>& args);
int StreamCommand(const std::vector<std::string>& args);

}  // namespace vfe::cli

#endif  // VFE_TOOLS_CLI_H_
