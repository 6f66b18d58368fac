#include "io/csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iostream>
#include <limits>
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
    if (!ParseNumber(a, b, x)) numeric = false;
    if (numeric) values.push_back(x);
    fields.emplace_back(a, b);
    if (comma == line_end) break;
    p = comma + 1;
  }
  return numeric;
}

bool IsMissing(const char* begin, const char* end) {
  const std::string_view field(begin, static_cast<size_t>(end - begin));
  return field.empty() || field == "nan" || field == "NaN" || field == "NA" || field == "null";
}

bool ParseNumber(const char* begin, const char* end, double& x) {
  const char* start = (begin < end && *begin == '+') ? begin + 1 : begin;
  const auto [ptr, ec] = std::from_chars(start, end, x);
  return begin != end && ec == std::errc() && ptr == end;
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

CsvRows::CsvRows(const std::string& path, CsvRowsOptions options)
    : path_(path), options_(options) {
  if (path == "-" && !options.once)
    throw IoError("cannot stream the CSV file from standard input: the rows are read more "
                  "than once (counted, then read); give a file");
  if (path == "-") {
    standard_input_ = StreamStandardInput("CSV file");
    in_ = standard_input_.get();
  } else {
    file_ = OpenInputFile(path, "CSV file");
    in_ = &file_;
  }
  max_line_ = CurrentInputLimits().max_line_bytes;
  ReadHeader();
}

bool CsvRows::ReadLine() {
  // In pieces, so that a line longer than the limit is refused without being held whole.
  std::istream& in = *in_;
  text_.clear();
  char piece[4096];
  while (true) {
    in.getline(piece, sizeof piece);
    if (in.bad()) throw IoError(Where(path_, line_ + 1) + ": the file could not be read");
    const size_t got = static_cast<size_t>(in.gcount());
    if (in.eof() && got == 0 && text_.empty()) return false;
    const bool whole = !in.fail() || in.eof();
    // gcount counts the newline getline consumed.
    text_.append(piece, whole && !in.eof() ? got - 1 : got);
    if (text_.size() > max_line_) ThrowLongLine(path_, line_ + 1, max_line_);
    if (whole) {
      if (in.eof()) in.clear(std::ios::eofbit);
      return true;
    }
    in.clear();  // the piece filled up: the line goes on
  }
}

void CsvRows::Rewind() {
  if (options_.once)
    throw IoError("CSV '" + path_ + "': read once, as it comes; it cannot be read again");
  file_.clear();
  file_.seekg(0);
  ReadHeader();
}

void CsvRows::ReadHeader() {
  line_ = 0;
  pending_ = false;
  header_.clear();
  // A first line that is not all numbers (nor missing values) is the header.
  if (!ReadLine()) return;
  line_ = 1;
  const char* begin = text_.data();
  const char* end = begin + text_.size();
  if (end > begin && end[-1] == '\r') --end;
  std::vector<double> values;
  if (begin != end && !csv_internal::ParseLine(begin, end, values, fields_)) {
    bool missing_only = options_.missing;  // "NA,NA" is a row of missing values
    double x = 0;
    for (const auto& [a, b] : fields_)
      if (!csv_internal::IsMissing(a, b) && !csv_internal::ParseNumber(a, b, x))
        missing_only = false;
    if (!missing_only) {
      header_ = FieldNames(fields_);
      return;
    }
  }
  pending_ = true;  // line 1 is data or blank: Next returns it
}

bool CsvRows::Next(std::vector<double>& values) {
  while (pending_ || ReadLine()) {
    if (!pending_) ++line_;
    pending_ = false;
    const char* begin = text_.data();
    const char* end = begin + text_.size();
    if (end > begin && end[-1] == '\r') --end;
    if (begin == end) continue;  // blank line
    values.clear();
    if (!csv_internal::ParseLine(begin, end, values, fields_)) {
      if (!options_.missing) {
        throw ModelError(Where(path_, line_) + ": expected numbers, found " +
                         JoinQuoted(FieldNames(fields_)));
      }
      values.clear();
      for (const auto& [a, b] : fields_) {
        double x = std::numeric_limits<double>::quiet_NaN();
        if (!csv_internal::IsMissing(a, b) && !csv_internal::ParseNumber(a, b, x))
          throw ModelError(Where(path_, line_) + ": expected numbers or missing values (empty, "
                           "nan, NA, null), found '" + std::string(a, b) + "'");
        values.push_back(x);
      }
    }
    if (!options_.missing) {
      CheckRow(path_, line_, values.data(), values.size(), values.size());
    } else {
      for (double x : values)
        if (std::isinf(x))
          throw ModelError(Where(path_, line_) + ": expected finite numbers, found " +
                           FormatNumber(x));
    }
    return true;
  }
  return false;
}

}  // namespace vfe
