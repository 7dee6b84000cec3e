// Helpers for the media tests: synthetic RGB clips whose frames can be told
// apart after lossy coding, encoding to memory or files, PSNR.
#ifndef BILLNET_TESTS_MEDIA_TEST_UTIL_H_
#define BILLNET_TESTS_MEDIA_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/media/encoder.h"
#include "billnet/status.h"

namespace billnet::media::testing {

// frames x height x width x 3: smooth gradients that move with the frame
// index, plus a flat block at the centre (width/8 x height/8) whose grey
// level is FrameTag(i), so the source frame of any output frame can be read
// back, after any centre crop and scaling.
std::vector<uint8_t> MakeClip(int frames, int width, int height);
inline int FrameTag(int i) { return 16 + 5 * (i % 44); }  // distinct for 44 frames
// The frame index whose tag is nearest to the mean grey level of the central
// width/16 x height/16 pixels of a frame of `width` x `height`.
int ReadTag(const uint8_t* rgb, int width, int height, int max_frames);

// Encodes `frames` images of `rgb` with `options` (width/height/fps taken
// from it) into memory (a seekable sink unless `seekable` is false).
StatusOr<std::vector<uint8_t>> EncodeToMemory(const std::vector<uint8_t>& rgb, int frames,
                                              const EncoderOptions& options, bool seekable = true,
                                              const std::vector<double>& timestamps = {});
Status EncodeToFile(const std::string& path, const std::vector<uint8_t>& rgb, int frames,
                    const EncoderOptions& options);

double Psnr(const uint8_t* a, const uint8_t* b, size_t n);

// A fresh empty directory under the test temp dir.
std::string TempDir(const std::string& name);

}  // namespace billnet::media::testing

#endif  // BILLNET_TESTS_MEDIA_TEST_UTIL_H_
