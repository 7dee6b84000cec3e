// billnet-synth: writes the synthetic gesture set in the Jester V1 layout,
// and optionally encoded videos and multi-gesture streams (DESIGN.md 2.5).
//
//   billnet-synth --out DIR --clips-per-class N --seed S [--split train]
//                 [--width 176 --height 100 --fps 12] [--difficulty 1] [--threads K]
//                 [--videos] [--video-formats mp4,mkv,ts,webm,nut]
//                 [--streams K] [--stream-gestures 4] [--first-id 1]
//                 [--jpeg-qscale 2] [--overwrite] [--quiet]
//
// Output (docs/media.md):
//   DIR/jester-v1-labels.csv            the 27 names, Jester order
//   DIR/jester-v1-<split>.csv           id;Label Name
//   DIR/20bn-jester-v1/<id>/00001.jpg   JPEG frames
//   DIR/videos/<id>.<ext>, DIR/videos/index.csv   file;label;gesture_start_s;gesture_end_s
//   DIR/streams/<k>.mp4, DIR/streams/segments.csv file;label;start_s;end_s
//
// Seeds: clip i (0-based) of class c gets seed Mix64(S << 32 | c << 27 | i)
// and stream k gets Mix64(S << 32 | 31 << 27 | k), Mix64 being splitmix64's
// finalizer (a bijection). For S < 2^32, c < 32 and i < 2^27 the packed value
// is unique, so different (S, class, index) never share a seed. Ids: clip i of
// class c is id first_id + 27 * i + c (classes interleaved, so any prefix of
// the CSV is balanced). Output is a pure function of the flags (--threads
// changes only the speed).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "billnet/media/encoder.h"
#include "billnet/media/frame.h"
#include "billnet/synth/renderer.h"
#include "billnet/trainer/jester_writer.h"

namespace billnet {
namespace {

namespace fs = std::filesystem;
namespace bs = billnet::synth;

struct Args {
  std::string out;
  int clips_per_class = -1;
  uint64_t seed = 0;
  bool seed_set = false;
  std::string split = "train";
  int width = 176, height = 100;
  double fps = 12;
  double difficulty = 1;
  int threads = 1;
  bool videos = false;
  std::string video_formats = "mp4";
  int streams = 0;
  int stream_gestures = 4;
  int64_t first_id = 1;
  int jpeg_qscale = 2;
  bool overwrite = false;
  bool quiet = false;
};

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t ClipSeed(uint64_t s, int label, int index) {
  return Mix64((s << 32) | (static_cast<uint64_t>(label) << 27) | static_cast<uint64_t>(index));
}
uint64_t StreamSeed(uint64_t s, int k) {
  return Mix64((s << 32) | (uint64_t{31} << 27) | static_cast<uint64_t>(k));
}

struct VideoFormat {
  std::string ext;
  media::VideoCodec codec;
  std::string container;
};

StatusOr<std::vector<VideoFormat>> ParseFormats(const std::string& list) {
  std::vector<VideoFormat> out;
  std::stringstream ss(list);
  std::string f;
  while (std::getline(ss, f, ',')) {
    if (f == "mp4") {
      out.push_back({"mp4", media::VideoCodec::kH264, "mp4"});
    } else if (f == "mkv") {
      out.push_back({"mkv", media::VideoCodec::kH264, "matroska"});
    } else if (f == "ts") {
      out.push_back({"ts", media::VideoCodec::kH264, "mpegts"});
    } else if (f == "webm") {
      out.push_back({"webm", media::VideoCodec::kVp9, "webm"});
    } else if (f == "nut") {
      out.push_back({"nut", media::VideoCodec::kFfv1, "nut"});
    } else {
      return InvalidArgument("--video-formats: unknown format '" + f +
                             "' (expected mp4, mkv, ts, webm, nut)");
    }
    for (size_t i = 0; i + 1 < out.size(); ++i) {
      if (out[i].ext == out.back().ext)
        return InvalidArgument("--video-formats: '" + f + "' twice");
    }
  }
  if (out.empty()) return InvalidArgument("--video-formats: empty list");
  return out;
}

Status EncodeVideo(const std::string& path, const bs::RenderedVideo& v, const VideoFormat& f) {
  media::EncoderOptions o;
  o.codec = f.codec;
  o.container = f.container;
  o.width = v.width;
  o.height = v.height;
  o.fps = v.fps;
  if (f.codec == media::VideoCodec::kH264) o.pixel_format = "yuv420p";
  StatusOr<std::unique_ptr<media::VideoEncoder>> enc = media::VideoEncoder::Open(path, o);
  if (!enc.ok()) return enc.status();
  for (int i = 0; i < v.frames; ++i) BILLNET_RETURN_IF_ERROR((*enc)->AddFrame(v.frame(i)));
  return (*enc)->Finish();
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", s);
  return buf;
}

// Leading integer of a file name, for ordering index rows ("12.mp4" < "100.mp4").
std::pair<int64_t, std::string> SortKey(const std::string& line) {
  int64_t n = 0;
  size_t i = 0;
  while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])) && i < 18) {
    n = n * 10 + (line[i++] - '0');
  }
  return {n, line};
}

// Rewrites `path` (a `file;...` list) with `rows`, keeping existing rows for
// other files; sorted by file.
Status MergeIndex(const std::string& path, const std::vector<std::string>& rows) {
  std::map<std::string, std::vector<std::string>> by_file;  // file -> its rows
  auto file_of = [](const std::string& row) { return row.substr(0, row.find(';')); };
  std::map<std::string, bool> ours;
  for (const std::string& r : rows) ours[file_of(r)] = true;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && !ours.count(file_of(line))) by_file[file_of(line)].push_back(line);
  }
  for (const std::string& r : rows) by_file[file_of(r)].push_back(r);
  std::vector<std::pair<std::pair<int64_t, std::string>, std::vector<std::string>>> sorted;
  for (auto& [file, lines] : by_file) sorted.push_back({SortKey(file), std::move(lines)});
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& [key, lines] : sorted) out.insert(out.end(), lines.begin(), lines.end());
  return trainer::WriteLinesAtomically(path, out);
}

struct Job {
  bool is_stream = false;
  int label = 0, index = 0;  // clip: class and index; stream: k
  int64_t id = 0;
};

struct JobResult {
  Status status;
  std::vector<std::string> index_rows;  // videos/index.csv or streams/segments.csv
};

int Run(const Args& a) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "billnet-synth: %s\n", m.c_str());
    return 1;
  };
  // Validate everything before writing anything.
  if (a.clips_per_class < 0 || a.clips_per_class > (1 << 27) - 1) {
    return fail("--clips-per-class must be in 0.." + std::to_string((1 << 27) - 1));
  }
  if (a.clips_per_class == 0 && a.streams == 0) {
    return fail("nothing to do: --clips-per-class 0 and no --streams");
  }
  if (a.seed > 0xFFFFFFFFull) return fail("--seed must be in 0..4294967295");
  if (a.split.empty() || !std::all_of(a.split.begin(), a.split.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
      })) {
    return fail("--split must be letters, digits, '_' or '-'");
  }
  if (a.threads < 1 || a.threads > 256) return fail("--threads must be in 1..256");
  if (a.streams < 0 || a.streams > (1 << 27) - 1) return fail("--streams must be >= 0");
  if (a.stream_gestures < 1 || a.stream_gestures > 1000) {
    return fail("--stream-gestures must be in 1..1000");
  }
  if (a.first_id < 0 || a.first_id > (int64_t{1} << 50)) return fail("--first-id out of range");
  if (a.jpeg_qscale < 2 || a.jpeg_qscale > 31) return fail("--jpeg-qscale must be in 2..31");
  bs::RenderOptions ro;
  ro.width = a.width;
  ro.height = a.height;
  ro.fps = a.fps;
  ro.difficulty = a.difficulty;
  if (std::string e = bs::CheckRenderOptions(ro); !e.empty()) return fail(e);
  bs::StreamOptions so;
  so.width = a.width;
  so.height = a.height;
  so.fps = a.fps;
  so.gestures = a.stream_gestures;
  so.difficulty = a.difficulty;
  if (std::string e = bs::CheckStreamOptions(so); !e.empty()) return fail(e);
  std::vector<VideoFormat> formats;
  if (a.videos) {
    StatusOr<std::vector<VideoFormat>> f = ParseFormats(a.video_formats);
    if (!f.ok()) return fail(f.status().message());
    formats = std::move(f).value();
  }
  if ((a.videos || a.streams > 0) && (a.width % 2 != 0 || a.height % 2 != 0)) {
    return fail("--videos and --streams need an even --width and --height (4:2:0 video)");
  }

  const std::vector<std::string>& names = bs::SynthClassNames();
  std::vector<Job> jobs;
  for (int i = 0; i < a.clips_per_class; ++i) {
    for (int c = 0; c < bs::kNumClasses; ++c) {
      jobs.push_back({false, c, i, a.first_id + static_cast<int64_t>(i) * bs::kNumClasses + c});
    }
  }
  for (int k = 1; k <= a.streams; ++k) jobs.push_back({true, 0, k, 0});

  const fs::path out(a.out);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return fail("cannot create '" + a.out + "': " + ec.message());
  if (!a.overwrite) {
    for (const Job& j : jobs) {
      const fs::path p = j.is_stream
                             ? out / "streams" / (std::to_string(j.index) + ".mp4")
                             : fs::path(trainer::JesterFrameFolder(a.out, std::to_string(j.id)));
      if (fs::exists(p, ec)) {
        return fail("'" + p.string() +
                    "' already exists (pass --overwrite, or another --first-id)");
      }
    }
  }
  for (const char* sub : {"20bn-jester-v1", "videos", "streams"}) {
    if ((std::string(sub) == "videos" && !a.videos) ||
        (std::string(sub) == "streams" && a.streams == 0))
      continue;
    fs::create_directories(out / sub, ec);
    if (ec) return fail("cannot create '" + (out / sub).string() + "': " + ec.message());
  }

  std::vector<JobResult> results(jobs.size());
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex print_mutex;
  auto worker = [&] {
    for (size_t n; !failed && (n = next.fetch_add(1)) < jobs.size();) {
      const Job& j = jobs[n];
      JobResult& r = results[n];
      if (!j.is_stream) {
        const bs::RenderedClip clip =
            bs::RenderClip(j.label, ClipSeed(a.seed, j.label, j.index), ro);
        const std::string id = std::to_string(j.id);
        r.status =
            trainer::WriteJesterFrames(trainer::JesterFrameFolder(a.out, id), clip.rgb.data(),
                                       clip.frames, clip.width, clip.height, a.jpeg_qscale);
        for (const VideoFormat& f : formats) {
          if (!r.status.ok()) break;
          const std::string file = id + "." + f.ext;
          r.status = EncodeVideo((out / "videos" / file).string(), clip, f);
          r.index_rows.push_back(file + ";" + names[j.label] + ";" +
                                 Seconds(clip.gesture.start / clip.fps) + ";" +
                                 Seconds(clip.gesture.end / clip.fps));
        }
      } else {
        const bs::RenderedStream s = bs::RenderStream(StreamSeed(a.seed, j.index), so);
        const std::string file = std::to_string(j.index) + ".mp4";
        r.status = EncodeVideo((out / "streams" / file).string(), s,
                               VideoFormat{"mp4", media::VideoCodec::kH264, "mp4"});
        for (const bs::GestureSegment& g : s.segments) {
          r.index_rows.push_back(file + ";" + names[g.label] + ";" + Seconds(g.start / s.fps) +
                                 ";" + Seconds(g.end / s.fps));
        }
      }
      if (!r.status.ok()) failed = true;
      const size_t d = ++done;
      if (!a.quiet && (d % 100 == 0 || d == jobs.size())) {
        std::lock_guard<std::mutex> lock(print_mutex);
        std::fprintf(stderr, "billnet-synth: %zu/%zu\n", d, jobs.size());
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < a.threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  for (size_t n = 0; n < jobs.size(); ++n) {
    if (!results[n].status.ok()) return fail(results[n].status.ToString());
  }

  // CSVs last, so a dataset whose CSV exists is complete.
  Status s = trainer::WriteLinesAtomically(trainer::JesterLabelsCsv(a.out), names);
  std::vector<trainer::JesterRow> rows;
  std::vector<std::string> video_rows, stream_rows;
  for (size_t n = 0; n < jobs.size(); ++n) {
    const Job& j = jobs[n];
    if (j.is_stream) {
      stream_rows.insert(stream_rows.end(), results[n].index_rows.begin(),
                         results[n].index_rows.end());
    } else {
      rows.push_back({std::to_string(j.id), names[j.label]});
      video_rows.insert(video_rows.end(), results[n].index_rows.begin(),
                        results[n].index_rows.end());
    }
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& x, const auto& y) { return std::stoll(x.id) < std::stoll(y.id); });
  if (s.ok() && a.clips_per_class > 0) {
    s = trainer::WriteJesterCsv(trainer::JesterSplitCsv(a.out, a.split), rows);
  }
  if (s.ok() && a.videos && a.clips_per_class > 0) {
    s = MergeIndex((out / "videos" / "index.csv").string(), video_rows);
  }
  if (s.ok() && a.streams > 0)
    s = MergeIndex((out / "streams" / "segments.csv").string(), stream_rows);
  if (!s.ok()) return fail(s.ToString());
  if (!a.quiet) {
    std::fprintf(stderr, "billnet-synth: wrote %zu clips (split %s) and %d streams to %s\n",
                 rows.size(), a.split.c_str(), a.streams, a.out.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace billnet

int main(int argc, char** argv) {
  billnet::Args a;
  CLI::App app{
      "billnet-synth: the synthetic gesture set in the Jester V1 layout (JPEG frames, "
      "CSVs), optionally with encoded videos and multi-gesture streams"};
  app.add_option("--out", a.out, "Output directory")->required();
  app.add_option("--clips-per-class", a.clips_per_class, "Clips of each of the 27 classes")
      ->required();
  app.add_option("--seed", a.seed, "Dataset seed S in 0..2^32-1 (clip seeds derive from it)")
      ->required();
  app.add_option("--split", a.split, "Split name: writes jester-v1-<split>.csv")
      ->capture_default_str();
  app.add_option("--width", a.width, "Frame width")->capture_default_str();
  app.add_option("--height", a.height, "Frame height")->capture_default_str();
  app.add_option("--fps", a.fps, "Frame rate")->capture_default_str();
  app.add_option("--difficulty", a.difficulty,
                 "Scene difficulty 0..1 (1: full scenes; lower: plainer, for curricula)")
      ->capture_default_str();
  app.add_option("--threads", a.threads, "Worker threads")->capture_default_str();
  app.add_flag("--videos", a.videos, "Also write videos/<id>.<ext> and videos/index.csv");
  auto* formats = app.add_option("--video-formats", a.video_formats,
                                 "Comma-separated: mp4 (H.264), mkv (H.264), ts (H.264), webm "
                                 "(VP9), nut (FFV1 lossless); implies --videos")
                      ->capture_default_str();
  app.add_option("--streams", a.streams, "Also write K multi-gesture streams/<k>.mp4")
      ->capture_default_str();
  app.add_option("--stream-gestures", a.stream_gestures, "Gestures per stream")
      ->capture_default_str();
  app.add_option("--first-id", a.first_id, "Id of the first clip")->capture_default_str();
  app.add_option("--jpeg-qscale", a.jpeg_qscale, "JPEG quality scale, 2 (best) .. 31")
      ->capture_default_str();
  app.add_flag("--overwrite", a.overwrite, "Replace clips and streams that already exist");
  app.add_flag("--quiet", a.quiet, "No progress output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (formats->count() > 0) a.videos = true;
  billnet::media::SetLogLevel(billnet::media::LogLevel::kError);
  try {
    return billnet::Run(a);
  } catch (const std::exception& e) {  // the renderer's invalid_argument, bad_alloc
    std::fprintf(stderr, "billnet-synth: %s\n", e.what());
    return 1;
  }
}
