// Reading training data through FFmpeg (DESIGN.md section 2.5): the Jester V1
// layout (folders of JPEG frames + `;`-separated CSVs) and plain video files.
// Every frame goes through billnet::media's FrameConverter (4:3 centre crop,
// area scale, the signalled colour matrix) and Resampler (nearest frame to
// each tick of the model's rate, ties to the earlier) - the server's code
// path - into billnet::trainer::Clip at the model's geometry and rate.
//
// The Jester layout (what billnet-synth writes, docs/media.md):
//   DIR/jester-v1-labels.csv     one label name per line, index = position
//   DIR/jester-v1-<split>.csv    `id;Label Name` per line (the test split has
//                                only `id`)
//   DIR/20bn-jester-v1/<id>/     00001.jpg, 00002.jpg, ... (or DIR/<id>/)
// A folder is a video at JesterOptions::source_fps (Jester's 12 fps): frame
// i (in file-name order) is at i / source_fps seconds.
//
// Bad rows - a malformed line, an unknown label, a missing or empty frame
// folder, a JPEG that does not decode, a duplicate id - are skipped with a
// warning naming the id (or line) and the problem; with `strict` the first
// one (in file order) is an error instead. A missing or unreadable split CSV
// is always an error. Nothing here throws or crashes on bad data.
//
// Rows without a label (Jester's test CSV) get label kUnlabelled (-1); training
// code must not use them (set require_labels to make them bad rows).
//
// Thread-safety: the functions are reentrant; `threads` decodes clips in
// parallel with std::thread.
#ifndef BILLNET_TRAINER_JESTER_READER_H_
#define BILLNET_TRAINER_JESTER_READER_H_

#include <string>
#include <vector>

#include "billnet/status.h"
#include "billnet/trainer/clip.h"

namespace billnet::trainer {

inline constexpr int kUnlabelled = -1;

struct JesterOptions {
  double source_fps = 12;  // Jester's frame rate
  // 0: every row; else stop after this many clips loaded (CSV order).
  int max_clips = 0;
  int threads = 1;  // clips decoded in parallel
  bool strict = false;
  bool require_labels = false;  // rows without a label are bad rows
  // Label names; empty: DIR/jester-v1-labels.csv when present, else the 27
  // Jester V1 names (billnet::synth::SynthClassNames()).
  std::vector<std::string> labels;
};

struct JesterSplit {
  std::vector<Clip> clips;            // in CSV order
  std::vector<std::string> warnings;  // one per skipped row
  std::vector<std::string> labels;    // index -> name
};

// Reads `split` ("train", "validation", "test", ...) of the dataset in `dir`.
StatusOr<JesterSplit> LoadJesterSplit(const std::string& dir, const std::string& split,
                                      ClipGeometry geometry, const JesterOptions& options = {});

// One folder of JPEG frames as a clip (`id` and `label` are copied into it).
StatusOr<Clip> LoadJesterFolder(const std::string& folder, const std::string& id, int label,
                                ClipGeometry geometry, double source_fps = 12);

// A video file (any container/codec FFmpeg reads) as a clip; id = file name.
StatusOr<Clip> LoadVideoClip(const std::string& path, int label, ClipGeometry geometry);

// A `file;label[;more fields]` list (e.g. billnet-synth's videos/index.csv).
// Files are relative to the list's folder unless absolute; a label is a name
// (of options.labels, default the 27 Jester names) or a class index. Bad rows
// as for Jester (warning naming the file, or error when strict).
StatusOr<JesterSplit> LoadVideoList(const std::string& index_csv, ClipGeometry geometry,
                                    const JesterOptions& options = {});

// The 27 Jester V1 label names in Jester's order.
const std::vector<std::string>& JesterLabelNames();

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_JESTER_READER_H_
