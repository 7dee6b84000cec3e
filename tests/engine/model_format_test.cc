// The model file format (docs/model-format.md): write -> read round trips of
// every stage, the bit order of the packings, and one hand-made broken file per
// header field, each rejected with a message that names the field or tensor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "billnet/model.h"
#include "billnet/topology.h"
#include "packing.h"
#include "sha256.h"
#include "test_util.h"

namespace billnet {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ------------------------------------------------------------------ helpers

// A model file taken apart: the JSON header and the data section, editable,
// then put back together with Build().
struct EditableFile {
  json header;
  std::string data;

  json& meta() { return header["__metadata__"]; }
  json& tensor(const std::string& name) {
    EXPECT_TRUE(header.contains(name)) << "no tensor '" << name << "' in the header";
    return header[name];
  }
  uint64_t begin(const std::string& name) { return tensor(name)["data_offsets"][0]; }
  uint64_t end(const std::string& name) { return tensor(name)["data_offsets"][1]; }
  // The tensor whose bytes come last in the data section.
  std::string LastTensor() const {
    std::string last;
    uint64_t best = 0;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      const uint64_t b = it.value()["data_offsets"][0];
      if (last.empty() || b >= best) best = b, last = it.key();
    }
    return last;
  }
  // Removes a tensor's entry and bytes; later tensors move down.
  void RemoveTensor(const std::string& name) {
    const uint64_t b = begin(name), e = end(name);
    data.erase(b, e - b);
    header.erase(name);
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      json& off = it.value()["data_offsets"];
      if (off[0].get<uint64_t>() >= e) {
        off[0] = off[0].get<uint64_t>() - (e - b);
        off[1] = off[1].get<uint64_t>() - (e - b);
      }
    }
  }
  // Appends a tensor at the end of the data section.
  void AppendTensor(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                    const std::string& bytes) {
    header[name] = json{{"dtype", dtype},
                        {"shape", shape},
                        {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  // Checksum metadata of the current data section.
  void FixChecksum() {
    meta()["checksum"] =
        "sha256:" + Sha256Hex(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
};

uint64_t ReadLe64(const std::string& b) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(b[i]);
  return n;
}

std::string Le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xff);
  return s;
}

// Takes a valid file apart (8-byte little-endian header length + JSON + data).
EditableFile Parse(const std::string& bytes) {
  EditableFile f;
  EXPECT_GE(bytes.size(), 8u);
  const uint64_t n = ReadLe64(bytes);
  EXPECT_LE(n, bytes.size() - 8);
  f.header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + n);
  f.data = bytes.substr(8 + n);
  return f;
}

// Raw container from header text and data: length, text padded with spaces to
// a multiple of 8, data.
std::string Container(std::string text, const std::string& data) {
  while (text.size() % 8 != 0) text += ' ';
  return Le64(text.size()) + text + data;
}

std::string Build(const EditableFile& f) { return Container(f.header.dump(), f.data); }

Status Load(const std::string& bytes, const std::string& name = "broken.safetensors") {
  auto m = Model::LoadBuffer(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
  return m.ok() ? Status::Ok() : m.status();
}

std::string ValidBytes(Stage stage) { return testing::RandomModelBytes(stage, 7); }

void ExpectWeightsEqual(const ModelWeights& a, const ModelWeights& b) {
  EXPECT_EQ(a.conv, b.conv);
  ASSERT_EQ(a.norm.size(), b.norm.size());
  for (const auto& [name, p] : a.norm) {
    SCOPED_TRACE("norm " + name);
    auto it = b.norm.find(name);
    ASSERT_NE(it, b.norm.end());
    EXPECT_EQ(p.scale, it->second.scale);
    EXPECT_EQ(p.offset, it->second.offset);
    EXPECT_EQ(p.threshold, it->second.threshold);
    EXPECT_EQ(p.polarity, it->second.polarity);
    EXPECT_EQ(p.shift, it->second.shift);
  }
  EXPECT_EQ(a.lstm_ih, b.lstm_ih);
  EXPECT_EQ(a.lstm_hh, b.lstm_hh);
  EXPECT_EQ(a.dense, b.dense);
}

// ------------------------------------------------------------------ round trips

struct RoundTripParam {
  Stage stage;
  bool billnet2x;
};

class RoundTrip : public ::testing::TestWithParam<RoundTripParam> {};

TEST_P(RoundTrip, EveryFieldAndWeightSurvivesAndBytesAreStable) {
  const auto [stage, big] = GetParam();
  const TopologyConfig topo = big ? Billnet2x() : testing::TinyTopology();
  ModelInfo info = testing::TinyInfo(stage, topo);
  info.name = big ? "billnet2x" : "tiny-roundtrip";
  if (big) info.labels = JesterLabels();
  info.frame_rate = 1.0 / 3.0;  // needs all 17 digits to survive
  info.temperature = 0.6875;
  info.provenance = R"({"data":"synthetic","epochs":[8,4],"seed":12345})";
  auto plan = BuildPlan(topo);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const ModelWeights weights = RandomWeights(*plan, stage, 99);

  auto bytes = SerializeModel(info, weights);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto loaded = Model::LoadBuffer(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size(),
                                  "roundtrip");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Model& m = **loaded;

  EXPECT_EQ(m.info().name, info.name);
  EXPECT_EQ(m.info().stage, stage);
  EXPECT_EQ(m.stage(), stage);
  EXPECT_EQ(m.info().topology, topo);
  EXPECT_EQ(m.info().labels, info.labels);
  EXPECT_EQ(m.info().frame_rate, info.frame_rate);  // exact, not near
  EXPECT_EQ(m.info().temperature, info.temperature);
  EXPECT_EQ(json::parse(m.info().provenance), json::parse(info.provenance));
  EXPECT_EQ(m.window_bytes(), size_t(topo.frames) * topo.height * topo.width * 3);

  // The checksum is the SHA-256 of the data section.
  const EditableFile f = Parse(*bytes);
  EXPECT_EQ(m.info().checksum,
            "sha256:" + Sha256Hex(reinterpret_cast<const uint8_t*>(f.data.data()), f.data.size()));

  ExpectWeightsEqual(m.weights(), weights);

  // The header holds exactly the expected tensors, stored as specified.
  const std::vector<TensorSpec> expected = ExpectedTensors(*plan, stage);
  EXPECT_EQ(f.header.size(), expected.size() + 1);  // + __metadata__
  for (const TensorSpec& spec : expected) {
    SCOPED_TRACE(spec.name);
    ASSERT_TRUE(f.header.contains(spec.name));
    EXPECT_EQ(f.header[spec.name]["dtype"], DTypeName(spec.dtype));
    EXPECT_EQ(f.header[spec.name]["shape"].get<std::vector<int64_t>>(), spec.stored_shape);
  }
  // The header is padded so the data section starts 8-byte aligned.
  EXPECT_EQ(ReadLe64(*bytes) % 8, 0u);

  // Writing the loaded model again gives the same bytes.
  auto again = SerializeModel(m.info(), m.weights());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(*again == *bytes) << "re-serialized file differs (" << again->size() << " vs "
                                << bytes->size() << " bytes)";
}

std::string RoundTripName(const ::testing::TestParamInfo<RoundTripParam>& p) {
  return std::string(p.param.billnet2x ? "Billnet2x_" : "Tiny_") + StageName(p.param.stage);
}

INSTANTIATE_TEST_SUITE_P(
    ModelFormat, RoundTrip,
    ::testing::Values(RoundTripParam{Stage::kS1, false}, RoundTripParam{Stage::kS2, false},
                      RoundTripParam{Stage::kS3, false}, RoundTripParam{Stage::kS4, false},
                      RoundTripParam{Stage::kS5, false}, RoundTripParam{Stage::kS1, true},
                      RoundTripParam{Stage::kS5, true}),
    RoundTripName);

TEST(ModelFormat, EditHelperRebuildsIdenticalBytes) {
  for (int s = 1; s <= 5; ++s) {
    const std::string bytes = ValidBytes(Stage(s));
    EXPECT_TRUE(Build(Parse(bytes)) == bytes) << "stage s" << s;
    EXPECT_TRUE(Load(bytes).ok()) << Load(bytes).ToString();
  }
}

TEST(ModelFormat, NameIsOptional) {
  EditableFile f = Parse(ValidBytes(Stage::kS5));
  f.meta().erase("name");
  const std::string bytes = Build(f);
  auto m = Model::LoadBuffer(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->info().name, "");
}

TEST(ModelFormat, LoadFileMissingPathIsNotFoundNamingThePath) {
  const std::string path = "/nonexistent/billnet/dir/s5.safetensors";
  auto m = Model::LoadFile(path);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound) << m.status().ToString();
  EXPECT_THAT(m.status().message(), HasSubstr(path));
}

// ------------------------------------------------------------------ bit order

TEST(Packing, Sign1OneHotLandsInByteIOver8BitIMod8) {
  for (int64_t count : {1, 7, 8, 9, 13, 16, 67}) {
    for (int64_t p = 0; p < count; ++p) {
      SCOPED_TRACE("count " + std::to_string(count) + " position " + std::to_string(p));
      std::vector<float> v(count, -1.f);
      v[p] = 1.f;
      const std::vector<uint8_t> b = PackSign1(v);
      ASSERT_EQ(b.size(), size_t((count + 7) / 8));
      for (size_t i = 0; i < b.size(); ++i)
        EXPECT_EQ(b[i], i == size_t(p / 8) ? uint8_t(1u << (p % 8)) : 0) << "byte " << i;
      std::vector<float> back;
      ASSERT_TRUE(UnpackSign1(b.data(), b.size(), count, "t", &back).ok());
      EXPECT_EQ(back, v);

      // A single -1 among +1s: every valid bit set but that one; padding zero.
      std::vector<float> w(count, 1.f);
      w[p] = -1.f;
      const std::vector<uint8_t> c = PackSign1(w);
      for (size_t i = 0; i < c.size(); ++i) {
        const int64_t valid = std::min<int64_t>(8, count - int64_t(i) * 8);
        uint8_t want = uint8_t((1u << valid) - 1);
        if (i == size_t(p / 8)) want &= uint8_t(~(1u << (p % 8)));
        EXPECT_EQ(c[i], want) << "byte " << i;
      }
      ASSERT_TRUE(UnpackSign1(c.data(), c.size(), count, "t", &back).ok());
      EXPECT_EQ(back, w);
    }
  }
}

// Sign(0) = +1 is the exporter's business: a binary tensor holds only +-1, so
// the writer refuses a 0 rather than pick a bit for it.
TEST(Packing, WriterRejectsZeroInBinaryWeights) {
  auto plan = BuildPlan(testing::TinyTopology());
  ASSERT_TRUE(plan.ok());
  ModelWeights w = RandomWeights(*plan, Stage::kS5, 3);
  w.conv.at("cf1.pw2")[5] = 0.f;
  auto bytes = SerializeModel(testing::TinyInfo(Stage::kS5), w);
  ASSERT_FALSE(bytes.ok());
  EXPECT_THAT(bytes.status().message(), HasSubstr("tensor 'cf1.pw2.weight' value 5"));
}

// The examples given in docs/model-format.md section 4.
TEST(Packing, DocumentedExamples) {
  const std::vector<float> s = {1, -1, -1, 1, -1, -1, -1, -1, -1, 1};
  EXPECT_EQ(PackSign1(s), (std::vector<uint8_t>{0x09, 0x02}));
  const std::vector<float> t = {0, 1, -1, 0, -1};
  EXPECT_EQ(PackTern2(t), (std::vector<uint8_t>{0x34, 0x03}));
}

TEST(Packing, Tern2OneHotLandsInByteIOver4BitsTwoIMod4) {
  for (int64_t count : {1, 3, 4, 5, 8, 11}) {
    for (int64_t p = 0; p < count; ++p) {
      for (float value : {1.f, -1.f}) {
        SCOPED_TRACE("count " + std::to_string(count) + " position " + std::to_string(p) +
                     " value " + std::to_string(value));
        std::vector<float> v(count, 0.f);
        v[p] = value;
        const std::vector<uint8_t> b = PackTern2(v);
        ASSERT_EQ(b.size(), size_t((count + 3) / 4));
        const uint8_t code = value > 0 ? 0b01 : 0b11;
        for (size_t i = 0; i < b.size(); ++i)
          EXPECT_EQ(b[i], i == size_t(p / 4) ? uint8_t(code << (2 * (p % 4))) : 0) << "byte " << i;
        std::vector<float> back;
        ASSERT_TRUE(UnpackTern2(b.data(), b.size(), count, "t", &back).ok());
        EXPECT_EQ(back, v);
      }
    }
  }
}

TEST(Packing, Sign1NonzeroPaddingIsRejected) {
  for (int count : {1, 5, 7, 9, 15}) {
    for (int bit = count % 8; bit < 8 && count % 8; ++bit) {
      SCOPED_TRACE("count " + std::to_string(count) + " padding bit " + std::to_string(bit));
      std::vector<uint8_t> b((count + 7) / 8, 0);
      b.back() = uint8_t(1u << bit);
      std::vector<float> out;
      Status s = UnpackSign1(b.data(), b.size(), count, "cf1.pw1.weight", &out);
      ASSERT_FALSE(s.ok());
      EXPECT_EQ(s.code(), StatusCode::kCorruption);
      EXPECT_THAT(s.message(), HasSubstr("'cf1.pw1.weight'"));
      EXPECT_THAT(s.message(), HasSubstr("padding"));
    }
  }
}

TEST(Packing, Tern2NonzeroPaddingIsRejected) {
  for (int count : {1, 2, 3, 5, 7}) {
    for (int bit = 2 * (count % 4); bit < 8; ++bit) {
      SCOPED_TRACE("count " + std::to_string(count) + " padding bit " + std::to_string(bit));
      std::vector<uint8_t> b((count + 3) / 4, 0);
      b.back() = uint8_t(1u << bit);
      std::vector<float> out;
      Status s = UnpackTern2(b.data(), b.size(), count, "dense.weight", &out);
      ASSERT_FALSE(s.ok());
      EXPECT_THAT(s.message(), HasSubstr("'dense.weight'"));
    }
  }
}

TEST(Packing, Tern2Code10IsRejected) {
  for (int p = 0; p < 8; ++p) {
    SCOPED_TRACE("position " + std::to_string(p));
    std::vector<uint8_t> b(2, 0);
    b[p / 4] = uint8_t(0b10 << (2 * (p % 4)));
    std::vector<float> out;
    Status s = UnpackTern2(b.data(), b.size(), 8, "dense.weight", &out);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kCorruption);
    EXPECT_THAT(s.message(), HasSubstr("'dense.weight'"));
    EXPECT_THAT(s.message(), HasSubstr("value " + std::to_string(p)));
    EXPECT_THAT(s.message(), HasSubstr("0b10"));
  }
}

TEST(Packing, WrongByteCountIsRejected) {
  std::vector<uint8_t> b(3, 0);
  std::vector<float> out;
  EXPECT_FALSE(UnpackSign1(b.data(), b.size(), 8, "t", &out).ok());
  EXPECT_FALSE(UnpackSign1(b.data(), b.size(), 25, "t", &out).ok());
  EXPECT_FALSE(UnpackTern2(b.data(), b.size(), 8, "t", &out).ok());
  EXPECT_FALSE(UnpackTern2(b.data(), b.size(), 13, "t", &out).ok());
  EXPECT_TRUE(UnpackSign1(b.data(), b.size(), 17, "t", &out).ok());
  EXPECT_TRUE(UnpackTern2(b.data(), b.size(), 9, "t", &out).ok());
}

// The same rule seen through a model file: one +1 among -1s in the stem conv
// weight [co][ci][kt][kh][kw] lands at byte i/8, bit i%8 of its tensor's bytes.
TEST(Packing, OneHotThroughTheModelFile) {
  const TopologyConfig topo = testing::TinyTopology();
  auto plan = BuildPlan(topo);
  ASSERT_TRUE(plan.ok());
  ModelWeights w = RandomWeights(*plan, Stage::kS5, 3);
  std::vector<float>& stem = w.conv.at("stem.conv");
  ASSERT_EQ(stem.size(), 4u * 3 * 3 * 5 * 5);
  // Element [co=2][ci=1][kt=0][kh=3][kw=4].
  const int64_t idx = (((2 * 3 + 1) * 3 + 0) * 5 + 3) * 5 + 4;
  std::fill(stem.begin(), stem.end(), -1.f);
  stem[idx] = 1.f;
  std::fill(w.dense.begin(), w.dense.end(), 0.f);
  w.dense[5 * 16 - 1] = -1.f;  // last element of [K=5][U=16]

  auto bytes = SerializeModel(testing::TinyInfo(Stage::kS5), w);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EditableFile f = Parse(*bytes);
  const std::string stem_bytes = f.data.substr(
      f.begin("stem.conv.weight"), f.end("stem.conv.weight") - f.begin("stem.conv.weight"));
  ASSERT_EQ(stem_bytes.size(), (900u + 7) / 8);
  for (size_t i = 0; i < stem_bytes.size(); ++i)
    EXPECT_EQ(uint8_t(stem_bytes[i]), i == size_t(idx / 8) ? uint8_t(1u << (idx % 8)) : 0)
        << "byte " << i;
  const std::string dense_bytes =
      f.data.substr(f.begin("dense.weight"), f.end("dense.weight") - f.begin("dense.weight"));
  ASSERT_EQ(dense_bytes.size(), 20u);
  for (size_t i = 0; i < dense_bytes.size(); ++i)
    EXPECT_EQ(uint8_t(dense_bytes[i]), i == 19 ? 0b11000000 : 0) << "byte " << i;
  // The packing metadata gives the logical shape and the bit order.
  const json packing = json::parse(f.meta()["packing"].get<std::string>());
  EXPECT_EQ(packing["stem.conv.weight"]["encoding"], "sign1");
  EXPECT_EQ(packing["stem.conv.weight"]["bit_order"], "lsb-first");
  EXPECT_EQ(packing["stem.conv.weight"]["logical_shape"], json({4, 3, 3, 5, 5}));
  EXPECT_EQ(packing["dense.weight"]["encoding"], "tern2");

  auto m =
      Model::LoadBuffer(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size(), "onehot");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->weights().conv.at("stem.conv"), stem);
  EXPECT_EQ((*m)->weights().dense, w.dense);
}

// ------------------------------------------------------------------ broken files

struct BrokenCase {
  std::string name;  // test name suffix
  Stage stage;
  // Edits the taken-apart valid file; the checksum is recomputed afterwards
  // unless keep_checksum is set, so the targeted error is the one reached.
  std::function<void(EditableFile&)> edit;
  StatusCode code;
  std::vector<std::string> substrings;  // all must occur in the message
  bool keep_checksum = false;
};

void SetTopo(EditableFile& f, const std::string& field, const json& value) {
  json t = json::parse(f.meta()["topology"].get<std::string>());
  if (value.is_null())
    t.erase(field);
  else
    t[field] = value;
  f.meta()["topology"] = t.dump();
}

void SetInput(EditableFile& f, const std::string& field, const json& value) {
  json t = json::parse(f.meta()["input"].get<std::string>());
  if (value.is_null())
    t.erase(field);
  else
    t[field] = value;
  f.meta()["input"] = t.dump();
}

std::vector<BrokenCase> BrokenCases() {
  constexpr auto kCorrupt = StatusCode::kCorruption;
  constexpr auto kUnsup = StatusCode::kUnsupported;
  std::vector<BrokenCase> c;
  auto add = [&](std::string name, Stage stage, std::function<void(EditableFile&)> edit,
                 StatusCode code, std::vector<std::string> subs, bool keep_checksum = false) {
    c.push_back({std::move(name), stage, std::move(edit), code, std::move(subs), keep_checksum});
  };
  const Stage s1 = Stage::kS1, s3 = Stage::kS3, s5 = Stage::kS5;

  // Tensor entries.
  add("DtypeMissing", s5, [](EditableFile& f) { f.tensor("stem.conv.weight").erase("dtype"); },
      kCorrupt, {"tensor 'stem.conv.weight'", "'dtype'"});
  add("DtypeNotString", s5, [](EditableFile& f) { f.tensor("stem.conv.weight")["dtype"] = 1; },
      kCorrupt, {"tensor 'stem.conv.weight'", "'dtype'"});
  add("DtypeUnknown", s5, [](EditableFile& f) { f.tensor("stem.conv.weight")["dtype"] = "Q4"; },
      kCorrupt, {"tensor 'stem.conv.weight'", "'dtype'", "Q4"});
  add("DtypeF16Unsupported", s1,
      [](EditableFile& f) { f.tensor("stem.norm.scale")["dtype"] = "F16"; }, kUnsup,
      {"tensor 'stem.norm.scale'", "dtype 'F16'"});
  add("UnknownEntryField", s5, [](EditableFile& f) { f.tensor("dense.weight")["extra"] = 1; },
      kCorrupt, {"tensor 'dense.weight'", "unknown field 'extra'"});
  add("EntryNotObject", s5, [](EditableFile& f) { f.header["dense.weight"] = json::array(); },
      kCorrupt, {"tensor 'dense.weight'", "not a JSON object"});
  add("ShapeNotArray", s5, [](EditableFile& f) { f.tensor("dense.weight")["shape"] = 20; },
      kCorrupt, {"tensor 'dense.weight'", "'shape'"});
  add("ShapeMissing", s5, [](EditableFile& f) { f.tensor("dense.weight").erase("shape"); },
      kCorrupt, {"tensor 'dense.weight'", "'shape'"});
  add("ShapeNegative", s5,
      [](EditableFile& f) { f.tensor("dense.weight")["shape"] = json::array({-20}); }, kCorrupt,
      {"tensor 'dense.weight'", "'shape'", "non-negative"});
  add("ShapeFloat", s5,
      [](EditableFile& f) { f.tensor("dense.weight")["shape"] = json::array({20.5}); }, kCorrupt,
      {"tensor 'dense.weight'", "'shape'"});
  add("ShapeRankTooHigh", s5,
      [](EditableFile& f) { f.tensor("dense.weight")["shape"] = {20, 1, 1, 1, 1, 1, 1, 1, 1}; },
      kCorrupt, {"tensor 'dense.weight'", "'shape'", "rank"});
  add("ShapeHuge", s5,
      [](EditableFile& f) {
        f.tensor("dense.weight")["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40};
      },
      kCorrupt, {"tensor 'dense.weight'", "'shape'", "too large"});
  add("DataOffsetsWrongLength", s5,
      [](EditableFile& f) { f.tensor("dense.weight")["data_offsets"] = json::array({0}); },
      kCorrupt, {"tensor 'dense.weight'", "'data_offsets'"});
  add("DataOffsetsMissing", s5,
      [](EditableFile& f) { f.tensor("dense.weight").erase("data_offsets"); }, kCorrupt,
      {"tensor 'dense.weight'", "'data_offsets'"});
  add("DataOffsetsNegative", s5,
      [](EditableFile& f) { f.tensor("dense.weight")["data_offsets"][0] = -1; }, kCorrupt,
      {"tensor 'dense.weight'", "'data_offsets'"});
  add("DataOffsetsBeginAfterEnd", s5,
      [](EditableFile& f) {
        json& o = f.tensor("dense.weight")["data_offsets"];
        o = {o[1], o[0]};
      },
      kCorrupt, {"tensor 'dense.weight'", "'data_offsets'", "begin"});
  add("DataOffsetsEndPastData", s5,
      [](EditableFile& f) {
        f.tensor("dense.weight")["data_offsets"] = {f.data.size(), f.data.size() + 20};
      },
      kCorrupt, {"tensor 'dense.weight'", "'data_offsets'", "past the data section"});
  add("DataOffsetsSpanMismatch", s5,
      [](EditableFile& f) {
        const uint64_t b = f.begin("dense.weight");
        f.tensor("dense.weight")["data_offsets"] = {b, b + 19};
      },
      kCorrupt, {"tensor 'dense.weight'", "'data_offsets'", "spans 19 bytes"});
  add("TensorsOverlap", s5,
      [](EditableFile& f) {
        const std::string last = f.LastTensor();
        const uint64_t b = f.begin(last), e = f.end(last);
        f.tensor(last)["data_offsets"] = {b - 1, e - 1};
      },
      kCorrupt, {"overlap"});
  add("GapBetweenTensors", s5,
      [](EditableFile& f) {
        const std::string last = f.LastTensor();
        const uint64_t b = f.begin(last), e = f.end(last);
        f.data.insert(b, 1, '\0');
        f.tensor(last)["data_offsets"] = {b + 1, e + 1};
      },
      kCorrupt, {"gap"});
  add("TrailingBytes", s5, [](EditableFile& f) { f.data += std::string(3, '\0'); }, kCorrupt,
      {"data section", "trailing bytes"});
  add("EmptyTensorName", s5, [](EditableFile& f) { f.AppendTensor("", "U8", {0}, ""); }, kCorrupt,
      {"empty name"});

  // Tensors against the topology.
  add("TensorMissing", s5, [](EditableFile& f) { f.RemoveTensor("cf2.gconv.weight"); }, kCorrupt,
      {"tensor 'cf2.gconv.weight' is missing"});
  add("NormTensorMissing", s3, [](EditableFile& f) { f.RemoveTensor("mor1.b.norm.polarity"); },
      kCorrupt, {"tensor 'mor1.b.norm.polarity' is missing"});
  add("UnexpectedTensor", s5,
      [](EditableFile& f) { f.AppendTensor("cf4.pw1.weight", "U8", {4}, std::string(4, '\0')); },
      kCorrupt, {"tensor 'cf4.pw1.weight' is not part of"});
  add("WrongStageTensor", s5,
      [](EditableFile& f) { f.AppendTensor("stem.norm.scale", "F32", {4}, std::string(16, '\0')); },
      kCorrupt, {"tensor 'stem.norm.scale' is not part of a s5 model"});
  add("WrongDtype", s1, [](EditableFile& f) { f.tensor("stem.norm.scale")["dtype"] = "I32"; },
      kCorrupt, {"tensor 'stem.norm.scale'", "dtype I32 does not match F32"});
  add("WrongDtypePackedAsF32", s5,
      [](EditableFile& f) {
        // 20 bytes as 5 floats: the span still matches, the dtype does not.
        f.tensor("dense.weight")["dtype"] = "F32";
        f.tensor("dense.weight")["shape"] = json::array({5});
      },
      kCorrupt, {"tensor 'dense.weight'", "dtype F32 does not match U8"});
  add("WrongShape", s1,
      [](EditableFile& f) {
        f.tensor("stem.conv.weight")["shape"] = {4, 3, 3, 25, 1};
      },
      kCorrupt, {"tensor 'stem.conv.weight' shape [4,3,3,25,1]", "[4,3,3,5,5]"});
  add("WrongPackedShape", s5,
      [](EditableFile& f) {
        f.tensor("dense.weight")["shape"] = {4, 5};
      },
      kCorrupt, {"tensor 'dense.weight' shape [4,5]", "[20]"});

  // Metadata values.
  add("MetadataNotObject", s5, [](EditableFile& f) { f.header["__metadata__"] = "x"; }, kCorrupt,
      {"'__metadata__'"});
  add("MetadataValueNotString", s5, [](EditableFile& f) { f.meta()["frame_rate"] = 6.0; }, kCorrupt,
      {"metadata 'frame_rate'", "not a string"});
  for (const char* key : {"format", "format_version", "stage", "topology", "input", "normalization",
                          "frame_rate", "temperature", "labels", "packing", "checksum"}) {
    add(std::string("MetadataMissing_") + key, s5, [key](EditableFile& f) { f.meta().erase(key); },
        kCorrupt, {std::string("metadata '") + key + "'", "missing"});
  }
  add("FormatWrong", s5, [](EditableFile& f) { f.meta()["format"] = "gguf"; }, kCorrupt,
      {"metadata 'format'", "gguf"});
  add("FormatVersion2", s5, [](EditableFile& f) { f.meta()["format_version"] = "2"; }, kUnsup,
      {"metadata 'format_version'", "'2'"});
  add("FormatVersionNotNumber", s5, [](EditableFile& f) { f.meta()["format_version"] = "v1"; },
      kUnsup, {"metadata 'format_version'"});
  add("StageUnknown", s5, [](EditableFile& f) { f.meta()["stage"] = "s9"; }, kCorrupt,
      {"metadata 'stage'", "s9"});
  add("StageMismatchesTensors", s5, [](EditableFile& f) { f.meta()["stage"] = "s3"; }, kCorrupt,
      {"tensor 'stem.norm.shift' is not part of a s3 model"});
  add("TopologyNotJson", s5, [](EditableFile& f) { f.meta()["topology"] = "{base_channels: 8"; },
      kCorrupt, {"metadata 'topology'", "not valid JSON"});
  add("TopologyNotObject", s5, [](EditableFile& f) { f.meta()["topology"] = "[8, 2]"; }, kCorrupt,
      {"metadata 'topology'", "object"});
  add("TopologyArchitecture", s5, [](EditableFile& f) { SetTopo(f, "architecture", "resnet"); },
      kCorrupt, {"metadata 'topology'", "'architecture'"});
  for (const char* field :
       {"base_channels", "groups", "lstm_units", "classes", "tail_mor_blocks"}) {
    add(std::string("TopologyMissing_") + field, s5,
        [field](EditableFile& f) { SetTopo(f, field, nullptr); }, kCorrupt,
        {"metadata 'topology'", std::string("'") + field + "'"});
  }
  add("TopologyFieldNotInteger", s5, [](EditableFile& f) { SetTopo(f, "lstm_units", "16"); },
      kCorrupt, {"metadata 'topology'", "'lstm_units'", "not an integer"});
  add("TopologyFieldOutOfRange", s5, [](EditableFile& f) { SetTopo(f, "classes", 0); }, kCorrupt,
      {"metadata 'topology'", "'classes'"});
  add("TopologyGroupsNotDividing", s5, [](EditableFile& f) { SetTopo(f, "groups", 3); }, kCorrupt,
      {"metadata 'topology'", "'groups'"});
  add("TopologyBaseChannelsNotMultipleOf4", s5,
      [](EditableFile& f) { SetTopo(f, "base_channels", 6); }, kCorrupt,
      {"metadata 'topology'", "'base_channels'"});
  add("TopologyDisagreesWithTensors", s1, [](EditableFile& f) { SetTopo(f, "lstm_units", 8); },
      kCorrupt, {"tensor 'lstm.weight_ih' shape [64,32] does not match topology [32,32]"});
  add("TopologyDisagreesWithPacking", s5, [](EditableFile& f) { SetTopo(f, "lstm_units", 8); },
      kCorrupt, {"metadata 'packing' entry for tensor 'dense.weight'"});
  add("InputNotJson", s5, [](EditableFile& f) { f.meta()["input"] = "frames=8"; }, kCorrupt,
      {"metadata 'input'", "not valid JSON"});
  add("InputMissingHeight", s5, [](EditableFile& f) { SetInput(f, "height", nullptr); }, kCorrupt,
      {"metadata 'input'", "'height'"});
  add("InputChannels4", s5, [](EditableFile& f) { SetInput(f, "channels", 4); }, kCorrupt,
      {"metadata 'input'", "'channels'"});
  add("InputPixelFormat", s5, [](EditableFile& f) { SetInput(f, "pixel_format", "yuv420p"); },
      kCorrupt, {"metadata 'input'", "'pixel_format'"});
  add("InputTooSmall", s5, [](EditableFile& f) { SetInput(f, "height", 8); }, kCorrupt,
      {"metadata 'topology'", "'height'"});
  add("NormalizationUnknown", s5, [](EditableFile& f) { f.meta()["normalization"] = "x/255"; },
      kUnsup, {"metadata 'normalization'", "x/255"});
  add("LabelsCountMismatch", s5,
      [](EditableFile& f) {
        f.meta()["labels"] = json({"a", "b", "c", "d"}).dump();
      },
      kCorrupt, {"metadata 'labels'", "4 entries", "'classes' is 5"});
  add("LabelsNotArray", s5, [](EditableFile& f) { f.meta()["labels"] = "{}"; }, kCorrupt,
      {"metadata 'labels'", "array"});
  add("LabelsEntryNotString", s5,
      [](EditableFile& f) {
        f.meta()["labels"] = json({"a", "b", 3, "d", "e"}).dump();
      },
      kCorrupt, {"metadata 'labels'"});
  add("LabelsEntryEmpty", s5,
      [](EditableFile& f) {
        f.meta()["labels"] = json({"a", "b", "", "d", "e"}).dump();
      },
      kCorrupt, {"metadata 'labels'"});
  add("FrameRateNotNumber", s5, [](EditableFile& f) { f.meta()["frame_rate"] = "abc"; }, kCorrupt,
      {"metadata 'frame_rate'", "abc", "not a number"});
  add("FrameRateNegative", s5, [](EditableFile& f) { f.meta()["frame_rate"] = "-1"; }, kCorrupt,
      {"metadata 'frame_rate'", "-1", "outside"});
  add("FrameRateEmpty", s5, [](EditableFile& f) { f.meta()["frame_rate"] = ""; }, kCorrupt,
      {"metadata 'frame_rate'"});
  add("FrameRateTrailingText", s5, [](EditableFile& f) { f.meta()["frame_rate"] = "6fps"; },
      kCorrupt, {"metadata 'frame_rate'"});
  add("FrameRateInfinite", s5, [](EditableFile& f) { f.meta()["frame_rate"] = "inf"; }, kCorrupt,
      {"metadata 'frame_rate'"});
  add("FrameRateNaN", s5, [](EditableFile& f) { f.meta()["frame_rate"] = "nan"; }, kCorrupt,
      {"metadata 'frame_rate'"});
  add("TemperatureZero", s5, [](EditableFile& f) { f.meta()["temperature"] = "0"; }, kCorrupt,
      {"metadata 'temperature'", "outside"});
  add("ProvenanceNotObject", s5, [](EditableFile& f) { f.meta()["provenance"] = "[1]"; }, kCorrupt,
      {"metadata 'provenance'"});
  add(
      "ChecksumMismatch", s5, [](EditableFile& f) { f.data[f.begin("cf1.gconv.weight")] ^= 0x01; },
      kCorrupt, {"metadata 'checksum'", "does not match"}, /*keep_checksum=*/true);
  add(
      "ChecksumMalformed", s5, [](EditableFile& f) { f.meta()["checksum"] = "md5:0123"; }, kCorrupt,
      {"metadata 'checksum'", "sha256"}, /*keep_checksum=*/true);
  add(
      "ChecksumUppercaseHex", s5,
      [](EditableFile& f) {
        std::string c = f.meta()["checksum"];
        for (char& ch : c) ch = char(std::toupper(uint8_t(ch)));
        f.meta()["checksum"] = "sha256:" + c.substr(7);
      },
      kCorrupt, {"metadata 'checksum'"}, /*keep_checksum=*/true);
  add("PackingNotJson", s5, [](EditableFile& f) { f.meta()["packing"] = "{"; }, kCorrupt,
      {"metadata 'packing'", "not valid JSON"});
  add("PackingEntryAltered", s5,
      [](EditableFile& f) {
        json p = json::parse(f.meta()["packing"].get<std::string>());
        p["cf1.pw1.weight"]["bit_order"] = "msb-first";
        f.meta()["packing"] = p.dump();
      },
      kCorrupt, {"metadata 'packing'", "tensor 'cf1.pw1.weight'"});
  add("PackingEntryMissing", s5,
      [](EditableFile& f) {
        json p = json::parse(f.meta()["packing"].get<std::string>());
        p.erase("lstm.weight_hh");
        f.meta()["packing"] = p.dump();
      },
      kCorrupt, {"metadata 'packing'", "tensor 'lstm.weight_hh'"});
  add("PackingExtraEntry", s1,
      [](EditableFile& f) {
        f.meta()["packing"] =
            json{{"dense.weight", {{"encoding", "tern2"}, {"logical_shape", {5, 16}}}}}.dump();
      },
      kCorrupt, {"metadata 'packing'", "not packed"});
  add("PackingNotObject", s5, [](EditableFile& f) { f.meta()["packing"] = "[]"; }, kCorrupt,
      {"metadata 'packing'"});

  // Tensor values.
  add("Sign1NonzeroPadding", s5,
      [](EditableFile& f) {
        // stem.conv.weight holds 4*3*3*5*5 = 900 values: 113 bytes, 4 padding bits.
        f.data[f.end("stem.conv.weight") - 1] |= char(0x80);
      },
      kCorrupt, {"tensor 'stem.conv.weight'", "padding bits"});
  add("Tern2Code10", s5,
      [](EditableFile& f) {
        char& b = f.data[f.begin("dense.weight") + 2];
        b = char((uint8_t(b) & ~0x0c) | 0x08);  // value 2*4 + 1 = 9
      },
      kCorrupt, {"tensor 'dense.weight'", "value 9", "0b10"});
  add("S3Polarity5", s3, [](EditableFile& f) { f.data[f.begin("cf2.norm.polarity") + 3] = 5; },
      kCorrupt, {"tensor 'cf2.norm.polarity'", "value 3 = 5"});
  add("S3PolarityNegative2", s3,
      [](EditableFile& f) { f.data[f.begin("stem.norm.polarity")] = char(-2); }, kCorrupt,
      {"tensor 'stem.norm.polarity'", "value 0 = -2"});
  add("S3ConstantThresholdNotBit", s3,
      [](EditableFile& f) {
        f.data[f.begin("stem.norm.polarity")] = 0;
        const int32_t t = 7;
        std::memcpy(&f.data[f.begin("stem.norm.threshold")], &t, 4);
      },
      kCorrupt, {"tensor 'stem.norm.threshold'", "value 0"});
  add("S5ShiftOutOfRange", s5, [](EditableFile& f) { f.data[f.begin("cf3.norm.shift") + 1] = 100; },
      kCorrupt, {"tensor 'cf3.norm.shift'", "value 1 = 100"});
  add("F32WeightNaN", s1,
      [](EditableFile& f) {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(&f.data[f.begin("cf1.gconv.weight") + 4 * 5], &nan, 4);
      },
      kCorrupt, {"tensor 'cf1.gconv.weight'", "value 5", "not finite"});
  add("F32NormInfinite", s1,
      [](EditableFile& f) {
        const float inf = std::numeric_limits<float>::infinity();
        std::memcpy(&f.data[f.begin("mor2.b.norm.offset")], &inf, 4);
      },
      kCorrupt, {"tensor 'mor2.b.norm.offset'", "not finite"});
  add("F32LstmNaN", s1,
      [](EditableFile& f) {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(&f.data[f.end("lstm.weight_hh") - 4], &nan, 4);
      },
      kCorrupt, {"tensor 'lstm.weight_hh'", "not finite"});
  return c;
}

void PrintTo(const BrokenCase& c, std::ostream* os) { *os << c.name; }

class BrokenFile : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenFile, IsRejectedNamingTheField) {
  const BrokenCase& bc = GetParam();
  const std::string valid = ValidBytes(bc.stage);
  ASSERT_TRUE(Load(valid).ok());
  EditableFile f = Parse(valid);
  bc.edit(f);
  if (!bc.keep_checksum && f.header.contains("__metadata__") &&
      f.header["__metadata__"].is_object() && f.meta().contains("checksum"))
    f.FixChecksum();
  const std::string bytes = Build(f);
  ASSERT_FALSE(bytes == valid) << "the edit changed nothing";
  Status s = Load(bytes, "broken.safetensors");
  ASSERT_FALSE(s.ok()) << "accepted";
  EXPECT_EQ(s.code(), bc.code) << s.ToString();
  EXPECT_THAT(s.message(), StartsWith("model 'broken.safetensors': "));
  for (const std::string& sub : bc.substrings) EXPECT_THAT(s.message(), HasSubstr(sub));
}

INSTANTIATE_TEST_SUITE_P(ModelFormat, BrokenFile, ::testing::ValuesIn(BrokenCases()),
                         [](const ::testing::TestParamInfo<BrokenCase>& p) {
                           return p.param.name + "_" + StageName(p.param.stage);
                         });

// Containers too damaged to take apart with the helper.
struct RawCase {
  std::string name;
  std::function<std::string(const std::string& valid)> make;
  std::string substring;
};

std::vector<RawCase> RawCases() {
  return {
      {"Empty", [](const std::string&) { return std::string(); }, "too short"},
      {"ShorterThan8Bytes", [](const std::string& v) { return v.substr(0, 7); },
       "too short for the 8-byte header length"},
      {"HeaderLengthZero", [](const std::string& v) { return Le64(0) + v.substr(8); },
       "header length 0"},
      {"HeaderLengthOne", [](const std::string& v) { return Le64(1) + v.substr(8); },
       "header length 1"},
      {"HeaderLengthHuge",
       [](const std::string& v) { return Le64(uint64_t{1} << 40) + v.substr(8); },
       "header length 1099511627776"},
      {"HeaderLengthMax", [](const std::string& v) { return Le64(~uint64_t{0}) + v.substr(8); },
       "header length 18446744073709551615"},
      {"HeaderLengthBeyondFile", [](const std::string& v) { return Le64(v.size()) + v.substr(8); },
       "exceeds"},
      {"TruncatedInHeader", [](const std::string& v) { return v.substr(0, 100); }, "exceeds"},
      {"HeaderNotStartingWithBrace", [](const std::string&) { return Container(" {}", ""); },
       "header does not start with '{'"},
      {"HeaderIsJsonArray", [](const std::string&) { return Container("[{\"a\":1}]", ""); },
       "header does not start with '{'"},
      {"HeaderInvalidJson",
       [](const std::string&) { return Container("{\"a\": {\"dtype\": ", ""); },
       "header is not valid JSON"},
      {"HeaderTrailingGarbage", [](const std::string&) { return Container("{} x", ""); },
       "header is not valid JSON"},
      {"HeaderNulPadding",
       [](const std::string&) { return Le64(8) + std::string("{}\0\0\0\0\0\0", 8); },
       "header contains a NUL byte"},
      {"HeaderNulThenGarbage",
       [](const std::string&) { return Container(std::string("{}\0garbage", 10), ""); },
       "header contains a NUL byte"},
      {"HeaderInvalidUtf8", [](const std::string&) { return Container("{\"\xff\xfe\": 1}", ""); },
       "header is not valid JSON"},
      {"EmptyHeaderObject", [](const std::string&) { return Container("{}", ""); },
       "metadata 'format' is missing"},
      {"TruncatedData", [](const std::string& v) { return v.substr(0, v.size() - 1); },
       "past the data section"},
  };
}

void PrintTo(const RawCase& c, std::ostream* os) { *os << c.name; }

class BrokenContainer : public ::testing::TestWithParam<RawCase> {};

TEST_P(BrokenContainer, IsRejectedNamingTheField) {
  const RawCase& rc = GetParam();
  const std::string bytes = rc.make(ValidBytes(Stage::kS5));
  Status s = Load(bytes, "raw.safetensors");
  ASSERT_FALSE(s.ok()) << "accepted";
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_THAT(s.message(), StartsWith("model 'raw.safetensors': "));
  EXPECT_THAT(s.message(), HasSubstr(rc.substring));
}

INSTANTIATE_TEST_SUITE_P(ModelFormat, BrokenContainer, ::testing::ValuesIn(RawCases()),
                         [](const ::testing::TestParamInfo<RawCase>& p) { return p.param.name; });

// Damage anywhere never crashes: every truncation and, in the header and at the
// start of the data, every single-byte change is rejected or (where it lands on
// insignificant header whitespace) loads the same model.
TEST(ModelFormat, TruncationsAndByteFlipsNeverCrash) {
  for (int s : {1, 3, 5}) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    const std::string valid = ValidBytes(Stage(s));
    const uint64_t header_end = 8 + ReadLe64(valid);
    for (size_t n = 0; n < valid.size(); n += (n < header_end + 64 ? 1 : 97)) {
      EXPECT_FALSE(Load(valid.substr(0, n)).ok()) << "prefix of " << n << " bytes accepted";
    }
    const size_t flip_end = std::min<size_t>(valid.size(), header_end + 256);
    for (size_t i = 0; i < flip_end; ++i) {
      for (uint8_t x : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
        std::string b = valid;
        b[i] = char(uint8_t(b[i]) ^ x);
        Status st = Load(b);
        if (st.ok()) {
          // Only a change inside the header's JSON whitespace can be harmless.
          EXPECT_GE(i, 8u);
          EXPECT_LT(i, header_end);
        }
      }
    }
  }
}

}  // namespace
}  // namespace billnet
