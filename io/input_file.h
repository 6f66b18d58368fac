#ifndef VFE_IO_INPUT_FILE_H_
#define VFE_IO_INPUT_FILE_H_

// Opening the files a user names (models, CSV tables, agent and network files): when one
// cannot be read, the error (vfe::IoError) says why: no such file, a directory, a device or a
// FIFO (not regular files: reading one could hang or never end), no permission, larger than
// the limit. "-" names standard input, read once. Private to the library.
//
// Limits, from the environment (read at each call; a bad value is an error naming it):
//   VFE_MAX_INPUT_BYTES  the largest file or standard input read whole (default 16 GB)
//   VFE_MAX_LINE_BYTES   the longest line of a CSV file (default 16 MB)

#include <cstddef>
#include <fstream>
#include <istream>
#include <memory>
#include <string>

namespace vfe {

struct InputLimits {
  size_t max_input_bytes = size_t{16} << 30;
  size_t max_line_bytes = size_t{16} << 20;
};

/// The limits now in force (the defaults, or the environment's).
InputLimits CurrentInputLimits();

/// Opens the regular file `path` for reading (binary); throws IoError "cannot read the <what>
/// 'path': <why>" when it cannot, `what` naming the file's role ("model file", "CSV file").
std::ifstream OpenInputFile(const std::string& path, const std::string& what,
                            std::ios::openmode extra = {});

/// The whole file, or standard input for "-", as text; errors as OpenInputFile, and for
/// more than max_input_bytes.
std::string ReadInputFile(const std::string& path, const std::string& what);

/// The folder relative paths inside the file `path` are read from: its own folder, "." for a
/// bare name or standard input ("-"); "/" for a file at the root.
std::string BaseDirectory(const std::string& path);

/// Standard input as a stream, read as it comes (a pipe's lines as they arrive) in reads of up
/// to 64 KB; IoError when it was read before. Its rdbuf()->in_avail() is what was read and not
/// yet consumed: 0 means the next read may wait for the writer.
std::unique_ptr<std::istream> StreamStandardInput(const std::string& what);

/// Standard input, whole (at most max_input_bytes); IoError when it was read before.
std::string ReadStandardInput(const std::string& what);

}  // namespace vfe

#endif  // VFE_IO_INPUT_FILE_H_
