#ifndef VFE_IO_JSON_WRITER_H_
#define VFE_IO_JSON_WRITER_H_

// Numbers, vectors and matrices as JSON, for every document the library writes. Private to
// the library.

#include "io/json_reader.h"
#include "vfe/core/types.h"

namespace vfe {

/// A matrix as an array of rows.
template <class J = Json>
J MatrixJson(const Matrix& m) {
  J rows = J::array();
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    J row = J::array();
    for (Eigen::Index j = 0; j < m.cols(); ++j) row.push_back(m(i, j));
    rows.push_back(row);
  }
  return rows;
}

/// A vector as an array of numbers (in a document of type J: Json keeps its keys in the
/// order written, nlohmann::json sorts them).
template <class J = Json>
J VectorJson(const Vector& v) {
  J out = J::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) out.push_back(v[i]);
  return out;
}

}  // namespace vfe

#endif  // VFE_IO_JSON_WRITER_H_
