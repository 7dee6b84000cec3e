// Writing the Jester V1 layout (see jester_reader.h): used by billnet-synth
// and by tests that build small datasets. JPEG frames are 4:2:0 baseline
// JPEGs (BT.601 full range, as Jester's). Reentrant; clips may be written
// from several threads (each into its own folder).
#ifndef BILLNET_TRAINER_JESTER_WRITER_H_
#define BILLNET_TRAINER_JESTER_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/status.h"

namespace billnet::trainer {

// DIR/20bn-jester-v1/<id>, DIR/jester-v1-<split>.csv, DIR/jester-v1-labels.csv.
std::string JesterFrameFolder(const std::string& dir, const std::string& id);
std::string JesterSplitCsv(const std::string& dir, const std::string& split);
std::string JesterLabelsCsv(const std::string& dir);

// Writes `frames` RGB24 images (frame-major, width x height x 3 each) as
// folder/00001.jpg, 00002.jpg, ... (creating the folder). qscale 2 (best)..31.
Status WriteJesterFrames(const std::string& folder, const uint8_t* rgb, int frames, int width,
                         int height, int jpeg_qscale = 2);

struct JesterRow {
  std::string id;
  std::string label;  // empty: the row is the id alone (a test split)
};
// `id;label` lines (or `id`), '\n' line ends, written atomically (temp + rename).
Status WriteJesterCsv(const std::string& path, const std::vector<JesterRow>& rows);
// One name per line.
Status WriteLinesAtomically(const std::string& path, const std::vector<std::string>& lines);

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_JESTER_WRITER_H_
