#include "billnet/trainer/jester_reader.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "billnet/media/image.h"
#include "billnet/media/pipeline.h"
#include "billnet/synth/renderer.h"

namespace billnet::trainer {

namespace fs = std::filesystem;

const std::vector<std::string>& JesterLabelNames() { return synth::SynthClassNames(); }

namespace {

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t p = line.find(sep, start);
    out.push_back(Trim(line.substr(start, p == std::string::npos ? std::string::npos : p - start)));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

// Lines of a text file (a UTF-8 BOM and '\r' removed). NotFound if absent.
StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return NotFound("'" + path + "': no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("'" + path + "': cannot open: " + std::strerror(errno));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lines.empty() && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    lines.push_back(line);
  }
  if (in.bad()) return Corruption("'" + path + "': read error");
  return lines;
}

// Ids become path components: letters, digits, '_' and '-' only.
bool SafeId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// The index of `name` in `labels` (exact, then case-insensitive), or a class
// index written as a number when `allow_index`.
std::optional<int> FindLabel(const std::vector<std::string>& labels, const std::string& name,
                             bool allow_index) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == name) return static_cast<int>(i);
  }
  const std::string lower = Lower(name);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (Lower(labels[i]) == lower) return static_cast<int>(i);
  }
  if (allow_index) {
    int v = 0;
    const auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
    if (ec == std::errc() && p == name.data() + name.size() && v >= 0 &&
        v < static_cast<int>(labels.size())) {
      return v;
    }
  }
  return std::nullopt;
}

Status CheckGeometry(const ClipGeometry& g) {
  if (g.width < 1 || g.height < 1 || g.width > 4096 || g.height > 4096 || !(g.fps > 0) ||
      g.fps > 240) {
    return InvalidArgument("clip geometry " + std::to_string(g.width) + "x" +
                           std::to_string(g.height) + " at " + std::to_string(g.fps) +
                           " fps is out of range");
  }
  return Status::Ok();
}

Clip ToClip(media::ModelFrames&& m, const std::string& id, int label) {
  Clip c;
  c.id = id;
  c.label = label;
  c.frames = m.frames;
  c.height = m.height;
  c.width = m.width;
  c.rgb = std::move(m.rgb);
  return c;
}

bool IsJpegName(const fs::path& p) {
  const std::string ext = Lower(p.extension().string());
  return ext == ".jpg" || ext == ".jpeg";
}

// A row to load: where it came from, what it names.
struct Row {
  int line = 0;
  std::string id;      // Jester id, or the file as written in a video list
  std::string name;    // "id 123" / "file a.mp4", for messages
  std::string target;  // frame folder / video path
  int label = kUnlabelled;
};

// Loads rows[i] for every i with the loader, `threads` at a time, stopping
// once max_clips clips are loaded (0: no limit). Returns clips in row order;
// warnings (or the first error when strict) name the row.
template <typename Loader>
Status LoadRows(const std::vector<Row>& rows, const JesterOptions& options,
                std::vector<std::string> pending_warnings, const Loader& load, JesterSplit* out) {
  out->warnings.insert(out->warnings.end(), pending_warnings.begin(), pending_warnings.end());
  const int threads = std::clamp(options.threads, 1, 64);
  const size_t batch =
      options.max_clips > 0 ? std::max<size_t>(16, static_cast<size_t>(threads) * 4) : rows.size();
  for (size_t begin = 0; begin < rows.size(); begin += batch) {
    const size_t end = std::min(rows.size(), begin + batch);
    std::vector<std::optional<StatusOr<Clip>>> results(end - begin);
    std::atomic<size_t> next{begin};
    auto worker = [&] {
      for (size_t i; (i = next.fetch_add(1)) < end;) results[i - begin] = load(rows[i]);
    };
    const int n = static_cast<int>(std::min<size_t>(threads, end - begin));
    std::vector<std::thread> pool;
    for (int t = 1; t < n; ++t) pool.emplace_back(worker);
    worker();
    for (std::thread& t : pool) t.join();
    for (size_t i = begin; i < end; ++i) {
      StatusOr<Clip>& r = *results[i - begin];
      if (r.ok()) {
        out->clips.push_back(std::move(r).value());
        if (options.max_clips > 0 && static_cast<int>(out->clips.size()) >= options.max_clips) {
          return Status::Ok();
        }
        continue;
      }
      const std::string message =
          rows[i].name + " (line " + std::to_string(rows[i].line) + "): " + r.status().ToString();
      if (options.strict) return Status(r.status().code(), message);
      out->warnings.push_back(message);
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Clip> LoadJesterFolder(const std::string& folder, const std::string& id, int label,
                                ClipGeometry geometry, double source_fps) {
  BILLNET_RETURN_IF_ERROR(CheckGeometry(geometry));
  if (!(source_fps > 0 && source_fps <= 1000)) {
    return InvalidArgument("source fps " + std::to_string(source_fps) + " is out of range");
  }
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return NotFound("no frame folder '" + folder + "'");
  std::vector<fs::path> files;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (IsJpegName(it->path()) && it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec) return Corruption("'" + folder + "': cannot list: " + ec.message());
  if (files.empty()) return NotFound("no JPEG frames in '" + folder + "'");
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });

  media::ModelFrames m;
  m.height = geometry.height;
  m.width = geometry.width;
  m.fps = geometry.fps;
  media::ModelFrameStream stream(media::ModelTarget{geometry.height, geometry.width, geometry.fps});
  const auto emit = [&m](const media::ModelFrame& f) -> Status {
    m.rgb.insert(m.rgb.end(), f.rgb, f.rgb + m.frame_bytes());
    ++m.frames;
    return Status::Ok();
  };
  for (size_t i = 0; i < files.size(); ++i) {
    StatusOr<media::DecodedFrame> frame = media::ReadImageFile(files[i].string());
    if (!frame.ok()) {
      return frame.status().WithContext("frame " + files[i].filename().string());
    }
    frame->set_timestamp(static_cast<double>(i) / source_fps);
    Status s = stream.Push(std::move(frame).value(), emit);
    if (!s.ok()) return s.WithContext("frame " + files[i].filename().string());
  }
  BILLNET_RETURN_IF_ERROR(stream.Flush(emit));
  return ToClip(std::move(m), id, label);
}

StatusOr<Clip> LoadVideoClip(const std::string& path, int label, ClipGeometry geometry) {
  BILLNET_RETURN_IF_ERROR(CheckGeometry(geometry));
  BILLNET_ASSIGN_OR_RETURN(
      media::ModelFrames m,
      media::DecodeFileToModelFrames(
          path, media::ModelTarget{geometry.height, geometry.width, geometry.fps}));
  if (m.frames == 0) return Corruption("'" + path + "': no video frames");
  return ToClip(std::move(m), fs::path(path).filename().string(), label);
}

StatusOr<JesterSplit> LoadJesterSplit(const std::string& dir, const std::string& split,
                                      ClipGeometry geometry, const JesterOptions& options) {
  BILLNET_RETURN_IF_ERROR(CheckGeometry(geometry));
  JesterSplit out;
  if (!options.labels.empty()) {
    out.labels = options.labels;
  } else {
    const std::string labels_path = (fs::path(dir) / "jester-v1-labels.csv").string();
    StatusOr<std::vector<std::string>> lines = ReadLines(labels_path);
    if (lines.ok()) {
      for (const std::string& l : *lines) {
        if (!Trim(l).empty()) out.labels.push_back(Trim(l));
      }
      if (out.labels.empty()) return Corruption("'" + labels_path + "': no labels");
    } else if (lines.status().code() == StatusCode::kNotFound) {
      out.labels = JesterLabelNames();
    } else {
      return lines.status();
    }
  }

  const std::string csv = (fs::path(dir) / ("jester-v1-" + split + ".csv")).string();
  BILLNET_ASSIGN_OR_RETURN(const std::vector<std::string> lines, ReadLines(csv));
  std::vector<Row> rows;
  std::vector<std::string> row_warnings;
  const auto bad = [&](int line, const std::string& what) -> Status {
    const std::string message = "'" + csv + "' line " + std::to_string(line) + ": " + what;
    if (options.strict) return Corruption(message);
    row_warnings.push_back(message);
    return Status::Ok();
  };
  for (size_t n = 0; n < lines.size(); ++n) {
    const int line = static_cast<int>(n) + 1;
    if (Trim(lines[n]).empty()) continue;
    const std::vector<std::string> fields = Split(lines[n], ';');
    if (fields.size() > 2 || !SafeId(fields[0])) {
      BILLNET_RETURN_IF_ERROR(bad(line, "malformed row '" + lines[n] + "' (expected id;label)"));
      continue;
    }
    Row row;
    row.line = line;
    row.id = fields[0];
    if (fields.size() == 2 && !fields[1].empty()) {
      const std::optional<int> label = FindLabel(out.labels, fields[1], false);
      if (!label) {
        BILLNET_RETURN_IF_ERROR(bad(line, "id " + row.id + ": unknown label '" + fields[1] + "'"));
        continue;
      }
      row.label = *label;
    } else if (options.require_labels) {
      BILLNET_RETURN_IF_ERROR(bad(line, "id " + row.id + ": no label"));
      continue;
    }
    row.name = "id " + row.id;
    const fs::path nested = fs::path(dir) / "20bn-jester-v1" / row.id;
    std::error_code ec;
    row.target = fs::is_directory(nested, ec) ? nested.string() : (fs::path(dir) / row.id).string();
    rows.push_back(std::move(row));
  }
  // Duplicate ids: the first row wins.
  {
    std::vector<Row> unique;
    std::vector<std::string> ids;
    for (Row& r : rows) {
      if (std::find(ids.begin(), ids.end(), r.id) != ids.end()) {
        BILLNET_RETURN_IF_ERROR(bad(r.line, "id " + r.id + ": duplicate id"));
        continue;
      }
      ids.push_back(r.id);
      unique.push_back(std::move(r));
    }
    rows = std::move(unique);
  }
  const double fps = options.source_fps;
  BILLNET_RETURN_IF_ERROR(LoadRows(
      rows, options, std::move(row_warnings),
      [&](const Row& r) { return LoadJesterFolder(r.target, r.id, r.label, geometry, fps); },
      &out));
  return out;
}

StatusOr<JesterSplit> LoadVideoList(const std::string& index_csv, ClipGeometry geometry,
                                    const JesterOptions& options) {
  BILLNET_RETURN_IF_ERROR(CheckGeometry(geometry));
  JesterSplit out;
  out.labels = options.labels.empty() ? JesterLabelNames() : options.labels;
  BILLNET_ASSIGN_OR_RETURN(const std::vector<std::string> lines, ReadLines(index_csv));
  const fs::path base = fs::path(index_csv).parent_path();
  std::vector<Row> rows;
  std::vector<std::string> row_warnings;
  const auto bad = [&](int line, const std::string& what) -> Status {
    const std::string message = "'" + index_csv + "' line " + std::to_string(line) + ": " + what;
    if (options.strict) return Corruption(message);
    row_warnings.push_back(message);
    return Status::Ok();
  };
  for (size_t n = 0; n < lines.size(); ++n) {
    const int line = static_cast<int>(n) + 1;
    if (Trim(lines[n]).empty()) continue;
    const std::vector<std::string> fields = Split(lines[n], ';');
    if (fields[0].empty()) {
      BILLNET_RETURN_IF_ERROR(bad(line, "malformed row '" + lines[n] + "' (expected file;label)"));
      continue;
    }
    if (n == 0 && Lower(fields[0]) == "file") continue;  // a header line
    Row row;
    row.line = line;
    row.id = fields[0];
    row.name = "file " + fields[0];
    const fs::path p(fields[0]);
    row.target = p.is_absolute() ? p.string() : (base / p).string();
    if (fields.size() >= 2 && !fields[1].empty()) {
      const std::optional<int> label = FindLabel(out.labels, fields[1], true);
      if (!label) {
        BILLNET_RETURN_IF_ERROR(bad(line, fields[0] + ": unknown label '" + fields[1] + "'"));
        continue;
      }
      row.label = *label;
    } else if (options.require_labels) {
      BILLNET_RETURN_IF_ERROR(bad(line, fields[0] + ": no label"));
      continue;
    }
    rows.push_back(std::move(row));
  }
  BILLNET_RETURN_IF_ERROR(LoadRows(
      rows, options, std::move(row_warnings),
      [&](const Row& r) -> StatusOr<Clip> {
        StatusOr<Clip> c = LoadVideoClip(r.target, r.label, geometry);
        if (c.ok()) c->id = r.id;
        return c;
      },
      &out));
  return out;
}

}  // namespace billnet::trainer
