// libFuzzer target for the model loaders: ParseModel (JSON "vfe-model/1") and
// ParseLibDaiFactorGraph (libDAI .fg). Bad input must give a vfe::Error; anything else that
// escapes (another exception type, a crash, a sanitizer report) is a bug. A model that loads
// and is small runs three sweeps of the sequential scheduler, whose free energies must be
// finite unless it reports a numerical failure. See README.md.
//
// The input selects the parser: text whose first non-blank character is a digit or '#' is a
// .fg file, anything else JSON. CSV references are read relative to a directory that does not
// exist, so they fail cleanly.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "vfe/io/model_json.h"
#include "vfe/schedulers/sequential.h"

namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxInputSize = 16 * 1024;
/// Numbers (statistics, table entries, factors) a model may hold for the harness to load it:
/// larger models are valid input but slow, and are skipped.
constexpr uint64_t kMaxWork = uint64_t{1} << 17;
/// A shape, loop count, dimension or hidden variable this large is refused by the loader (its
/// limit is 2^28 numbers) before it allocates anything, so such models are loaded whatever
/// their size.
constexpr uint64_t kRefusedCount = uint64_t{1} << 30;
/// Models with at most this many elements run a few sweeps.
constexpr size_t kMaxInferenceElements = 4096;
constexpr char kMissingDirectory[] = "/nonexistent-vfe-fuzz-directory";

uint64_t Multiply(uint64_t a, uint64_t b) {
  uint64_t product;
  return __builtin_mul_overflow(a, b, &product) ? UINT64_MAX : product;
}

uint64_t Add(uint64_t a, uint64_t b) {
  uint64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

/// A JSON integer as a count: negative values count as `otherwise` (the loader refuses them).
uint64_t Count(const Json& value, uint64_t otherwise) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0)
    return static_cast<uint64_t>(value.get<int64_t>());
  return otherwise;
}

/// True if a string anywhere in `doc` starts with '/': an absolute CSV path would read a real
/// file (or /dev/zero for ever).
bool HasAbsolutePath(const Json& doc) {
  std::vector<const Json*> stack = {&doc};
  while (!stack.empty()) {
    const Json& value = *stack.back();
    stack.pop_back();
    if (value.is_string() && value.get_ref<const std::string&>().rfind('/', 0) == 0) return true;
    if (value.is_structured())
      for (const Json& child : value) stack.push_back(&child);
  }
  return false;
}

/// An upper bound on the numbers the loader would store for `text`, not counting shapes and
/// loops it refuses outright. Returns 0 when the text is not a JSON object (it fails early).
uint64_t JsonWork(const std::string& text) {
  const Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return 0;
  if (HasAbsolutePath(doc)) return UINT64_MAX;
  uint64_t work = 0;
  auto add = [&](uint64_t count, uint64_t per_item) {
    if (count < kRefusedCount) work = Add(work, Multiply(count, per_item));
  };
  auto variables = doc.find("variables");
  if (variables != doc.end() && variables->is_array()) {
    for (const Json& v : *variables) {
      if (!v.is_object()) continue;
      uint64_t elements = 1, width = 1, declared_dim = 1;
      auto shape = v.find("shape");
      const bool has_shape = shape != v.end() && shape->is_array();
      if (has_shape)
        for (const Json& n : *shape) elements = Multiply(elements, Count(n, 1));
      auto dim = v.find("dim");
      if (dim != v.end()) declared_dim = width = std::max<uint64_t>(width, Count(*dim, 1));
      auto observed = v.find("observed");
      const bool is_observed = observed != v.end();
      if (is_observed && observed->is_array()) {
        if (!has_shape) elements = std::max<uint64_t>(elements, observed->size());
        width = std::max<uint64_t>(width, observed->size());  // one vector or one matrix
        for (const Json& row : *observed)
          if (row.is_array()) width = std::max<uint64_t>(width, row.size());
      }
      auto family = v.find("family");
      const bool categorical = family != v.end() && family->is_string() &&
                               (*family == "Categorical" || *family == "Dirichlet");
      const bool multivariate = family != v.end() && family->is_string() &&
                                (*family == "MvGaussian" || *family == "Wishart");
      // Observed vectors and matrices become MvGaussian or Wishart values.
      const uint64_t per_element =
          (multivariate || (is_observed && !categorical))
              ? Add(Multiply(width, Add(width, 1)), 1)
              : Add(width, 2);
      // The loader refuses a dimension this large, and a hidden variable of this many numbers
      // (the estimate is at most 3 times its count; observed ones are estimated more loosely).
      if (declared_dim >= kRefusedCount ||
          (!is_observed && Multiply(elements, per_element) >= kRefusedCount))
        continue;
      add(elements, per_element);
    }
  }
  auto factors = doc.find("factors");
  if (factors != doc.end() && factors->is_array()) {
    for (const Json& f : *factors) {
      if (!f.is_object()) continue;
      auto loops = f.find("for");
      if (loops == f.end() || !loops->is_object()) {
        add(1, 16);
        continue;
      }
      uint64_t count = 1;
      for (const Json& range : *loops) {
        if (!range.is_array() || range.size() != 2 || !range[0].is_number_integer() ||
            !range[1].is_number_integer())
          continue;
        const int64_t begin = range[0].is_number_unsigned() ? INT64_MAX : range[0].get<int64_t>();
        const int64_t end = range[1].is_number_unsigned() ? INT64_MAX : range[1].get<int64_t>();
        if (end <= begin) {
          count = 0;
          break;
        }
        count = Multiply(count, static_cast<uint64_t>(end) - static_cast<uint64_t>(begin));
      }
      add(count, 16);
    }
  }
  return work;
}

/// The same bound for a .fg file: the table entries and states of the factors the parser
/// would read (it allocates each table once it has read the factor's cardinalities).
uint64_t FgWork(const std::string& text) {
  std::vector<std::string> tokens;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos && line[first] == '#') continue;
    std::istringstream words(line);
    std::string word;
    while (words >> word) tokens.push_back(word);
  }
  size_t next = 0;
  // Accepts at least every integer the parser accepts.
  auto integer = [&](long& value) {
    if (next >= tokens.size()) return false;
    char* end = nullptr;
    value = std::strtol(tokens[next].c_str(), &end, 10);
    ++next;
    return *end == '\0';
  };
  uint64_t work = 0;
  long num_factors = 0;
  if (!integer(num_factors)) return 0;
  for (long a = 0; a < num_factors; ++a) {
    long n = 0;
    if (!integer(n) || n < 1 || n > 16) break;
    long label = 0;
    for (long i = 0; i < n; ++i)
      if (!integer(label)) return work;
    uint64_t size = 1;
    for (long i = 0; i < n; ++i) {
      long k = 0;
      if (!integer(k) || k < 1 || k > 1000000) return work;
      size *= static_cast<uint64_t>(k);
      work = Add(work, static_cast<uint64_t>(k));
      if (size > (uint64_t{1} << 24)) return work;
    }
    work = Add(work, size);
    long entries = 0;
    if (!integer(entries)) return work;
    next += 2 * static_cast<size_t>(std::max(0L, std::min<long>(entries, tokens.size())));
  }
  return work;
}

size_t NumElements(const vfe::Model& model) {
  size_t elements = 0;
  for (const vfe::Variable& v : model.variables) elements += v.size();
  return elements;
}

/// Three sweeps: a free energy that is not finite must come with a numerical failure.
void RunInference(vfe::Model& model) {
  vfe::SchedulerOptions options = model.inference.options;
  options.max_iterations = std::min(options.max_iterations, 3);
  options.callback = nullptr;
  const vfe::Result result = vfe::SequentialScheduler(options).Run(model.graph);
  const bool failed = result.termination == vfe::Termination::kNumericalFailure;
  if (std::isnan(result.initial_free_energy) && !failed)
    throw std::logic_error("the initial free energy is NaN, and the run reports " +
                           std::string(vfe::TerminationName(result.termination)));
  for (size_t i = 0; i < result.free_energy.size(); ++i) {
    const bool last = i + 1 == result.free_energy.size();
    if (!std::isfinite(result.free_energy[i]) && !(failed && last))
      throw std::logic_error("free energy " + std::to_string(result.free_energy[i]) +
                             " after sweep " + std::to_string(i + 1) + ", and the run reports " +
                             vfe::TerminationName(result.termination) + ": " + result.message);
  }
  if (result.iterations != static_cast<int>(result.free_energy.size()) ||
      result.iterations > options.max_iterations)
    throw std::logic_error("the run reports " + std::to_string(result.iterations) +
                           " sweeps and " + std::to_string(result.free_energy.size()) +
                           " free energies");
  std::ostringstream dot;
  model.graph.WriteGraphviz(dot);
  (void)vfe::ResultJson(model, result);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInputSize) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t first = text.find_first_not_of(" \t\r\n");
  const bool fg = first != std::string::npos &&
                  (text[first] == '#' || (text[first] >= '0' && text[first] <= '9'));
  if ((fg ? FgWork(text) : JsonWork(text)) > kMaxWork) return 0;
  std::optional<vfe::Model> model;
  try {
    model = fg ? vfe::ParseLibDaiFactorGraph(text, "fuzz.fg")
               : vfe::ParseModel(text, kMissingDirectory);
  } catch (const vfe::Error&) {
    return 0;  // the expected outcome for bad input
  }
  if (NumElements(*model) <= kMaxInferenceElements) RunInference(*model);
  return 0;
}
