#include "tools/output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "vfe/core/error.h"

namespace vfe::cli {
namespace {

constexpr size_t kBufferBytes = 1 << 16;

std::string Reason(int error) { return error ? std::strerror(error) : "a write failed"; }

/// The buffer std::cout writes through, once TrackStandardOutput set it.
DescriptorBuffer* standard_output = nullptr;

}  // namespace

DescriptorBuffer::DescriptorBuffer(int fd)
    : fd_(fd), line_buffered_(isatty(fd) == 1), buffer_(kBufferBytes) {
  setp(buffer_.data(), buffer_.data() + buffer_.size());
}

DescriptorBuffer::~DescriptorBuffer() { Drain(); }

void DescriptorBuffer::WriteOut(const char* data, size_t count) {
  while (count > 0 && error_ == 0) {
    const ssize_t written = ::write(fd_, data, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      error_ = errno;
      return;
    }
    data += written;
    count -= static_cast<size_t>(written);
  }
}

bool DescriptorBuffer::Drain() {
  WriteOut(pbase(), static_cast<size_t>(pptr() - pbase()));
  setp(buffer_.data(), buffer_.data() + buffer_.size());
  return error_ == 0;
}

DescriptorBuffer::int_type DescriptorBuffer::overflow(int_type c) {
  if (!Drain()) return traits_type::eof();
  if (!traits_type::eq_int_type(c, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(c);
    pbump(1);
    if (line_buffered_ && c == '\n') Drain();
  }
  return traits_type::not_eof(c);
}

int DescriptorBuffer::sync() { return Drain() ? 0 : -1; }

std::streamsize DescriptorBuffer::xsputn(const char* data, std::streamsize count) {
  const size_t n = static_cast<size_t>(count);
  if (n <= static_cast<size_t>(epptr() - pptr())) {
    std::memcpy(pptr(), data, n);
    pbump(static_cast<int>(n));
    // On a terminal each line shows as it is written (a step of `vfe agent --summary`).
    if (line_buffered_ && std::memchr(data, '\n', n)) Drain();
    return count;
  }
  if (!Drain()) return 0;
  if (n >= buffer_.size()) {
    WriteOut(data, n);
    return error_ ? 0 : count;
  }
  std::memcpy(pptr(), data, n);
  pbump(static_cast<int>(n));
  return count;
}

Output::Output(const std::string& path) : path_(path) {
  if (path.empty() || path == "-") {
    to_stdout_ = true;
    return;
  }
  // The file the path names: a symbolic link is followed to it, so that the link stays.
  std::string target = path;
  struct stat link_status {};
  const bool is_link = lstat(path.c_str(), &link_status) == 0 && S_ISLNK(link_status.st_mode);
  if (is_link) {
    char* resolved = realpath(path.c_str(), nullptr);
    if (resolved) {
      target = resolved;
      std::free(resolved);
    }
  }
  struct stat status {};
  const bool exists = stat(target.c_str(), &status) == 0;
  if (exists && S_ISDIR(status.st_mode))
    throw IoError("cannot write '" + path + "': it is a directory");
  // Written in place: a device or a FIFO (renaming a file onto it would replace it), anything
  // reached through /dev or /proc (/dev/stdout: the shell holds the file open), a dangling
  // link (open creates its target), and a file with other hard links (a new file would part
  // them). Otherwise a temporary file beside the target, renamed onto it when complete; when
  // the folder takes no new file (read-only, or the name would be too long) an existing file
  // is written in place.
  const bool system_path = path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0 ||
                           target.rfind("/dev/", 0) == 0 || target.rfind("/proc/", 0) == 0;
  bool in_place = (exists && (!S_ISREG(status.st_mode) || status.st_nlink > 1)) ||
                  system_path || (is_link && !exists);
  int fd = -1;
  if (!in_place) {
    const size_t slash = target.find_last_of('/');
    const std::string folder = slash == std::string::npos ? "" : target.substr(0, slash + 1);
    const std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
    std::string temporary = folder + "." + name + ".XXXXXX";
    fd = mkostemp(temporary.data(), O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (!exists || (error != EACCES && error != EROFS && error != ENAMETOOLONG))
        throw IoError("cannot write '" + path + "': " + Reason(error));
      in_place = true;
    } else {
      temporary_ = temporary;
      target_ = target;
      // mkstemp makes the file readable by its owner alone; the result gets the usual mode
      // (an existing file's own).
      const mode_t mask = umask(0);
      umask(mask);
      if (fchmod(fd, exists ? status.st_mode & 07777 : 0666 & ~mask) != 0) {
        const int error = errno;
        ::close(fd);
        std::remove(temporary_.c_str());
        throw IoError("cannot write '" + path + "': " + Reason(error));
      }
    }
  }
  if (in_place) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) throw IoError("cannot write '" + path + "': " + Reason(errno));
  }
  buffer_ = std::make_unique<DescriptorBuffer>(fd);
  file_ = std::make_unique<std::ostream>(buffer_.get());
}

Output::~Output() {
  if (!buffer_) return;
  const int fd = buffer_->fd();
  file_.reset();
  buffer_.reset();
  ::close(fd);
  if (!committed_ && !temporary_.empty()) std::remove(temporary_.c_str());
}

std::ostream& Output::stream() { return to_stdout_ ? std::cout : *file_; }

void Output::Commit() {
  committed_ = true;
  if (to_stdout_) {
    FlushStandardOutput();
    return;
  }
  file_->flush();
  int error = buffer_->error();
  const int fd = buffer_->fd();
  file_.reset();
  buffer_.reset();
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error) {
    if (!temporary_.empty()) std::remove(temporary_.c_str());
    throw IoError("cannot write '" + path_ + "': " + Reason(error));
  }
  if (!temporary_.empty() && std::rename(temporary_.c_str(), target_.c_str()) != 0) {
    const int rename_error = errno;
    std::remove(temporary_.c_str());
    throw IoError("cannot write '" + path_ + "': " + Reason(rename_error));
  }
}

void TrackStandardOutput() {
  // Never destroyed: the standard library flushes std::cout after main's statics are gone.
  static DescriptorBuffer* const buffer = new DescriptorBuffer(STDOUT_FILENO);
  standard_output = buffer;
  std::cout.rdbuf(buffer);
}

void FlushStandardOutput() {
  std::cout.flush();
  int error = standard_output ? standard_output->error() : 0;
  errno = 0;
  const bool lost = !std::cout || error != 0 || std::fflush(stdout) != 0;
  if (!lost) return;
  if (error == 0) error = errno;
  throw IoError("cannot write standard output: " + Reason(error));
}

}  // namespace vfe::cli
