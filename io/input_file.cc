#include "io/input_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "vfe/core/error.h"

namespace vfe {
namespace {

std::string KindOf(mode_t mode) {
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

/// Why `path` cannot be read, in words; "" when it is a regular file that can be.
std::string Unreadable(const std::string& path, size_t limit) {
  struct stat status {};
  if (stat(path.c_str(), &status) != 0) {
    if (errno == ENOENT) return path.empty() ? "no file name given" : "no such file";
    if (errno == EACCES) return "permission denied on a folder of its path";
    if (errno == ENOTDIR) return "a part of its path is not a folder";
    return std::strerror(errno);
  }
  if (S_ISDIR(status.st_mode)) return "it is a directory";
  if (!S_ISREG(status.st_mode))
    return "it is " + KindOf(status.st_mode) +
           ", not a regular file (give a file, or '-' to read standard input)";
  if (access(path.c_str(), R_OK) != 0) return "permission denied";
  if (static_cast<unsigned long long>(status.st_size) > limit)
    return "it has " + std::to_string(status.st_size) + " bytes, more than the limit of " +
           std::to_string(limit) + " (VFE_MAX_INPUT_BYTES)";
  return "";
}

size_t LimitFromEnvironment(const char* name, size_t fallback) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno || *end || value == 0 || !std::isdigit(static_cast<unsigned char>(text[0])))
    throw IoError(std::string(name) + ": expected a positive number of bytes, found '" + text +
                  "'");
  return static_cast<size_t>(value);
}

std::atomic<bool> standard_input_read{false};

}  // namespace

InputLimits CurrentInputLimits() {
  InputLimits limits;
  limits.max_input_bytes = LimitFromEnvironment("VFE_MAX_INPUT_BYTES", limits.max_input_bytes);
  limits.max_line_bytes = LimitFromEnvironment("VFE_MAX_LINE_BYTES", limits.max_line_bytes);
  return limits;
}

std::ifstream OpenInputFile(const std::string& path, const std::string& what,
                            std::ios::openmode extra) {
  // Checked before opening: a directory opens as an ifstream on Linux and fails only on the
  // first read, a FIFO with no writer blocks in open, /dev/zero never ends.
  const std::string why = Unreadable(path, CurrentInputLimits().max_input_bytes);
  std::ifstream in;
  if (why.empty()) in.open(path, std::ios::binary | extra);
  if (!why.empty() || !in)
    throw IoError("cannot read the " + what + " '" + path + "': " +
                  (why.empty() ? std::string("it cannot be opened") : why));
  return in;
}

namespace {

/// Descriptor 0 as a stream buffer: one read(2) per refill, so that a line a pipe delivers is
/// seen at once and in_avail() tells what is buffered.
class StandardInputBuffer final : public std::streambuf {
 protected:
  int_type underflow() override {
    ssize_t got;
    do {
      got = ::read(0, buffer_, sizeof buffer_);
    } while (got < 0 && errno == EINTR);
    if (got < 0) throw IoError(std::string("cannot read standard input: ") + std::strerror(errno));
    if (got == 0) return traits_type::eof();
    setg(buffer_, buffer_, buffer_ + got);
    return traits_type::to_int_type(buffer_[0]);
  }

 private:
  char buffer_[65536];
};

class StandardInputStream final : public std::istream {
 public:
  StandardInputStream() : std::istream(nullptr) { rdbuf(&buffer_); }

 private:
  StandardInputBuffer buffer_;
};

}  // namespace

std::unique_ptr<std::istream> StreamStandardInput(const std::string& what) {
  if (standard_input_read.exchange(true))
    throw IoError("cannot read the " + what +
                  " from standard input: it was read already (by another file named '-')");
  return std::make_unique<StandardInputStream>();
}

std::string ReadStandardInput(const std::string& what) {
  if (standard_input_read.exchange(true))
    throw IoError("cannot read the " + what +
                  " from standard input: it was read already (by another file named '-')");
  const size_t limit = CurrentInputLimits().max_input_bytes;
  std::string text;
  char buffer[65536];
  while (std::cin.read(buffer, sizeof buffer) || std::cin.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(std::cin.gcount()));
    if (text.size() > limit)
      throw IoError("cannot read the " + what + " from standard input: more than " +
                    std::to_string(limit) + " bytes, the limit (VFE_MAX_INPUT_BYTES)");
  }
  if (std::cin.bad()) throw IoError("cannot read the " + what + " from standard input");
  return text;
}

std::string ReadInputFile(const std::string& path, const std::string& what) {
  if (path == "-") return ReadStandardInput(what);
  std::ifstream in = OpenInputFile(path, what, std::ios::ate);
  const std::streamoff size = in.tellg();
  std::string text(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  in.seekg(0);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw IoError("cannot read the " + what + " '" + path + "': a read failed");
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

std::string BaseDirectory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace vfe
