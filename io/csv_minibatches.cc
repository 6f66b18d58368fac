#include "vfe/io/csv_minibatches.h"

#include "io/csv.h"
#include "vfe/core/error.h"

namespace vfe {

CsvMinibatches::CsvMinibatches(const std::string& path, const FactorGraph& graph,
                               const Variable& data)
    : data_(data) {
  if (!graph.observed(data))
    throw GraphError("CsvMinibatches: variable '" + graph.variable_name(data.id()) +
                     "' is not observed");
  if (data.size() < 2)
    throw GraphError(
        "CsvMinibatches: the data variable needs at least 2 elements (the batch "
        "size), got " +
        std::to_string(data.size()));
  vector_data_ = graph.family(data) == Family::kMvGaussian;
  width_ = vector_data_ ? graph.dim(data) : 1;
  reader_ = std::make_unique<CsvRows>(path);
  // The first pass counts and checks the rows without keeping them.
  while (reader_->Next(row_)) {
    if (static_cast<int>(row_.size()) != width_)
      throw ModelError("CSV '" + path + "' line " + std::to_string(reader_->line()) +
                       ": expected " + std::to_string(width_) + " numbers, found " +
                       std::to_string(row_.size()));
    ++rows_;
  }
  if (rows_ < data.size())
    throw ModelError("CSV '" + path + "': expected at least " + std::to_string(data.size()) +
                     " data rows (one minibatch), found " + std::to_string(rows_));
  batch_.resize(static_cast<Eigen::Index>(data.size()), width_);
  values_.resize(data.size());
  Rewind();
}

CsvMinibatches::~CsvMinibatches() = default;

void CsvMinibatches::Rewind() { reader_->Rewind(); }

void CsvMinibatches::ReadRow() {
  if (!reader_->Next(row_)) {
    reader_->Rewind();
    if (!reader_->Next(row_))
      throw ModelError("CSV '" + reader_->path() +
                       "': no data rows left (the file changed "
                       "while it was read)");
  }
  if (static_cast<int>(row_.size()) != width_)
    throw ModelError("CSV '" + reader_->path() + "' line " + std::to_string(reader_->line()) +
                     ": expected " + std::to_string(width_) + " numbers, found " +
                     std::to_string(row_.size()) + " (the file changed while it was read)");
}

void CsvMinibatches::Next(FactorGraph& graph) {
  for (Eigen::Index i = 0; i < batch_.rows(); ++i) {
    ReadRow();
    for (int c = 0; c < width_; ++c) batch_(i, c) = row_[static_cast<size_t>(c)];
  }
  if (vector_data_) {
    graph.SetObservedRows(data_, batch_);
  } else {
    std::copy(batch_.data(), batch_.data() + batch_.size(), values_.begin());
    graph.SetObservedValues(data_, values_);
  }
}

}  // namespace vfe
