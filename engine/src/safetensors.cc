#include "safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace billnet {

using nlohmann::json;

const RawTensor* SafetensorsView::Find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {

bool ParseDType(const std::string& s, DType* out) {
  if (s == "F32") *out = DType::kF32;
  else if (s == "I32") *out = DType::kI32;
  else if (s == "I8") *out = DType::kI8;
  else if (s == "U8") *out = DType::kU8;
  else return false;
  return true;
}

bool IsKnownSafetensorsDType(const std::string& s) {
  static const char* kAll[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                               "BF16", "I32", "U32", "F32", "F64", "I64", "U64"};
  for (const char* k : kAll)
    if (s == k) return true;
  return false;
}

Status ParseTensorEntry(const std::string& name, const json& entry, uint64_t data_size,
                        RawTensor* t) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) return Corruption(where + ": header entry is not a JSON object");
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
      return Corruption(where + ": unknown field '" + it.key() + "'");
  }
  auto dt = entry.find("dtype");
  if (dt == entry.end() || !dt->is_string()) return Corruption(where + ": field 'dtype' missing or not a string");
  const std::string dts = dt->get<std::string>();
  if (!ParseDType(dts, &t->dtype)) {
    if (IsKnownSafetensorsDType(dts))
      return Unsupported(where + ": dtype '" + dts + "' is not used by BILLNET files");
    return Corruption(where + ": field 'dtype' has unknown value '" + dts + "'");
  }
  auto sh = entry.find("shape");
  if (sh == entry.end() || !sh->is_array()) return Corruption(where + ": field 'shape' missing or not an array");
  if (sh->size() > kMaxTensorRank) return Corruption(where + ": field 'shape' has rank " + std::to_string(sh->size()) + " > 8");
  uint64_t count = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned())
      return Corruption(where + ": field 'shape' holds a value that is not a non-negative integer");
    const uint64_t v = d.get<uint64_t>();
    if (v > (uint64_t{1} << 40) || (v != 0 && count > (uint64_t{1} << 40) / v))
      return Corruption(where + ": field 'shape' is too large");
    count *= v;
    t->shape.push_back(static_cast<int64_t>(v));
  }
  auto off = entry.find("data_offsets");
  if (off == entry.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    return Corruption(where + ": field 'data_offsets' must be [begin, end] of non-negative integers");
  t->begin = (*off)[0].get<uint64_t>();
  t->end = (*off)[1].get<uint64_t>();
  if (t->begin > t->end)
    return Corruption(where + ": field 'data_offsets' has begin " + std::to_string(t->begin) +
                      " > end " + std::to_string(t->end));
  if (t->end > data_size)
    return Corruption(where + ": field 'data_offsets' end " + std::to_string(t->end) +
                      " is past the data section (" + std::to_string(data_size) + " bytes)");
  const uint64_t want = count * static_cast<uint64_t>(DTypeSize(t->dtype));
  if (t->end - t->begin != want)
    return Corruption(where + ": field 'data_offsets' spans " + std::to_string(t->end - t->begin) +
                      " bytes but dtype and shape need " + std::to_string(want));
  return Status::Ok();
}

}  // namespace

StatusOr<SafetensorsView> ParseSafetensors(const uint8_t* bytes, size_t size,
                                           const std::string& what) {
  const std::string ctx = "model '" + what + "'";
  if (size < 8)
    return Corruption(ctx + ": file is " + std::to_string(size) +
                      " bytes, too short for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n < 2 || n > kMaxHeaderBytes)
    return Corruption(ctx + ": header length " + std::to_string(n) + " is outside [2, " +
                      std::to_string(kMaxHeaderBytes) + "]");
  if (n > size - 8)
    return Corruption(ctx + ": header length " + std::to_string(n) + " exceeds the " +
                      std::to_string(size - 8) + " bytes after it (truncated file?)");
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  if (text[0] != '{')
    return Corruption(ctx + ": header does not start with '{'");
  // The JSON parser stops at a NUL as at the end of input; without this check
  // anything after one would be silently ignored.
  if (std::memchr(text, '\0', n) != nullptr)
    return Corruption(ctx + ": header contains a NUL byte (padding must be spaces)");
  json header = json::parse(text, text + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return Corruption(ctx + ": header is not valid JSON");
  if (!header.is_object()) return Corruption(ctx + ": header is not a JSON object");

  SafetensorsView view;
  view.data = bytes + 8 + n;
  view.data_size = size - 8 - n;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (!it.value().is_object()) return Corruption(ctx + ": '__metadata__' is not an object");
        for (auto m = it.value().begin(); m != it.value().end(); ++m) {
          if (!m.value().is_string())
            return Corruption(ctx + ": metadata '" + m.key() + "' is not a string");
          view.metadata[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      RawTensor t;
      t.name = it.key();
      if (t.name.empty()) return Corruption(ctx + ": a tensor has an empty name");
      Status s = ParseTensorEntry(t.name, it.value(), view.data_size, &t);
      if (!s.ok()) return s.WithContext(ctx);
      view.tensors.push_back(std::move(t));
    }
  } catch (const std::exception& e) {
    return Corruption(ctx + ": header could not be read: " + e.what());
  }
  std::sort(view.tensors.begin(), view.tensors.end(),
            [](const RawTensor& a, const RawTensor& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t cursor = 0;
  for (const auto& t : view.tensors) {
    if (t.begin < cursor)
      return Corruption(ctx + ": tensor '" + t.name + "' data_offsets [" +
                        std::to_string(t.begin) + ", " + std::to_string(t.end) +
                        ") overlap the previous tensor (which ends at " + std::to_string(cursor) + ")");
    if (t.begin > cursor)
      return Corruption(ctx + ": tensor '" + t.name + "' starts at " + std::to_string(t.begin) +
                        ", leaving a gap after byte " + std::to_string(cursor));
    cursor = t.end;
  }
  if (cursor != view.data_size)
    return Corruption(ctx + ": data section has " + std::to_string(view.data_size) +
                      " bytes but the tensors cover " + std::to_string(cursor) +
                      (cursor < view.data_size ? " (trailing bytes)" : ""));
  return view;
}

std::string SerializeSafetensors(const std::map<std::string, std::string>& metadata,
                                 const std::vector<TensorToWrite>& tensors) {
  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    json e;
    e["dtype"] = DTypeName(t.dtype);
    e["shape"] = t.shape;
    e["data_offsets"] = {offset, offset + t.bytes.size()};
    offset += t.bytes.size();
    header[t.name] = e;
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text += ' ';
  std::string out(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += text;
  out.reserve(out.size() + offset);
  for (const auto& t : tensors) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return out;
}

}  // namespace billnet
