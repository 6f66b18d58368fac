#ifndef VFE_IO_POSTERIOR_JSON_H_
#define VFE_IO_POSTERIOR_JSON_H_

// One element's posterior as JSON, as results and stream lines write it: its family and
// parameters ({"family": "Gaussian", "mean": 1.2, "variance": 0.3}). Private to the library.

#include <string>

#include "io/json_reader.h"
#include "vfe/graph/factor_graph.h"

namespace vfe {

/// Receives a posterior's family name, then its parameters in the order results write them.
class PosteriorVisitor {
 public:
  virtual void Family(const char* name) = 0;
  virtual void Number(const char* key, double value) = 0;
  virtual void Numbers(const char* key, const Vector& value) = 0;
  virtual void Rows(const char* key, const Matrix& value) = 0;

 protected:
  ~PosteriorVisitor() = default;
};

/// Visits the posterior of `element` ({"family": "Gaussian", "mean": ..., "variance": ...}).
void VisitPosterior(const FactorGraph& graph, const Variable& element, PosteriorVisitor& visit);

Json PosteriorJson(const FactorGraph& graph, const Variable& element);

/// Appends the posterior of `element` to `out` as compact JSON, numbers in their shortest
/// round-trip form (std::to_chars; null for a number that is not finite).
void AppendPosteriorJson(const FactorGraph& graph, const Variable& element, std::string& out);

/// Appends `value` as a JSON number (shortest round-trip form; null when it is not finite).
void AppendJsonNumber(double value, std::string& out);

}  // namespace vfe

#endif  // VFE_IO_POSTERIOR_JSON_H_
