// Streaming models in JSON (vfe/io/stream_json.h): the "stream" block, the slice built by the
// model loader (without the inputs missing at a step), the carries' first priors built from a
// node of the registry, and each step's line.

#include <algorithm>
#include <utility>

#include "io/input_file.h"
#include "io/json_reader.h"
#include "io/model_loader.h"
#include "io/posterior_json.h"
#include "vfe/io/model_json.h"
#include "vfe/io/stream_json.h"

namespace vfe {
namespace {

/// True when `value` (a factor's entry, searched through its arrays and objects) names the
/// variable `name`: "y", "y[0]", "y[n]".
bool Names(const Json& value, const std::string& name) {
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    return text.substr(0, text.find('[')) == name;
  }
  if (value.is_array() || value.is_object())
    for (const auto& item : value.items())
      if (Names(item.value(), name)) return true;
  return false;
}

/// The slice's document without the variables of the missing inputs and the factors that
/// read them.
Json WithoutMissing(const Json& slice, const std::vector<std::string>& inputs,
                    const std::vector<bool>& present) {
  Json doc = slice;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (present[i]) continue;
    Json kept_variables = Json::array(), kept_factors = Json::array();
    for (const Json& v : doc["variables"])
      if (!(v.contains("name") && v["name"] == inputs[i])) kept_variables.push_back(v);
    for (const Json& f : doc["factors"]) {
      bool reads = false;
      for (const auto& item : f.items())
        if (item.key() != "node" && item.key() != "name" && Names(item.value(), inputs[i]))
          reads = true;
      if (!reads) kept_factors.push_back(f);
    }
    doc["variables"] = std::move(kept_variables);
    doc["factors"] = std::move(kept_factors);
  }
  return doc;
}

/// "Stream: carry 2 (...): ..." as "/stream/carry/1: ...", "Stream: input 'y': ..." as
/// "/stream/inputs/0: ...": the stream's errors at the pointer of the entry they name.
std::string Located(const std::string& message, const std::vector<std::string>& inputs) {
  const std::string carry = "Stream: carry ";
  if (message.rfind(carry, 0) == 0) {
    const size_t number_end = message.find(' ', carry.size());
    const long k = std::stol(message.substr(carry.size(), number_end - carry.size()));
    const size_t rest = message.find("): ");
    return "/stream/carry/" + std::to_string(k - 1) + ": " +
           (rest == std::string::npos ? message : message.substr(rest + 3));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string input = "Stream: input '" + inputs[i] + "'";
    if (message.rfind(input, 0) == 0)
      return "/stream/inputs/" + std::to_string(i) + ": input '" + inputs[i] + "'" +
             message.substr(input.size());
  }
  if (message.rfind("Stream: ", 0) == 0) return "/stream: " + message.substr(8);
  return message;
}

class StreamLoader : public JsonReader {
 public:
  explicit StreamLoader(std::string base) : base_(std::move(base)) {}

  StreamModel Load(const std::string& text) {
    Json doc = Parse(text);
    RequireObject(doc, "", "a JSON object with \"format\", \"variables\", \"factors\" and "
                           "\"stream\"");
    if (!doc.contains("stream"))
      Fail("", "missing required key 'stream' (the inputs and carried posteriors of a streaming "
               "model); a model of a whole data set runs with `vfe run`");
    const Json block = doc["stream"];
    const std::string at = "/stream";
    CheckKeys(block, at, {"inputs", "carry", "report", "max_sweeps", "tolerance"});
    if (doc.contains("inference"))
      Fail("/inference", "a streaming model runs each step by /stream's max_sweeps and "
                         "tolerance; remove the inference block");
    doc.erase("stream");

    std::vector<std::string> inputs;
    const Json& input_list = Array(Required(block, "inputs", at), at + "/inputs",
                                   "an array of the names of observed variables");
    if (input_list.empty()) Expected(input_list, at + "/inputs", "at least one input");
    for (size_t i = 0; i < input_list.size(); ++i)
      inputs.push_back(String(input_list[i], at + "/inputs/" + std::to_string(i),
                              "the name of an observed variable"));
    StreamOptions options;
    if (block.contains("max_sweeps"))
      options.max_sweeps = Integer<int>(block["max_sweeps"], at + "/max_sweeps",
                                        "a positive integer", 1);
    if (block.contains("tolerance"))
      options.tolerance = Number(block["tolerance"], at + "/tolerance", "a number >= 0");
    if (options.tolerance < 0) Expected(block["tolerance"], at + "/tolerance", "a number >= 0");

    // The whole slice once, for the families of the carries' elements (and its errors, at
    // their pointers in the document as written).
    const FactorGraph slice = Loader(base_).LoadGraph(doc.dump());
    for (size_t i = 0; i < inputs.size(); ++i) {
      bool declared = false;
      for (const Json& v : doc["variables"])
        if (v.is_object() && v.contains("name") && v["name"] == inputs[i]) declared = true;
      bool held = true;
      try {
        slice.Find(inputs[i]);
      } catch (const GraphError&) {
        held = false;
      }
      if (declared && !held)
        Fail(at + "/inputs/" + std::to_string(i),
             "'" + inputs[i] + "' is read only as constants (a node's matrix, or indices): its "
             "values are fixed when the slice is built, so a stream cannot bring them");
    }
    std::vector<StreamCarry> carries;
    const Json& carry_list = Array(Required(block, "carry", at), at + "/carry");
    for (size_t k = 0; k < carry_list.size(); ++k)
      carries.push_back(Carry(carry_list[k], at + "/carry/" + std::to_string(k), slice));

    SliceBuilder build = [doc, inputs, base = base_](FactorGraph& graph,
                                                     const std::vector<bool>& present) {
      graph = Loader(base).LoadGraph(WithoutMissing(doc, inputs, present).dump());
    };
    std::vector<std::string> report;
    try {
      Stream stream(std::move(build), inputs, carries, options);
      if (block.contains("report")) {
        const Json& list = Array(block["report"], at + "/report", "an array of element names");
        for (size_t i = 0; i < list.size(); ++i) {
          const std::string pointer = at + "/report/" + std::to_string(i);
          report.push_back(String(list[i], pointer, "the name of a hidden element"));
          Reported(stream, report.back(), pointer);
        }
      } else {
        for (const StreamCarry& carry : carries)
          if (std::find(report.begin(), report.end(), carry.from) == report.end())
            report.push_back(carry.from);
      }
      std::vector<std::string> columns = Columns(stream.slice(), inputs);
      return StreamModel{std::move(stream), inputs, std::move(report), std::move(columns), {}};
    } catch (const OptionsError& e) {
      throw ModelError(at + ": " + e.what());
    } catch (const IoError&) {
      throw;
    } catch (const Error& e) {
      throw ModelError(Located(e.what(), inputs));
    }
  }

 private:
  /// One carry: from, to, forgetting, and the first prior, a node of the registry with `to`
  /// as its out ({"node": "Gamma", "shape": 2, "rate": 1}).
  StreamCarry Carry(const Json& spec, const std::string& at, const FactorGraph& slice) const {
    CheckKeys(spec, at, {"from", "to", "initial", "forgetting"});
    StreamCarry carry;
    carry.from = String(Required(spec, "from", at), at + "/from", "the name of an element");
    carry.to = String(Required(spec, "to", at), at + "/to", "the name of an element");
    if (spec.contains("forgetting"))
      carry.forgetting = Number(spec["forgetting"], at + "/forgetting", "a number in [0, 1)");
    const Json& initial = Required(spec, "initial", at);
    RequireObject(initial, at + "/initial",
                  "a prior as a factor without its out ({\"node\": \"Gamma\", \"shape\": 2, "
                  "\"rate\": 1})");
    if (initial.contains("out"))
      Fail(at + "/initial/out", "the prior's out is the carry's to ('" + carry.to +
                                    "'); remove it");
    Variable to;
    try {
      to = slice.Find(carry.to.substr(0, carry.to.find('[')));
    } catch (const GraphError&) {
      Fail(at + "/to", "the slice has no variable '" + carry.to.substr(0, carry.to.find('[')) +
                           "'");
    }
    // A one-variable model, named as `to`'s variable: its family and the prior; its
    // posterior after Finalize is the prior's density.
    const std::string name = carry.to.substr(0, carry.to.find('['));
    Json variable = {{"name", name}, {"family", FamilyName(slice.family(to))}};
    if (HasDimension(slice.family(to))) variable["dim"] = slice.dim(to);
    Json factor = initial;
    factor["out"] = name;
    const Json model = {{"format", "vfe-model/1"},
                        {"variables", Json::array({variable})},
                        {"factors", Json::array({factor})}};
    try {
      const Model prior = ParseModel(model.dump(), base_);
      carry.initial = prior.graph.NaturalParameters(prior.graph.Find(name));
    } catch (const Error& e) {
      // "/factors/0/mean (MvGaussian): ..." is "/stream/carry/0/initial/mean (MvGaussian): ...".
      const std::string message = e.what();
      const std::string factor_pointer = "/factors/0";
      throw ModelError(at + "/initial" +
                       (message.rfind(factor_pointer, 0) == 0
                            ? message.substr(factor_pointer.size())
                            : ": " + message));
    }
    return carry;
  }

  /// Refuses a reported name that is not a hidden element of the slice.
  void Reported(const Stream& stream, const std::string& name, const std::string& pointer) const {
    Variable v;
    try {
      v = stream.Element(name);
    } catch (const GraphError& e) {
      std::string message = e.what();
      const std::string prefix = "Stream::Element: ";
      if (message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
      Fail(pointer, message);
    }
    if (stream.slice().observed(v))
      Fail(pointer, "'" + name + "' is observed: only hidden elements have posteriors");
  }

  /// The CSV columns: one per number a step brings.
  static std::vector<std::string> Columns(const FactorGraph& slice,
                                          const std::vector<std::string>& inputs) {
    std::vector<std::string> columns;
    for (const std::string& name : inputs) {
      const Variable v = slice.Find(name);
      const bool vector = slice.family(v) == Family::kMvGaussian;
      for (size_t e = 0; e < v.size(); ++e) {
        const std::string element = v.size() == 1 ? name : slice.ElementName(v[e]);
        if (!vector) {
          columns.push_back(element);
          continue;
        }
        for (int j = 0; j < slice.dim(v); ++j)
          columns.push_back(element + "[" + std::to_string(j) + "]");
      }
    }
    return columns;
  }

  std::string base_;
};

}  // namespace

StreamModel ParseStreamModel(const std::string& text, const std::string& base_directory) {
  return StreamLoader(base_directory).Load(text);
}

StreamModel LoadStreamModel(const std::string& path) {
  const std::string text = ReadInputFile(path, "model file");
  return ParseStreamModel(text, BaseDirectory(path));
}

std::string StreamStepJson(StreamModel& model) {
  std::string line;
  AppendStreamStepJson(model, line);
  return line;
}

void AppendStreamStepJson(StreamModel& model, std::string& line) {
  // Written directly, not through a JSON document: a stream's lines are its throughput.
  const StreamStep& step = model.stream.last();
  const FactorGraph* slice = &model.stream.slice();
  auto found = std::find_if(model.report_elements.begin(), model.report_elements.end(),
                            [&](const auto& entry) { return entry.first == slice; });
  if (found == model.report_elements.end()) {
    std::vector<Variable> elements;
    for (const std::string& name : model.report) elements.push_back(model.stream.Element(name));
    model.report_elements.emplace_back(slice, std::move(elements));
    found = model.report_elements.end() - 1;
  }
  line += "{\"step\":";
  line += std::to_string(step.step);
  line += ",\"free_energy\":";
  AppendJsonNumber(step.free_energy, line);
  line += ",\"sweeps\":";
  line += std::to_string(step.sweeps);
  line += step.converged ? ",\"converged\":true" : ",\"converged\":false";
  line += ",\"missing\":";
  line += std::to_string(step.missing);
  line += ",\"posteriors\":{";
  for (size_t k = 0; k < model.report.size(); ++k) {
    line += k ? ",\"" : "\"";
    line += model.report[k];  // element names need no escaping: letters, digits, _ and []
    line += "\":";
    AppendPosteriorJson(*slice, found->second[k], line);
  }
  line += "}}";
}

}  // namespace vfe
