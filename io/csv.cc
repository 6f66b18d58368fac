#include "io/csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>

#include "io/input_file.h"
#include "vfe/core/error.h"
#include "vfe/core/format.h"

namespace vfe {

namespace csv_internal {

bool ParseLine(const char* p, const char* line_end, std::vector<double>& values,
               std::vector<std::pair<const char*, const char*>>& fields) {
  fields.clear();
  bool numeric = true;
  while (true) {
    const char* comma = std::find(p, line_end, ',');
    const char* a = p;
    const char* b = comma;
    while (a < b && (*a == ' ' || *a == '\t')) ++a;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) --b;
    double x = 0;
    const char* start = (a < b && *a == '+') ? a + 1 : a;
    const auto [ptr, ec] = std::from_chars(start, b, x);
    if (ec != std::errc() || ptr != b || a == b) numeric = false;
    if (numeric) values.push_back(x);
    fields.emplace_back(a, b);
    if (comma == line_end) break;
    p = comma + 1;
  }
  return numeric;
}

}  // namespace csv_internal

namespace {

using Fields = std::vector<std::pair<const char*, const char*>>;

std::vector<std::string> FieldNames(const Fields& fields) {
  std::vector<std::string> names;
  for (const auto& [a, b] : fields) names.emplace_back(a, b);
  return names;
}

std::string Where(const std::string& path, size_t line) {
  return "CSV '" + path + "' line " + std::to_string(line);
}

/// Refuses a data row that has other than `cols` fields or a number that is not finite.
void CheckRow(const std::string& path, size_t line, const double* values, size_t fields,
              size_t cols) {
  if (fields != cols)
    throw ModelError(Where(path, line) + ": expected " + std::to_string(cols) + " columns, found " +
                     std::to_string(fields));
  for (size_t i = 0; i < fields; ++i)
    if (!std::isfinite(values[i]))
      throw ModelError(Where(path, line) + ": expected finite numbers, found " +
                       FormatNumber(values[i]));
}

[[noreturn]] void ThrowLongLine(const std::string& path, size_t line, size_t limit) {
  throw IoError(Where(path, line) + ": longer than " + std::to_string(limit) +
                " bytes, the limit (VFE_MAX_LINE_BYTES)");
}

}  // namespace

CsvTable ReadCsv(const std::string& path) {
  // A regular file is read in one piece, its size known; standard input ("-") as it comes.
  std::unique_ptr<char[]> file;  // not zero-filled first: the file overwrites it
  std::string streamed;
  std::string_view text;
  if (path == "-") {
    streamed = ReadStandardInput("CSV file");
    text = streamed;
  } else {
    std::ifstream in = OpenInputFile(path, "CSV file", std::ios::ate);
    const std::streamoff size = in.tellg();
    if (size > 0 && in.seekg(0)) {
      file.reset(new char[static_cast<size_t>(size)]);
      in.read(file.get(), size);
      if (in.bad()) throw IoError("cannot read the CSV file '" + path + "': a read failed");
      text = std::string_view(file.get(), static_cast<size_t>(in.gcount()));
    }
  }
  const size_t max_line = CurrentInputLimits().max_line_bytes;
  // Room for every line's fields once their number is known, so the values never move.
  const size_t num_lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  auto capacity = [&](size_t fields) {  // a value takes two characters at least, with its comma
    return std::min(num_lines, (text.size() / 2 + 1) / fields) * fields;
  };
  CsvTable table;
  size_t line_number = 0;
  size_t pos = 0;
  Fields fields;  // reused: no allocation per line
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    size_t stop = end;
    if (stop > pos && text[stop - 1] == '\r') --stop;
    ++line_number;
    if (end - pos > max_line) ThrowLongLine(path, line_number, max_line);  // '\r' included
    const char* p = text.data() + pos;
    const char* const line_end = text.data() + stop;
    pos = end + 1;
    if (p == line_end) continue;  // blank line
    const size_t row_start = table.values.size();
    const bool numeric = csv_internal::ParseLine(p, line_end, table.values, fields);
    if (!numeric) {
      if (table.header.empty() && line_number == 1) {
        table.values.resize(row_start);
        table.header = FieldNames(fields);
        table.cols = fields.size();
        table.values.reserve(capacity(fields.size()));
        continue;
      }
      throw ModelError(Where(path, line_number) + ": expected numbers, found " +
                       JoinQuoted(FieldNames(fields)));
    }
    if (table.cols == 0) {
      table.cols = fields.size();
      table.values.reserve(capacity(fields.size()));
    }
    CheckRow(path, line_number, table.values.data() + row_start, fields.size(), table.cols);
  }
  if (table.rows() == 0) throw ModelError("CSV '" + path + "' has no data rows");
  return table;
}

CsvRows::CsvRows(const std::string& path) : path_(path) {
  if (path == "-")
    throw IoError("cannot stream the CSV file from standard input: the rows are read more "
                  "than once (counted, then read); give a file");
  in_ = OpenInputFile(path, "CSV file");
  max_line_ = CurrentInputLimits().max_line_bytes;
  Rewind();
}

bool CsvRows::ReadLine() {
  // In pieces, so that a line longer than the limit is refused without being held whole.
  text_.clear();
  char piece[4096];
  while (true) {
    in_.getline(piece, sizeof piece);
    if (in_.bad()) throw IoError(Where(path_, line_ + 1) + ": the file could not be read");
    const size_t got = static_cast<size_t>(in_.gcount());
    if (in_.eof() && got == 0 && text_.empty()) return false;
    const bool whole = !in_.fail() || in_.eof();
    // gcount counts the newline getline consumed.
    text_.append(piece, whole && !in_.eof() ? got - 1 : got);
    if (text_.size() > max_line_) ThrowLongLine(path_, line_ + 1, max_line_);
    if (whole) {
      if (in_.eof()) in_.clear(std::ios::eofbit);
      return true;
    }
    in_.clear();  // the piece filled up: the line goes on
  }
}

void CsvRows::Rewind() {
  in_.clear();
  in_.seekg(0);
  line_ = 0;
  // A first line that is not all numbers is the header.
  std::vector<double> values;
  if (!ReadLine()) return;
  line_ = 1;
  const char* begin = text_.data();
  const char* end = begin + text_.size();
  if (end > begin && end[-1] == '\r') --end;
  if (begin != end && !csv_internal::ParseLine(begin, end, values, fields_)) {
    header_ = FieldNames(fields_);
    return;
  }
  in_.clear();  // line 1 is data or blank: read it again
  in_.seekg(0);
  line_ = 0;
}

bool CsvRows::Next(std::vector<double>& values) {
  while (ReadLine()) {
    ++line_;
    const char* begin = text_.data();
    const char* end = begin + text_.size();
    if (end > begin && end[-1] == '\r') --end;
    if (begin == end) continue;  // blank line
    values.clear();
    if (!csv_internal::ParseLine(begin, end, values, fields_))
      throw ModelError(Where(path_, line_) + ": expected numbers, found " +
                       JoinQuoted(FieldNames(fields_)));
    CheckRow(path_, line_, values.data(), values.size(), values.size());
    return true;
  }
  return false;
}

}  // namespace vfe
