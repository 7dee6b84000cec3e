#include "billnet/model.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "packing.h"
#include "fast_runner.h"
#include "prepared.h"
#include "rng.h"
#include "safetensors.h"
#include "sha256.h"

namespace billnet {

using nlohmann::json;

const std::vector<std::string>& JesterLabels() {
  static const std::vector<std::string> kLabels = {
      "Swiping Left", "Swiping Right", "Swiping Down", "Swiping Up",
      "Pushing Hand Away", "Pulling Hand In", "Sliding Two Fingers Left",
      "Sliding Two Fingers Right", "Sliding Two Fingers Down", "Sliding Two Fingers Up",
      "Pushing Two Fingers Away", "Pulling Two Fingers In", "Rolling Hand Forward",
      "Rolling Hand Backward", "Turning Hand Clockwise", "Turning Hand Counterclockwise",
      "Zooming In With Full Hand", "Zooming Out With Full Hand", "Zooming In With Two Fingers",
      "Zooming Out With Two Fingers", "Thumb Up", "Thumb Down", "Shaking Hand", "Stop Sign",
      "Drumming Fingers", "No gesture", "Doing other things"};
  return kLabels;
}

Model::Model() = default;
Model::~Model() = default;

size_t Model::window_bytes() const {
  const auto& t = info_.topology;
  return size_t(t.frames) * t.height * t.width * TopologyConfig::kChannels;
}

// ---------------------------------------------------------------- validation

namespace {

std::string TensorCtx(const std::string& name) { return "tensor '" + name + "'"; }

Status CheckCount(const std::string& name, size_t have, int64_t want) {
  if (int64_t(have) != want)
    return InvalidArgument(TensorCtx(name) + " has " + std::to_string(have) +
                           " values, topology needs " + std::to_string(want));
  return Status::Ok();
}

Status CheckValues(const std::string& name, const std::vector<float>& v, Encoding enc) {
  for (size_t i = 0; i < v.size(); ++i) {
    const float x = v[i];
    if (!std::isfinite(x))
      return InvalidArgument(TensorCtx(name) + " value " + std::to_string(i) + " is not finite");
    if (enc == Encoding::kSign1 && x != 1.f && x != -1.f)
      return InvalidArgument(TensorCtx(name) + " value " + std::to_string(i) + " = " +
                             std::to_string(x) + " is not +-1 (binary weights)");
    if (enc == Encoding::kTern2 && x != 1.f && x != -1.f && x != 0.f)
      return InvalidArgument(TensorCtx(name) + " value " + std::to_string(i) + " = " +
                             std::to_string(x) + " is not -1/0/+1 (ternary weights)");
  }
  return Status::Ok();
}

const std::vector<float>* WeightVector(const ModelWeights& w, const std::string& tensor) {
  if (tensor == "lstm.weight_ih") return &w.lstm_ih;
  if (tensor == "lstm.weight_hh") return &w.lstm_hh;
  if (tensor == "dense.weight") return &w.dense;
  const std::string suffix = ".weight";
  if (tensor.size() > suffix.size() &&
      tensor.compare(tensor.size() - suffix.size(), suffix.size(), suffix) == 0) {
    auto it = w.conv.find(tensor.substr(0, tensor.size() - suffix.size()));
    if (it != w.conv.end()) return &it->second;
  }
  return nullptr;
}

// Splits "cf1.norm.threshold" into ("cf1.norm", "threshold").
void SplitNormTensor(const std::string& tensor, std::string* norm, std::string* field) {
  const size_t dot = tensor.rfind('.');
  *norm = tensor.substr(0, dot);
  *field = tensor.substr(dot + 1);
}

}  // namespace

Status ValidateWeights(const TopologyPlan& plan, Stage stage, const ModelWeights& w) {
  std::set<std::string> convs, norms;
  for (const TensorSpec& t : ExpectedTensors(plan, stage)) {
    if (t.name.find(".norm.") == std::string::npos) {  // a weight tensor
      const std::vector<float>* v = WeightVector(w, t.name);
      if (!v) return InvalidArgument(TensorCtx(t.name) + " is missing");
      BILLNET_RETURN_IF_ERROR(CheckCount(t.name, v->size(), t.logical_count()));
      BILLNET_RETURN_IF_ERROR(CheckValues(t.name, *v, t.encoding));
      if (t.name.rfind("lstm.", 0) != 0 && t.name != "dense.weight")
        convs.insert(t.name.substr(0, t.name.size() - 7));
      continue;
    }
    std::string norm, field;
    SplitNormTensor(t.name, &norm, &field);
    norms.insert(norm);
    auto it = w.norm.find(norm);
    if (it == w.norm.end()) return InvalidArgument("norm '" + norm + "' is missing");
    const NormParams& p = it->second;
    const int64_t c = t.logical_count();
    if (field == "scale") {
      BILLNET_RETURN_IF_ERROR(CheckCount(t.name, p.scale.size(), c));
      BILLNET_RETURN_IF_ERROR(CheckValues(t.name, p.scale, Encoding::kPlain));
    } else if (field == "offset") {
      BILLNET_RETURN_IF_ERROR(CheckCount(t.name, p.offset.size(), c));
      BILLNET_RETURN_IF_ERROR(CheckValues(t.name, p.offset, Encoding::kPlain));
    } else if (field == "threshold") {
      BILLNET_RETURN_IF_ERROR(CheckCount(t.name, p.threshold.size(), c));
    } else if (field == "polarity") {
      BILLNET_RETURN_IF_ERROR(CheckCount(t.name, p.polarity.size(), c));
      for (int64_t i = 0; i < c; ++i) {
        if (p.polarity[i] < -1 || p.polarity[i] > 1)
          return InvalidArgument(TensorCtx(t.name) + " value " + std::to_string(i) + " = " +
                                 std::to_string(p.polarity[i]) + " is not -1, 0 or 1");
        if (p.polarity[i] == 0 && p.threshold.size() == size_t(c) && p.threshold[i] != 0 &&
            p.threshold[i] != 1)
          return InvalidArgument(TensorCtx(norm + ".threshold") + " value " +
                                 std::to_string(i) + " must be 0 or 1 where polarity is 0");
      }
    } else if (field == "shift") {
      BILLNET_RETURN_IF_ERROR(CheckCount(t.name, p.shift.size(), c));
      for (int64_t i = 0; i < c; ++i)
        if (p.shift[i] < -64 || p.shift[i] > 64)
          return InvalidArgument(TensorCtx(t.name) + " value " + std::to_string(i) + " = " +
                                 std::to_string(p.shift[i]) + " is outside [-64, 64]");
    }
  }
  for (const auto& [name, v] : w.conv)
    if (!convs.count(name)) return InvalidArgument("conv '" + name + "' is not in the topology");
  for (const auto& [name, v] : w.norm)
    if (!norms.count(name)) return InvalidArgument("norm '" + name + "' is not in the topology");
  return Status::Ok();
}

// ---------------------------------------------------------------- metadata

namespace {

constexpr const char* kFormatName = "billnet";

std::string DumpNumber(double v) { return json(v).dump(); }

json TopologyJson(const TopologyConfig& t) {
  return json{{"architecture", "billnet"},     {"base_channels", t.base_channels},
              {"groups", t.groups},            {"lstm_units", t.lstm_units},
              {"classes", t.classes},          {"tail_mor_blocks", t.tail_mor_blocks}};
}

json InputJson(const TopologyConfig& t) {
  return json{{"frames", t.frames},
              {"height", t.height},
              {"width", t.width},
              {"channels", TopologyConfig::kChannels},
              {"pixel_format", "rgb24"}};
}

Status MetaError(const std::string& key, const std::string& why) {
  return Corruption("metadata '" + key + "' " + why);
}

StatusOr<std::string> Required(const std::map<std::string, std::string>& md,
                               const std::string& key) {
  auto it = md.find(key);
  if (it == md.end()) return MetaError(key, "is missing");
  return it->second;
}

StatusOr<json> RequiredJson(const std::map<std::string, std::string>& md,
                            const std::string& key, json::value_t type) {
  BILLNET_ASSIGN_OR_RETURN(std::string text, Required(md, key));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return MetaError(key, "is not valid JSON");
  if (j.type() != type)
    return MetaError(key, std::string("must be a JSON ") +
                              (type == json::value_t::object ? "object" : "array"));
  return j;
}

Status IntField(const json& obj, const std::string& key, const std::string& field, int lo,
                int hi, int* out) {
  auto it = obj.find(field);
  if (it == obj.end()) return MetaError(key, "lacks field '" + field + "'");
  if (!it->is_number_integer())
    return MetaError(key, "field '" + field + "' is not an integer");
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    return MetaError(key, "field '" + field + "' = " + std::to_string(v) + " is outside [" +
                              std::to_string(lo) + ", " + std::to_string(hi) + "]");
  *out = int(v);
  return Status::Ok();
}

StatusOr<double> PositiveNumber(const std::map<std::string, std::string>& md,
                                const std::string& key, double max) {
  BILLNET_ASSIGN_OR_RETURN(std::string text, Required(md, key));
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    return MetaError(key, "= '" + text + "' is not a number");
  if (!(v > 0) || v > max)
    return MetaError(key, "= " + text + " is outside (0, " + DumpNumber(max) + "]");
  return v;
}

Status ParseInfo(const std::map<std::string, std::string>& md, ModelInfo* info) {
  BILLNET_ASSIGN_OR_RETURN(std::string format, Required(md, "format"));
  if (format != kFormatName)
    return MetaError("format", "= '" + format + "' is not '" + kFormatName + "'");
  BILLNET_ASSIGN_OR_RETURN(std::string version, Required(md, "format_version"));
  if (version != std::to_string(kFormatVersion))
    return Status(StatusCode::kUnsupported,
                  "metadata 'format_version' = '" + version + "' is not supported (this build reads " +
                      std::to_string(kFormatVersion) + ")");
  BILLNET_ASSIGN_OR_RETURN(std::string stage, Required(md, "stage"));
  auto st = ParseStage(stage);
  if (!st.ok()) return MetaError("stage", "= '" + stage + "' is not one of s1..s5");
  info->stage = *st;
  if (auto it = md.find("name"); it != md.end()) info->name = it->second;

  BILLNET_ASSIGN_OR_RETURN(json topo, RequiredJson(md, "topology", json::value_t::object));
  auto arch = topo.find("architecture");
  if (arch == topo.end() || *arch != "billnet")
    return MetaError("topology", "field 'architecture' must be \"billnet\"");
  TopologyConfig& t = info->topology;
  BILLNET_RETURN_IF_ERROR(IntField(topo, "topology", "base_channels", 1, 1 << 20, &t.base_channels));
  BILLNET_RETURN_IF_ERROR(IntField(topo, "topology", "groups", 1, 1 << 20, &t.groups));
  BILLNET_RETURN_IF_ERROR(IntField(topo, "topology", "lstm_units", 1, 1 << 20, &t.lstm_units));
  BILLNET_RETURN_IF_ERROR(IntField(topo, "topology", "classes", 1, 1 << 20, &t.classes));
  BILLNET_RETURN_IF_ERROR(IntField(topo, "topology", "tail_mor_blocks", 0, 1 << 20, &t.tail_mor_blocks));

  BILLNET_ASSIGN_OR_RETURN(json input, RequiredJson(md, "input", json::value_t::object));
  BILLNET_RETURN_IF_ERROR(IntField(input, "input", "frames", 1, 1 << 20, &t.frames));
  BILLNET_RETURN_IF_ERROR(IntField(input, "input", "height", 1, 1 << 20, &t.height));
  BILLNET_RETURN_IF_ERROR(IntField(input, "input", "width", 1, 1 << 20, &t.width));
  int channels = 0;
  BILLNET_RETURN_IF_ERROR(IntField(input, "input", "channels", 3, 3, &channels));
  auto pf = input.find("pixel_format");
  if (pf == input.end() || *pf != "rgb24")
    return MetaError("input", "field 'pixel_format' must be \"rgb24\"");

  BILLNET_ASSIGN_OR_RETURN(std::string norm, Required(md, "normalization"));
  if (norm != kNormalization)
    return Status(StatusCode::kUnsupported, "metadata 'normalization' = '" + norm +
                                                "' is not supported (expected '" + kNormalization + "')");
  BILLNET_ASSIGN_OR_RETURN(info->frame_rate, PositiveNumber(md, "frame_rate", 1000));
  BILLNET_ASSIGN_OR_RETURN(info->temperature, PositiveNumber(md, "temperature", 1e6));

  BILLNET_ASSIGN_OR_RETURN(json labels, RequiredJson(md, "labels", json::value_t::array));
  info->labels.clear();
  for (const auto& l : labels) {
    if (!l.is_string() || l.get<std::string>().empty())
      return MetaError("labels", "holds an entry that is not a non-empty string");
    info->labels.push_back(l.get<std::string>());
  }
  if (int(info->labels.size()) != t.classes)
    return MetaError("labels", "has " + std::to_string(info->labels.size()) +
                                   " entries, topology 'classes' is " + std::to_string(t.classes));
  if (md.count("provenance")) {
    BILLNET_ASSIGN_OR_RETURN(json prov, RequiredJson(md, "provenance", json::value_t::object));
    info->provenance = prov.dump();
  }
  return Status::Ok();
}

json PackingJson(const TopologyPlan& plan, Stage stage) {
  json packing = json::object();
  for (const TensorSpec& t : ExpectedTensors(plan, stage)) {
    if (t.encoding == Encoding::kPlain) continue;
    packing[t.name] = json{{"encoding", EncodingName(t.encoding)},
                           {"logical_shape", t.logical_shape},
                           {"bit_order", "lsb-first"}};
  }
  return packing;
}

// Copies a plain tensor's little-endian bytes into `out`.
template <typename T>
void ReadPlain(const uint8_t* p, int64_t count, std::vector<T>* out) {
  out->resize(count);
  if (count) std::memcpy(out->data(), p, size_t(count) * sizeof(T));  // little-endian host
}

}  // namespace

// ---------------------------------------------------------------- preparation

namespace {

// [co][cig][kt][kh][kw] -> [co][kt][kh][kw][cig]
template <typename T>
std::vector<T> TransposeConv(const ConvSpec& c, const std::vector<float>& w) {
  const int cig = c.ci / c.groups, k = c.kt * c.kh * c.kw;
  std::vector<T> out(w.size());
  for (int o = 0; o < c.co; ++o)
    for (int i = 0; i < cig; ++i)
      for (int j = 0; j < k; ++j)
        out[(int64_t(o) * k + j) * cig + i] = static_cast<T>(w[(int64_t(o) * cig + i) * k + j]);
  return out;
}

std::unique_ptr<Model::Prepared> Prepare(const TopologyPlan& plan, Stage stage,
                                         const ModelWeights& w) {
  auto p = std::make_unique<Model::Prepared>();
  const bool int_conv = StageHasBinaryActivations(stage);
  for (const auto& b : plan.blocks) {
    std::vector<PreparedConv> convs;
    for (const auto& c : b.convs) {
      PreparedConv pc;
      const auto& wv = w.conv.at(c.name);
      if (int_conv) pc.wi = TransposeConv<int8_t>(c, wv);
      else pc.wf = TransposeConv<float>(c, wv);
      convs.push_back(std::move(pc));
    }
    p->convs.push_back(std::move(convs));
    std::vector<const NormParams*> norms;
    for (const auto& n : b.norms) norms.push_back(&w.norm.at(n.name));
    p->norms.push_back(norms);
  }
  if (stage == Stage::kS5) {
    p->lstm_ih_i.assign(w.lstm_ih.begin(), w.lstm_ih.end());
    p->lstm_hh_i.assign(w.lstm_hh.begin(), w.lstm_hh.end());
    p->dense_i.assign(w.dense.begin(), w.dense.end());
  } else {
    const float ls = stage == Stage::kS1 ? 1.f : float(LstmWeightScale(plan));
    const float ds = stage == Stage::kS1 ? 1.f : float(DenseWeightScale(plan));
    for (float v : w.lstm_ih) p->lstm_ih_f.push_back(v * ls);
    for (float v : w.lstm_hh) p->lstm_hh_f.push_back(v * ls);
    for (float v : w.dense) p->dense_f.push_back(v * ds);
  }
  if (int_conv) p->fast = PrepareFastWeights(plan, stage, *p);
  return p;
}

}  // namespace

StatusOr<std::shared_ptr<const Model>> Model::FromParts(ModelInfo info, ModelWeights weights) {
  auto plan = BuildPlan(info.topology);
  if (!plan.ok()) return plan.status();
  if (int(info.labels.size()) != info.topology.classes)
    return InvalidArgument("model has " + std::to_string(info.labels.size()) +
                           " labels, topology 'classes' is " + std::to_string(info.topology.classes));
  if (!(info.frame_rate > 0) || !(info.temperature > 0) || !std::isfinite(info.frame_rate) ||
      !std::isfinite(info.temperature))
    return InvalidArgument("model frame_rate and temperature must be positive");
  BILLNET_RETURN_IF_ERROR(ValidateWeights(*plan, info.stage, weights));
  std::shared_ptr<Model> m(new Model());
  m->info_ = std::move(info);
  m->plan_ = std::move(plan).value();
  m->weights_ = std::move(weights);
  m->prepared_ = Prepare(m->plan_, m->info_.stage, m->weights_);
  if (m->prepared_->fast) m->prepared_->runners = std::make_shared<FastRunnerPool>(*m);
  return std::shared_ptr<const Model>(std::move(m));
}

StatusOr<std::shared_ptr<const Model>> Model::LoadBuffer(const uint8_t* data, size_t size,
                                                        const std::string& name) {
  const std::string ctx = "model '" + name + "'";
  BILLNET_ASSIGN_OR_RETURN(SafetensorsView view, ParseSafetensors(data, size, name));
  ModelInfo info;
  {
    Status s = ParseInfo(view.metadata, &info);
    if (!s.ok()) return s.WithContext(ctx);
  }
  auto plan = BuildPlan(info.topology);
  if (!plan.ok()) return Corruption(ctx + ": metadata 'topology': " + plan.status().message());

  // Checksum of the tensor bytes.
  {
    auto it = view.metadata.find("checksum");
    if (it == view.metadata.end()) return Corruption(ctx + ": metadata 'checksum' is missing");
    const std::string want = "sha256:" + Sha256Hex(view.data, view.data_size);
    if (it->second.rfind("sha256:", 0) != 0 || it->second.size() != want.size())
      return Corruption(ctx + ": metadata 'checksum' must be 'sha256:' and 64 hex digits");
    if (it->second != want)
      return Corruption(ctx + ": metadata 'checksum' does not match the tensor bytes (file damaged)");
    info.checksum = it->second;
  }
  // Packing metadata must describe exactly the packed tensors.
  {
    auto it = view.metadata.find("packing");
    if (it == view.metadata.end()) return Corruption(ctx + ": metadata 'packing' is missing");
    json have = json::parse(it->second, nullptr, false);
    const json want = PackingJson(*plan, info.stage);
    if (have.is_discarded()) return Corruption(ctx + ": metadata 'packing' is not valid JSON");
    if (have != want) {
      for (auto w = want.begin(); w != want.end(); ++w)
        if (!have.contains(w.key()) || have[w.key()] != w.value())
          return Corruption(ctx + ": metadata 'packing' entry for tensor '" + w.key() +
                            "' is missing or differs from " + w.value().dump());
      return Corruption(ctx + ": metadata 'packing' names tensors that are not packed");
    }
  }

  const std::vector<TensorSpec> expected = ExpectedTensors(*plan, info.stage);
  std::set<std::string> expected_names;
  for (const auto& t : expected) expected_names.insert(t.name);
  for (const auto& t : view.tensors)
    if (!expected_names.count(t.name))
      return Corruption(ctx + ": tensor '" + t.name + "' is not part of a " +
                        StageName(info.stage) + " model of this topology");

  ModelWeights w;
  for (const TensorSpec& spec : expected) {
    const RawTensor* t = view.Find(spec.name);
    if (!t) return Corruption(ctx + ": tensor '" + spec.name + "' is missing");
    if (t->dtype != spec.dtype)
      return Corruption(ctx + ": tensor '" + spec.name + "' dtype " + DTypeName(t->dtype) +
                        " does not match " + DTypeName(spec.dtype));
    if (t->shape != spec.stored_shape) {
      auto dims = [](const std::vector<int64_t>& s) {
        std::string r = "[";
        for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
        return r + "]";
      };
      return Corruption(ctx + ": tensor '" + spec.name + "' shape " + dims(t->shape) +
                        " does not match topology " + dims(spec.stored_shape));
    }
    const uint8_t* p = view.data + t->begin;
    const size_t nbytes = t->end - t->begin;
    std::vector<float> values;
    if (spec.encoding == Encoding::kSign1) {
      Status s = UnpackSign1(p, nbytes, spec.logical_count(), spec.name, &values);
      if (!s.ok()) return s.WithContext(ctx);
    } else if (spec.encoding == Encoding::kTern2) {
      Status s = UnpackTern2(p, nbytes, spec.logical_count(), spec.name, &values);
      if (!s.ok()) return s.WithContext(ctx);
    } else if (spec.dtype == DType::kF32) {
      ReadPlain(p, spec.logical_count(), &values);
    }
    if (spec.name.find(".norm.") != std::string::npos) {
      std::string norm, field;
      SplitNormTensor(spec.name, &norm, &field);
      NormParams& np = w.norm[norm];
      if (field == "scale") np.scale = values;
      else if (field == "offset") np.offset = values;
      else if (field == "threshold") ReadPlain(p, spec.logical_count(), &np.threshold);
      else if (field == "polarity") ReadPlain(p, spec.logical_count(), &np.polarity);
      else if (field == "shift") ReadPlain(p, spec.logical_count(), &np.shift);
    } else if (spec.name == "lstm.weight_ih") {
      w.lstm_ih = std::move(values);
    } else if (spec.name == "lstm.weight_hh") {
      w.lstm_hh = std::move(values);
    } else if (spec.name == "dense.weight") {
      w.dense = std::move(values);
    } else {
      w.conv[spec.name.substr(0, spec.name.size() - 7)] = std::move(values);
    }
  }
  auto model = FromParts(std::move(info), std::move(w));
  if (!model.ok())
    return Status(StatusCode::kCorruption, model.status().message()).WithContext(ctx);
  return model;
}

StatusOr<std::shared_ptr<const Model>> Model::LoadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return NotFound("model '" + path + "': cannot open file");
  const std::streamoff size = f.tellg();
  if (size < 0) return NotFound("model '" + path + "': cannot read file size");
  constexpr std::streamoff kMaxModelBytes = std::streamoff(2) << 30;
  if (size > kMaxModelBytes)
    return ResourceExhausted("model '" + path + "': file of " + std::to_string(size) +
                             " bytes is larger than the 2 GiB limit");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (size && !f.read(reinterpret_cast<char*>(bytes.data()), size))
    return Corruption("model '" + path + "': read failed");
  return LoadBuffer(bytes.data(), bytes.size(), path);
}

// ---------------------------------------------------------------- writing

StatusOr<std::string> SerializeModel(const ModelInfo& info, const ModelWeights& w) {
  auto plan = BuildPlan(info.topology);
  if (!plan.ok()) return plan.status();
  BILLNET_RETURN_IF_ERROR(ValidateWeights(*plan, info.stage, w));
  if (int(info.labels.size()) != info.topology.classes)
    return InvalidArgument("model has " + std::to_string(info.labels.size()) +
                           " labels, topology 'classes' is " + std::to_string(info.topology.classes));
  json prov = json::parse(info.provenance.empty() ? "{}" : info.provenance, nullptr, false);
  if (prov.is_discarded() || !prov.is_object())
    return InvalidArgument("model provenance must be a JSON object");

  std::vector<TensorToWrite> tensors;
  for (const TensorSpec& spec : ExpectedTensors(*plan, info.stage)) {
    TensorToWrite t{spec.name, spec.dtype, spec.stored_shape, {}};
    auto put = [&](const void* p, size_t n) {
      const auto* b = static_cast<const uint8_t*>(p);
      t.bytes.assign(b, b + n);
    };
    if (spec.name.find(".norm.") != std::string::npos) {
      std::string norm, field;
      SplitNormTensor(spec.name, &norm, &field);
      const NormParams& np = w.norm.at(norm);
      if (field == "scale") put(np.scale.data(), np.scale.size() * 4);
      else if (field == "offset") put(np.offset.data(), np.offset.size() * 4);
      else if (field == "threshold") put(np.threshold.data(), np.threshold.size() * 4);
      else if (field == "polarity") put(np.polarity.data(), np.polarity.size());
      else if (field == "shift") put(np.shift.data(), np.shift.size());
    } else {
      const std::vector<float>& v = *WeightVector(w, spec.name);
      if (spec.encoding == Encoding::kSign1) t.bytes = PackSign1(v);
      else if (spec.encoding == Encoding::kTern2) t.bytes = PackTern2(v);
      else put(v.data(), v.size() * 4);
    }
    tensors.push_back(std::move(t));
  }
  std::string data;
  for (const auto& t : tensors) data.append(t.bytes.begin(), t.bytes.end());

  std::map<std::string, std::string> md;
  md["format"] = kFormatName;
  md["format_version"] = std::to_string(kFormatVersion);
  if (!info.name.empty()) md["name"] = info.name;
  md["stage"] = StageName(info.stage);
  md["topology"] = TopologyJson(info.topology).dump();
  md["input"] = InputJson(info.topology).dump();
  md["frame_rate"] = DumpNumber(info.frame_rate);
  md["normalization"] = kNormalization;
  md["temperature"] = DumpNumber(info.temperature);
  md["labels"] = json(info.labels).dump();
  md["provenance"] = prov.dump();
  md["packing"] = PackingJson(*plan, info.stage).dump();
  md["checksum"] =
      "sha256:" + Sha256Hex(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return SerializeSafetensors(md, tensors);
}

Status WriteModelFile(const ModelInfo& info, const ModelWeights& w, const std::string& path) {
  BILLNET_ASSIGN_OR_RETURN(std::string bytes, SerializeModel(info, w));
  // Write to a temporary file and rename, so a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return NotFound("cannot create '" + tmp + "'");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    if (!f) return ResourceExhausted("cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return NotFound("cannot rename '" + tmp + "' to '" + path + "'");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- random

ModelWeights RandomWeights(const TopologyPlan& plan, Stage stage, uint64_t seed) {
  Rng rng(seed * 0x2545f4914f6cdd1dull + 1);
  ModelWeights w;
  const bool binary = StageHasBinaryWeights(stage);
  const bool int_act = StageHasBinaryActivations(stage);
  // Typical E[x^2] of a block input: {0,1} bits or ReLU of a unit normal ~ 0.5.
  auto conv_weights = [&](const ConvSpec& c) {
    std::vector<float> v(c.weight_count());
    for (float& x : v) {
      const double g = rng.Normal();
      x = binary ? (g >= 0 ? 1.f : -1.f) : float(g);
    }
    w.conv[c.name] = std::move(v);
  };
  auto norm = [&](const NormSpec& n, double stddev) {
    NormParams p;
    for (int i = 0; i < n.channels; ++i) {
      const double r = rng.Uniform();
      if (StageHasFloatNorm(stage)) {
        const double sign = r < 0.9 ? 1 : -1;
        p.scale.push_back(float(sign * rng.Uniform(0.7, 1.3) / stddev));
        p.offset.push_back(float(rng.Uniform(-0.4, 0.4)));
      } else if (stage == Stage::kS3) {
        const int8_t pol = r < 0.85 ? 1 : r < 0.97 ? -1 : 0;
        p.polarity.push_back(pol);
        p.threshold.push_back(pol == 0 ? int32_t(rng.Below(2))
                                       : int32_t(std::lround(rng.Uniform(-0.4, 0.4) * stddev)));
      } else {
        p.shift.push_back(int8_t(int(rng.Below(9)) - 6));
      }
    }
    w.norm[n.name] = std::move(p);
  };
  for (const auto& b : plan.blocks) {
    for (const auto& c : b.convs) conv_weights(c);
    if (b.kind == BlockKind::kStem) {
      const double in2 = int_act ? 255.0 * 255.0 / 3.0 : 1.0 / 3.0;
      norm(b.norms[0], std::sqrt(b.convs[0].fan_in() * in2));
    } else if (b.kind == BlockKind::kCf || b.kind == BlockKind::kMor) {
      for (size_t u = 0; u < b.norms.size(); ++u) {
        const ConvSpec* cf = &b.convs[3 * u];
        const double var = 0.5 * cf[0].fan_in() * cf[1].fan_in() * cf[2].fan_in();
        norm(b.norms[u], std::sqrt(var));
      }
    }
  }
  const int u = plan.config.lstm_units, ni = plan.gap_channels, k = plan.config.classes;
  const double lstd = 1.0 / std::sqrt(double(ni + u));
  auto lstm = [&](int64_t n) {
    std::vector<float> v(n);
    for (float& x : v) {
      const double g = rng.Normal();
      x = binary ? (g >= 0 ? 1.f : -1.f) : float(3 * lstd * g);
    }
    return v;
  };
  w.lstm_ih = lstm(int64_t(4) * u * ni);
  w.lstm_hh = lstm(int64_t(4) * u * u);
  w.dense.resize(int64_t(k) * u);
  for (float& x : w.dense) {
    const double g = rng.Normal();
    x = binary ? (g > 0.43 ? 1.f : g < -0.43 ? -1.f : 0.f) : float(g / std::sqrt(double(u)));
  }
  return w;
}

}  // namespace billnet
