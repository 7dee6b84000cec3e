// Packet-level remuxing for replaying a clip as a live stream (billnet-load):
// the best video stream of an input, copied without re-encoding into a
// streamable container in memory, looped with continuous timestamps, and the
// output's packet table (where each packet's bytes end, its timestamps), so a
// sender can pace the bytes in real time as a live encoder would emit them.
//
// Looping: pass k adds k x the input's span (first presentation timestamp to
// the last one plus one frame) to every timestamp, so the output plays the
// input over and over without a gap or a jump backwards. Each pass starts
// with the input's first packet, a key frame in any clip an encoder wrote.
//
// Errors: Status naming the input and the step, with av_strerror text.
// Thread-safety: a free function; the result is plain data (share it
// read-only between threads).
#ifndef BILLNET_MEDIA_REMUX_H_
#define BILLNET_MEDIA_REMUX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "billnet/status.h"

namespace billnet::media {

struct LoopOptions {
  // Output muxer: a streamable one whose demuxer reports packet positions
  // ("matroska", what billnet-client sends; "mpegts", "nut").
  std::string container = "matroska";
  // Whole passes of the input are written until the output lasts at least
  // this long (seconds).
  double min_duration_s = 10;
};

// One packet of the output, in file (decode) order.
struct LoopedPacket {
  // Bytes [end of the previous packet, end) of the output hold this packet
  // and the container data around it (the first also the header): sending up
  // to `end` delivers it.
  size_t end = 0;
  // When a live encoder would have emitted it, seconds after the first
  // packet: once every frame up to it in decode order was captured, i.e. the
  // latest presentation timestamp so far (with B-frames a reference frame
  // goes out at its own time, the B-frames it enables right after).
  double send_s = 0;
  // Presentation timestamp in seconds as a demuxer of the output reports it
  // (the source timestamp a decoder of the output gives the frame; MPEG-TS
  // shifts every timestamp by its mux delay).
  double pts_s = 0;
  bool key = false;
};

struct LoopedVideo {
  std::vector<uint8_t> bytes;
  std::vector<LoopedPacket> packets;
  std::string container;  // the muxer's name, a decoder's format hint
  std::string codec;      // e.g. "h264"
  int width = 0, height = 0;
  double fps = 0;             // the input's average frame rate (0: unknown)
  double pass_s = 0;          // one pass of the input, seconds
  int passes = 0;             // passes written
  int64_t input_packets = 0;  // packets in one pass
};

// Remuxes the best video stream of `url` (a file path or anything
// avformat_open_input opens). InvalidArgument for an input without video or
// without packet timestamps, NotFound for a missing file.
StatusOr<LoopedVideo> RemuxLooped(const std::string& url, const LoopOptions& options = {});

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_REMUX_H_
