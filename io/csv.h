#ifndef VFE_IO_CSV_H_
#define VFE_IO_CSV_H_

// The one CSV reader of the library: numbers separated by commas, one row per line, an
// optional header line (a first line that is not all numbers), blank lines skipped, spaces
// and tabs around fields ignored, "\r\n" accepted. Every error is a ModelError that names the
// file and the line ("CSV 'y.csv' line 3: expected numbers, found '1', 'x'"). Models, SVI
// streams and the agents' data read through it. Private to the library.

#include <cstddef>
#include <fstream>
#include <istream>
#include <memory>
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

/// How CsvRows reads.
struct CsvRowsOptions {
  /// The rows are read once, as they come (Rewind refused): "-" reads standard input, line by
  /// line, as a pipe delivers it.
  bool once = false;
  /// A field that is empty, "nan", "NaN", "NA" or "null" is a missing value (a NaN).
  bool missing = false;
};

/// Reads a CSV file one row at a time without keeping it (a stream larger than memory).
/// Allocates nothing per row once the first rows have sized its buffers.
class CsvRows {
 public:
  /// Opens the file and reads its header line, if any; throws IoError if it cannot (also for
  /// "-" unless options.once: the rows are read more than once).
  explicit CsvRows(const std::string& path, CsvRowsOptions options = {});
  /// The next data row into `values` (resized to its fields); false at the end of the file.
  /// Throws ModelError for a row that is not all finite numbers (or missing values, when the
  /// options allow them).
  bool Next(std::vector<double>& values);
  /// Back to the first data row (IoError when the rows are read once).
  void Rewind();
  const std::vector<std::string>& header() const { return header_; }
  /// The line of the row read last (1-based, counting the header and blank lines).
  size_t line() const { return line_; }
  const std::string& path() const { return path_; }
  /// True when the next row is already read from the file or pipe, at least in part; false
  /// when reading it may have to wait for a writer (a command then flushes its output).
  bool buffered() const { return in_->rdbuf()->in_avail() > 0; }

 private:
  std::string path_;
  CsvRowsOptions options_;
  std::ifstream file_;
  std::unique_ptr<std::istream> standard_input_;
  std::istream* in_ = nullptr;  ///< file_ or standard_input_
  std::string text_;
  std::vector<std::string> header_;
  std::vector<std::pair<const char*, const char*>> fields_;
  size_t line_ = 0;
  size_t max_line_ = 0;
  /// The next line into text_ (without its newline); false at the end of the file. IoError
  /// for a line longer than max_line_.
  bool ReadLine();
  /// Line 1 as the header when it is not a data row; otherwise it is kept for Next.
  void ReadHeader();
  bool pending_ = false;  ///< text_ holds line 1, a data row not yet returned
};

namespace csv_internal {
/// Parses the fields of one line [begin, end) (no newline) into `values` (appended) and
/// their trimmed text into `fields` (cleared first). True when every field is a number.
bool ParseLine(const char* begin, const char* end, std::vector<double>& values,
               std::vector<std::pair<const char*, const char*>>& fields);
/// True for a field [begin, end) (trimmed) that CsvRowsOptions::missing reads as missing.
bool IsMissing(const char* begin, const char* end);
/// Reads the field [begin, end) (trimmed) as one number ("+1", "2.5e-3", "nan"); false, with
/// `x` unspecified, when it is not one.
bool ParseNumber(const char* begin, const char* end, double& x);
}  // namespace csv_internal

}  // namespace vfe

#endif  // VFE_IO_CSV_H_
