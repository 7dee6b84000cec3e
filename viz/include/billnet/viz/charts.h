// Charts drawn onto a Canvas: stacked line charts (training curves, the
// paper's Fig. 4), heat maps (class-temporal responses, Fig. 6) and event
// timelines. Each call is a pure function of its spec and returns a new
// Canvas; write it with EncodePng / WritePng (png.h).
//
// Charts never fail: sizes are clamped to sensible bounds, mismatched x/y
// lengths use the shorter one, non-finite values are gaps (lines break, heat
// map cells turn gray), empty inputs give empty axes over [0, 1]. Text is
// ASCII (other bytes draw as '?'); labels too long for their space are cut
// with "...".
//
// Thread-safety: every function is reentrant. Specs are read, not retained.
#ifndef BILLNET_VIZ_CHARTS_H_
#define BILLNET_VIZ_CHARTS_H_

#include <optional>
#include <string>
#include <vector>

#include "billnet/viz/canvas.h"

namespace billnet::viz {

// ---------------------------------------------------------------- colours

// The sequential colour map of heat maps (viridis-like: dark purple, blue,
// teal, green, yellow), t in [0, 1] (clamped; NaN gives the t = 0 colour).
// Luminance increases monotonically with t, so it reads in gray scale too.
Rgb ColorMap(double t);

// The i-th colour of the categorical palette for series and labels (10
// distinct colours, repeating).
Rgb PaletteColor(int i);

// ---------------------------------------------------------------- axes

// "Nice" tick positions for [min, max]: steps of 1, 2 or 5 x 10^k chosen so
// that at most about `target` steps span the range. With `extend`, lo/hi grow
// to multiples of the step; otherwise lo/hi are min/max and only ticks inside
// are listed. A degenerate or non-finite range is widened first.
struct Ticks {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values{};
  std::vector<std::string> labels{};  // FormatTick of each value
};
Ticks NiceTicks(double min, double max, int target = 6, bool extend = true);

// `value` with as many decimals as `step` needs ("0.25", "40", "1e+06").
std::string FormatTick(double value, double step);

// A plot rectangle and the data range it shows (y up).
struct PlotArea {
  Rect rect{};
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  // Pixel coordinates (continuous; pixel centres at +0.5) of a data point.
  double PixelX(double x) const;
  double PixelY(double y) const;
};

// ---------------------------------------------------------------- line chart

struct Series {
  std::string name{};  // legend entry; empty: not listed
  std::vector<double> x{}, y{};
  std::optional<Rgb> color{};  // default: PaletteColor(index within the panel)
  double line_width = 2;
  bool dashed = false;
  bool markers = false;  // a dot at every point
};

// One plot of a stacked chart; panels share the x axis.
struct Panel {
  std::string y_title{};
  std::vector<Series> series{};
  std::optional<double> y_min{}, y_max{};  // default: the data's range, widened to nice ticks
  bool legend = true;
  double height_weight = 1;  // share of the stacked height
};

// A vertical dashed line across every panel, labelled above the top panel
// (the label starts just right of the line), e.g. {x = 100, "S2"}.
struct Separator {
  double x = 0;
  std::string label{};
};

struct LineChartSpec {
  int width = 960, height = 640;  // clamped to 160..8192 x 120..8192
  std::string title{}, x_title{};
  std::vector<Panel> panels{};             // top to bottom; the x axis labels sit under the last
  std::optional<double> x_min{}, x_max{};  // default: the data's range (not widened)
  std::vector<Separator> separators{};
};

// Where things landed, for callers that draw more on top (and for tests).
struct LineChartLayout {
  std::vector<PlotArea> panels{};
};

Canvas LineChart(const LineChartSpec& spec, LineChartLayout* layout = nullptr);

// ---------------------------------------------------------------- heat map

struct HeatMapSpec {
  int rows = 0, cols = 0;
  std::vector<double> values{};           // rows * cols, row-major; missing or NaN: gray
  std::vector<std::string> row_labels{};  // one per row, or empty (then none)
  std::vector<std::string> col_labels{};  // one per column, or empty (then 0, 1, 2, ...)
  std::string title{}, x_title{}, y_title{}, colorbar_title{};
  // Value range mapped onto the colour map: [0, 1] unless given, or the data's
  // range with auto_range.
  std::optional<double> v_min{}, v_max{};
  bool auto_range = false;
  // Cells to outline: marked[col] is a row (or -1); or mark_column_max to
  // outline each column's largest value (the top class per step).
  std::vector<int> marked{};
  bool mark_column_max = false;
  Rgb mark_color{230, 20, 40};
  // Size: 0 derives it from cell_height (per row) and cell widths of up to
  // max_cell_width, so that the image is at most max_width wide (at least one
  // pixel per column). A given width or height fits the cells into it.
  int width = 0, height = 0;
  int cell_height = 14;
  int max_cell_width = 48;
  int max_width = 1600;
};

struct HeatMapLayout {
  Rect cells{};  // the whole matrix
  int cell_width = 0, cell_height = 0;
  int col_label_every = 1;  // every k-th column is labelled
  int row_label_every = 1;
  Rect colorbar{};
  double v_min = 0, v_max = 1;
  Rect CellRect(int row, int col) const {
    return {cells.x + col * cell_width, cells.y + row * cell_height, cell_width, cell_height};
  }
};

Canvas HeatMap(const HeatMapSpec& spec, HeatMapLayout* layout = nullptr);

// ---------------------------------------------------------------- timeline

struct Interval {
  std::string label{};
  double start = 0, end = 0;  // seconds; end < start is swapped
  double confidence = 1;      // [0, 1]: fades the bar toward white as it drops
};

enum class LaneMode {
  kPerLabel,  // one lane per label, named on the left; ground truth (outlined,
              // upper half) beside the prediction (filled, lower half)
  kPacked,    // intervals packed into as few lanes as possible, labels inside
              // the bars; a "ground truth" group above a "predicted" group
};

struct TimelineSpec {
  int width = 960;  // clamped to 200..8192
  int height = 0;   // 0: from the number of lanes
  std::string title{}, x_title = "time (s)";
  std::vector<Interval> predicted{};
  std::vector<Interval> ground_truth{};  // optional
  LaneMode lanes = LaneMode::kPerLabel;
  // Lane order for kPerLabel (labels not listed follow in order of first
  // appearance); colours follow the same order.
  std::vector<std::string> label_order{};
  std::optional<double> t_min{}, t_max{};  // default: the intervals' extent
};

struct TimelineLayout {
  PlotArea area{};                        // x: seconds; y: lane index (unused)
  std::vector<std::string> lane_names{};  // per lane, top to bottom
  std::vector<Rect> lanes{};
};

Canvas Timeline(const TimelineSpec& spec, TimelineLayout* layout = nullptr);

}  // namespace billnet::viz

#endif  // BILLNET_VIZ_CHARTS_H_
