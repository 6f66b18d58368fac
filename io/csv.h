#ifndef VFE_IO_CSV_H_
#define VFE_IO_CSV_H_

// The one CSV reader of the library: numbers separated by commas, one row per line, an
// optional header line (a first line that is not all numbers), blank lines skipped, spaces
// and tabs around fields ignored, "\r\n" accepted. Every error is a ModelError that names the
// file and the line ("CSV 'y.csv' line 3: expected numbers, found '1', 'x'"). Models, SVI
// streams and the agents' data read through it. Private to the library.

#include <cstddef>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vfe {

/// A whole CSV file in memory.
struct CsvTable {
  std::vector<std::string> header;  ///< the names of the header line, if there is one
  size_t cols = 0;
  std::vector<double> values;  ///< row-major
  size_t rows() const { return cols ? values.size() / cols : 0; }
};

/// Reads the whole file (a regular file in one piece, standard input for "-"). Every row must have
/// the columns of the first, every number must be finite, and there must be a data row.
CsvTable ReadCsv(const std::string& path);

/// Reads a CSV file one row at a time without keeping it (a stream larger than memory).
/// Allocates nothing per row once the first rows have sized its buffers.
class CsvRows {
 public:
  /// Opens the file and reads its header line, if any; throws IoError if it cannot (also for
  /// "-": the rows are read more than once).
  explicit CsvRows(const std::string& path);
  /// The next data row into `values` (resized to its fields); false at the end of the file.
  /// Throws ModelError for a row that is not all finite numbers.
  bool Next(std::vector<double>& values);
  /// Back to the first data row.
  void Rewind();
  const std::vector<std::string>& header() const { return header_; }
  /// The line of the row read last (1-based, counting the header and blank lines).
  size_t line() const { return line_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ifstream in_;
  std::string text_;
  std::vector<std::string> header_;
  std::vector<std::pair<const char*, const char*>> fields_;
  size_t line_ = 0;
  size_t max_line_ = 0;
  /// The next line into text_ (without its newline); false at the end of the file. IoError
  /// for a line longer than max_line_.
  bool ReadLine();
};

namespace csv_internal {
/// Parses the fields of one line [begin, end) (no newline) into `values` (appended) and
/// their trimmed text into `fields` (cleared first). True when every field is a number.
bool ParseLine(const char* begin, const char* end, std::vector<double>& values,
               std::vector<std::pair<const char*, const char*>>& fields);
}  // namespace csv_internal

}  // namespace vfe

#endif  // VFE_IO_CSV_H_
