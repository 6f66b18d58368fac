#include "io/input_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "vfe/core/error.h"

namespace vfe {
namespace {

/// Why `path` cannot be opened for reading, in words.
std::string WhyUnreadable(const std::string& path) {
  struct stat status {};
  if (stat(path.c_str(), &status) != 0) {
    if (errno == ENOENT) return path.empty() ? "no file name given" : "no such file";
    if (errno == EACCES) return "permission denied on a folder of its path";
    if (errno == ENOTDIR) return "a part of its path is not a folder";
    return std::strerror(errno);
  }
  if (S_ISDIR(status.st_mode)) return "it is a directory";
  if (access(path.c_str(), R_OK) != 0) return "permission denied";
  return "it cannot be opened";
}

}  // namespace

std::ifstream OpenInputFile(const std::string& path, const std::string& what,
                            std::ios::openmode extra) {
  // A directory opens as an ifstream on Linux and fails only on the first read: check first.
  struct stat status {};
  const bool directory = stat(path.c_str(), &status) == 0 && S_ISDIR(status.st_mode);
  std::ifstream in;
  if (!directory) in.open(path, std::ios::binary | extra);
  if (directory || !in)
    throw ModelError("cannot read the " + what + " '" + path + "': " + WhyUnreadable(path));
  return in;
}

std::string ReadInputFile(const std::string& path, const std::string& what) {
  std::ifstream in = OpenInputFile(path, what);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace vfe
