#ifndef VFE_TOOLS_OUTPUT_H_
#define VFE_TOOLS_OUTPUT_H_

// Where a command writes its result, so that a result is written whole or the command fails
// (vfe::IoError, exit code kIoError): never an empty or truncated file with exit 0.

#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

namespace vfe::cli {

/// A stream buffer over a file descriptor that remembers why a write failed (errno), which
/// the standard streams forget: every later write is dropped and error() tells the reason.
class DescriptorBuffer final : public std::streambuf {
 public:
  explicit DescriptorBuffer(int fd);
  ~DescriptorBuffer() override;
  /// The errno of the first failed write, or 0.
  int error() const { return error_; }
  int fd() const { return fd_; }

 protected:
  int_type overflow(int_type c) override;
  int sync() override;
  std::streamsize xsputn(const char* data, std::streamsize count) override;

 private:
  bool Drain();
  void WriteOut(const char* data, size_t count);
  int fd_;
  bool line_buffered_;  ///< a terminal: drained at every newline
  int error_ = 0;
  std::vector<char> buffer_;
};

/// A command's output: standard output ("" or "-"), or the file `path`. A file is written to
/// a temporary file beside it (".NAME.XXXXXX"; beside a symbolic link's target) and renamed
/// into place only after it was flushed and closed without error, so a failure leaves `path`
/// as it was. Written straight to instead: a device or FIFO, a path in /dev or /proc
/// (/dev/stdout), a dangling link, a file with other hard links, and an existing file in a
/// folder that takes no new file. Commit() ends
/// the writing and throws vfe::IoError ("cannot write 'r.json': No space left on device"); an
/// Output destroyed without Commit removes its temporary file.
class Output {
 public:
  explicit Output(const std::string& path);
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  std::ostream& stream();
  void Commit();

 private:
  std::string path_, target_, temporary_;
  std::unique_ptr<DescriptorBuffer> buffer_;
  std::unique_ptr<std::ostream> file_;
  bool to_stdout_ = false, committed_ = false;
};

/// Makes std::cout write through a DescriptorBuffer on descriptor 1 (call once, first thing).
void TrackStandardOutput();

/// Flushes standard output and throws vfe::IoError when anything written to it was lost
/// ("cannot write standard output: No space left on device").
void FlushStandardOutput();

}  // namespace vfe::cli

#endif  // VFE_TOOLS_OUTPUT_H_
