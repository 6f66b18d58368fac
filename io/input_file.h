#ifndef VFE_IO_INPUT_FILE_H_
#define VFE_IO_INPUT_FILE_H_

// Opening the files a user names (models, CSV tables, agent and network files): when one
// cannot be read, the error says why: no such file, a directory, no permission. Private to
// the library.

#include <fstream>
#include <string>

namespace vfe {

/// Opens `path` for reading (binary); throws ModelError "cannot read the <what> 'path': <why>"
/// when it cannot, `what` naming the file's role ("model file", "CSV file").
std::ifstream OpenInputFile(const std::string& path, const std::string& what,
                            std::ios::openmode extra = {});

/// The whole file as text; errors as OpenInputFile.
std::string ReadInputFile(const std::string& path, const std::string& what);

}  // namespace vfe

#endif  // VFE_IO_INPUT_FILE_H_
