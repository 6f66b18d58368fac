#ifndef VFE_IO_CSV_MINIBATCHES_H_
#define VFE_IO_CSV_MINIBATCHES_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "vfe/schedulers/svi.h"

namespace vfe {

class CsvRows;

/// Minibatches streamed from a CSV file of numbers, B rows at a time in file order (shuffle
/// the file once if it is sorted), so that the data never has to fit in memory: a first pass
/// counts the rows, then only one minibatch is held. A first line that is not numeric is a
/// header. Every row must have as many columns as a data point has numbers (1 for scalar
/// data); an error names the file, the line and what was found.
class CsvMinibatches final : public MinibatchSource {
 public:
  CsvMinibatches(const std::string& path, const FactorGraph& graph, const Variable& data);
  ~CsvMinibatches() override;
  size_t size() const override { return rows_; }
  size_t batch_size() const override { return data_.size(); }
  Variable data() const override { return data_; }
  void Next(FactorGraph& graph) override;
  void Rewind() override;

 private:
  /// Reads the next data row into row_, wrapping at the end of the file.
  void ReadRow();
  Variable data_;
  int width_ = 1;
  bool vector_data_ = false;
  size_t rows_ = 0;
  std::unique_ptr<CsvRows> reader_;
  std::vector<double> row_;
  Matrix batch_;
  std::vector<double> values_;  ///< the batch of scalar data, as SetObservedValues takes it
};

}  // namespace vfe

#endif  // VFE_IO_CSV_MINIBATCHES_H_
