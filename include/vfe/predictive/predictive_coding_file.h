#ifndef VFE_PREDICTIVE_PREDICTIVE_CODING_FILE_H_
#define VFE_PREDICTIVE_PREDICTIVE_CODING_FILE_H_

// Predictive coding networks in JSON ("format": "vfe-predictive-coding/1", described in
// docs/predictive-coding.md) and the `vfe predictive-coding` command.

#include <iosfwd>
#include <string>
#include <vector>

#include "vfe/predictive/predictive_coding.h"

namespace vfe {
namespace predictive {

/// A network, its observations and what to do with them.
struct PredictiveCodingFile {
  NetworkSpec network;
  Matrix observations;  ///< n_0 × B, one column per observation
  InferenceOptions inference;
  bool learn = false;  ///< the file has a "learning" block
  LearningOptions learning;
  int num_threads = 1;  ///< threads of the final inference (and of learning)
};

/// Parses a "vfe-predictive-coding/1" document; `where` names it in errors. Throws ModelError
/// naming the JSON pointer, what was expected and what was found; the network's own checks
/// (dimensions, precisions, functions) run as well.
PredictiveCodingFile ParsePredictiveCodingJson(const std::string& text, const std::string& where);
/// Reads and parses a file.
PredictiveCodingFile LoadPredictiveCodingFile(const std::string& path);

/// Learns (when the file asks for it), infers every observation and writes the result
/// ("format": "vfe-predictive-coding-result/1"): the learning trace, the network, F in total
/// and per level, and every observation's posterior.
void RunPredictiveCodingFile(const PredictiveCodingFile& file, std::ostream& out);

}  // namespace predictive
}  // namespace vfe

#endif  // VFE_PREDICTIVE_PREDICTIVE_CODING_FILE_H_
