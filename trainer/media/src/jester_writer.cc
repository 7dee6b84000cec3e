#include "billnet/trainer/jester_writer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "billnet/media/byte_io.h"
#include "billnet/media/image.h"

namespace billnet::trainer {

namespace fs = std::filesystem;

std::string JesterFrameFolder(const std::string& dir, const std::string& id) {
  return (fs::path(dir) / "20bn-jester-v1" / id).string();
}
std::string JesterSplitCsv(const std::string& dir, const std::string& split) {
  return (fs::path(dir) / ("jester-v1-" + split + ".csv")).string();
}
std::string JesterLabelsCsv(const std::string& dir) {
  return (fs::path(dir) / "jester-v1-labels.csv").string();
}

Status WriteJesterFrames(const std::string& folder, const uint8_t* rgb, int frames, int width,
                         int height, int jpeg_qscale) {
  if (frames < 1 || rgb == nullptr) {
    return InvalidArgument("'" + folder + "': no frames to write");
  }
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return InvalidArgument("'" + folder + "': cannot create: " + ec.message());
  const size_t frame_bytes = static_cast<size_t>(width) * height * 3;
  for (int i = 0; i < frames; ++i) {
    StatusOr<std::vector<uint8_t>> jpeg =
        media::EncodeJpeg(rgb + frame_bytes * i, width, height, 0, jpeg_qscale);
    if (!jpeg.ok()) return jpeg.status().WithContext("'" + folder + "'");
    char name[32];
    std::snprintf(name, sizeof(name), "%05d.jpg", i + 1);
    BILLNET_RETURN_IF_ERROR(media::WriteFileBytes((fs::path(folder) / name).string(), *jpeg));
  }
  return Status::Ok();
}

Status WriteLinesAtomically(const std::string& path, const std::vector<std::string>& lines) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return InvalidArgument("'" + tmp + "': cannot open for writing");
    for (const std::string& l : lines) out << l << '\n';
    out.flush();
    if (!out) return ResourceExhausted("'" + tmp + "': write failed");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return InvalidArgument("'" + path + "': rename failed: " + ec.message());
  return Status::Ok();
}

Status WriteJesterCsv(const std::string& path, const std::vector<JesterRow>& rows) {
  std::vector<std::string> lines;
  lines.reserve(rows.size());
  for (const JesterRow& r : rows) lines.push_back(r.label.empty() ? r.id : r.id + ";" + r.label);
  return WriteLinesAtomically(path, lines);
}

}  // namespace billnet::trainer
