// The embedded bitmap font of Canvas::DrawText (our own glyph design).
//
// Each glyph is 5 pixels wide and 9 rows tall: rows 0..6 hold capitals and
// digits (row 6 sits on the baseline), lowercase letters use rows 2..6, and
// rows 7..8 hold descenders (g j p q y , ;). The advance is 6 pixels.
#ifndef BILLNET_VIZ_FONT_H_
#define BILLNET_VIZ_FONT_H_

#include <array>
#include <cstdint>
#include <string>

namespace billnet::viz::font {

inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphRows = 9;
inline constexpr int kAdvance = 6;

// Row masks of the glyph for byte `c`, bit 4 = leftmost column. Bytes outside
// printable ASCII 32..126 give the glyph of '?'.
const std::array<uint8_t, kGlyphRows>& Glyph(unsigned char c);

// "" if the source table covers 32..126 exactly once with well-formed rows,
// else what is wrong (checked by a test).
std::string CheckGlyphTable();

}  // namespace billnet::viz::font

#endif  // BILLNET_VIZ_FONT_H_
