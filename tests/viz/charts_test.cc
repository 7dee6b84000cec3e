// Charts: nice ticks, the colour map, line charts (size, where a series lands,
// stacked panels, gaps, separators), heat maps (cell colours, labels, sizes,
// marks), timelines, robustness, and the example images (Fig. 4 / Fig. 6
// analogues) written and read back.
//
// Set BILLNET_VIZ_EXAMPLES_DIR to also keep the example PNGs there.
#include "billnet/viz/charts.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "billnet/viz/png.h"

namespace billnet::viz {
namespace {

const std::vector<std::string> kJester = {"Swiping Left",
                                          "Swiping Right",
                                          "Swiping Down",
                                          "Swiping Up",
                                          "Pushing Hand Away",
                                          "Pulling Hand In",
                                          "Sliding Two Fingers Left",
                                          "Sliding Two Fingers Right",
                                          "Sliding Two Fingers Down",
                                          "Sliding Two Fingers Up",
                                          "Pushing Two Fingers Away",
                                          "Pulling Two Fingers In",
                                          "Rolling Hand Forward",
                                          "Rolling Hand Backward",
                                          "Turning Hand Clockwise",
                                          "Turning Hand Counterclockwise",
                                          "Zooming In With Full Hand",
                                          "Zooming Out With Full Hand",
                                          "Zooming In With Two Fingers",
                                          "Zooming Out With Two Fingers",
                                          "Thumb Up",
                                          "Thumb Down",
                                          "Shaking Hand",
                                          "Stop Sign",
                                          "Drumming Fingers",
                                          "No gesture",
                                          "Doing other things"};

int CountColor(const Canvas& c, const Rect& r, Rgb color) {
  int n = 0;
  for (int y = r.y; y < r.y + r.h; ++y)
    for (int x = r.x; x < r.x + r.w; ++x) n += c.At(x, y) == color;
  return n;
}

int CountNot(const Canvas& c, const Rect& r, Rgb color) {
  int n = 0;
  for (int y = r.y; y < r.y + r.h; ++y)
    for (int x = r.x; x < r.x + r.w; ++x) n += c.At(x, y) != color;
  return n;
}

// ---------------------------------------------------------------- ticks, colours

TEST(VizTicks, NiceSteps) {
  Ticks t = NiceTicks(0, 1, 5);
  EXPECT_DOUBLE_EQ(t.step, 0.2);
  ASSERT_EQ(t.values.size(), 6u);
  EXPECT_EQ(t.labels.front(), "0.0");
  EXPECT_EQ(t.labels[3], "0.6");
  EXPECT_EQ(t.labels.back(), "1.0");

  t = NiceTicks(0.3, 97, 5);
  EXPECT_DOUBLE_EQ(t.step, 20);
  EXPECT_DOUBLE_EQ(t.lo, 0);
  EXPECT_DOUBLE_EQ(t.hi, 100);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "20", "40", "60", "80", "100"}));

  t = NiceTicks(0.3, 97, 5, /*extend=*/false);
  EXPECT_DOUBLE_EQ(t.lo, 0.3);
  EXPECT_DOUBLE_EQ(t.values.front(), 20);
  EXPECT_DOUBLE_EQ(t.values.back(), 80);

  t = NiceTicks(-0.37, 0.12, 4);
  EXPECT_DOUBLE_EQ(t.step, 0.2);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"-0.4", "-0.2", "0.0", "0.2"}));

  for (double lo : {0.0, 5.0, -3.0}) {  // degenerate ranges widen
    t = NiceTicks(lo, lo, 5);
    EXPECT_LT(t.lo, lo);
    EXPECT_GT(t.hi, lo);
  }
  t = NiceTicks(std::nan(""), 1e300 * 10, 5);
  EXPECT_GE(t.values.size(), 2u);
  EXPECT_EQ(FormatTick(-1e-17, 0.5), "0.0");
  EXPECT_EQ(FormatTick(2500000, 500000), "2.5e+06");
}

double Luma(Rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

double RelativeLuminance(Rgb c) {
  auto lin = [](double v) {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}

TEST(VizColorMap, LuminanceIncreasesMonotonically) {
  // Fine steps: never darker beyond the rounding of one 8-bit channel step.
  double prev_luma = -1, prev_lum = -1;
  for (int i = 0; i <= 1000; ++i) {
    const Rgb c = ColorMap(i / 1000.0);
    EXPECT_GE(Luma(c), prev_luma - 0.5) << i;
    EXPECT_GE(RelativeLuminance(c), prev_lum - 0.5 / 255) << i;
    prev_luma = std::max(prev_luma, Luma(c));
    prev_lum = std::max(prev_lum, RelativeLuminance(c));
  }
  // Steps of 1/32 (a legible difference): strictly brighter, both by luma and
  // by linear-light relative luminance.
  for (int i = 1; i <= 32; ++i) {
    const Rgb a = ColorMap((i - 1) / 32.0), b = ColorMap(i / 32.0);
    EXPECT_GT(Luma(b), Luma(a) + 2) << i;
    EXPECT_GT(RelativeLuminance(b), RelativeLuminance(a)) << i;
  }
  EXPECT_GT(Luma(ColorMap(1)) - Luma(ColorMap(0)), 150);
  EXPECT_EQ(ColorMap(-3), ColorMap(0));
  EXPECT_EQ(ColorMap(7), ColorMap(1));
  EXPECT_EQ(ColorMap(std::nan("")), ColorMap(0));
  EXPECT_NE(PaletteColor(0), PaletteColor(1));
  EXPECT_EQ(PaletteColor(10), PaletteColor(0));
  EXPECT_EQ(PaletteColor(-1), PaletteColor(9));
}

// ---------------------------------------------------------------- line chart

TEST(VizLineChart, HasTheRequestedSize) {
  for (auto [w, h] : {std::pair{800, 500}, std::pair{333, 211}, std::pair{1600, 1000}}) {
    LineChartSpec spec;
    spec.width = w;
    spec.height = h;
    spec.title = "Training";
    spec.panels.resize(2);
    const Canvas c = LineChart(spec);
    EXPECT_EQ(c.width(), w);
    EXPECT_EQ(c.height(), h);
  }
  LineChartSpec tiny;
  tiny.width = 10;
  tiny.height = 5000000;
  const Canvas c = LineChart(tiny);
  EXPECT_EQ(c.width(), 160);
  EXPECT_EQ(c.height(), 8192);
}

TEST(VizLineChart, RisingSeriesRunsFromLowerLeftToUpperRight) {
  constexpr Rgb kSeries{200, 30, 30};
  LineChartSpec spec;
  spec.width = 600;
  spec.height = 400;
  spec.title = "rising";
  spec.x_title = "epoch";
  Panel p;
  p.y_title = "value";
  Series s;  // unnamed: no legend
  for (int i = 0; i <= 50; ++i) {
    s.x.push_back(i);
    s.y.push_back(3 + 0.5 * i);
  }
  s.color = kSeries;
  p.series.push_back(s);
  spec.panels.push_back(p);
  LineChartLayout layout;
  const Canvas c = LineChart(spec, &layout);
  ASSERT_EQ(layout.panels.size(), 1u);
  const Rect r = layout.panels[0].rect;
  // Corner thirds of the plot (the line crosses the centre, so halves would touch).
  const int tw = r.w / 3, th = r.h / 3;
  const Rect lower_left{r.x, r.y + r.h - th, tw, th}, upper_right{r.x + r.w - tw, r.y, tw, th};
  const Rect upper_left{r.x, r.y, tw, th}, lower_right{r.x + r.w - tw, r.y + r.h - th, tw, th};
  EXPECT_GT(CountColor(c, lower_left, kSeries), 50);
  EXPECT_GT(CountColor(c, upper_right, kSeries), 50);
  EXPECT_EQ(CountColor(c, upper_left, kSeries), 0);
  EXPECT_EQ(CountColor(c, lower_right, kSeries), 0);
  // The data maps to where the layout says.
  const PlotArea& a = layout.panels[0];
  const int px = static_cast<int>(a.PixelX(20)), py = static_cast<int>(a.PixelY(13));
  EXPECT_GT(CountColor(c, {px - 1, py - 1, 3, 3}, kSeries), 0);
  EXPECT_LE(a.y_min, 3);
  EXPECT_GE(a.y_max, 28);
  EXPECT_DOUBLE_EQ(a.x_min, 0);
  EXPECT_DOUBLE_EQ(a.x_max, 50);
  // Axis labels and title put ink outside the plot: left margin and top.
  EXPECT_GT(CountNot(c, {0, r.y, r.x - 2, r.h}, kWhite), 50);
  EXPECT_GT(CountNot(c, {0, 0, c.width(), r.y - 2}, kWhite), 50);
}

TEST(VizLineChart, StackedPanelsShareTheXAxis) {
  LineChartSpec spec;
  Panel loss, acc;
  loss.y_title = "loss";
  acc.y_title = "accuracy";
  acc.y_min = 0;
  acc.y_max = 1;
  Series a{"train", {0, 1, 2, 3}, {2, 1, 0.6, 0.4}, Rgb{10, 20, 200}};
  Series b{"test", {0, 1, 2, 3}, {0.2, 0.5, 0.7, 0.8}, Rgb{10, 160, 20}};
  loss.series.push_back(a);
  acc.series.push_back(b);
  acc.height_weight = 0.5;
  spec.panels = {loss, acc};
  LineChartLayout layout;
  const Canvas c = LineChart(spec, &layout);
  ASSERT_EQ(layout.panels.size(), 2u);
  const Rect r0 = layout.panels[0].rect, r1 = layout.panels[1].rect;
  EXPECT_LT(r0.y + r0.h, r1.y);
  EXPECT_EQ(r0.x, r1.x);
  EXPECT_EQ(r0.w, r1.w);
  EXPECT_NEAR(r1.h, r0.h / 2.0, 2);
  EXPECT_DOUBLE_EQ(layout.panels[1].y_min, 0);
  EXPECT_DOUBLE_EQ(layout.panels[1].y_max, 1);
  EXPECT_GT(CountColor(c, r0, a.color.value()), 20);
  EXPECT_EQ(CountColor(c, r1, a.color.value()), 0);
  EXPECT_GT(CountColor(c, r1, b.color.value()), 20);
  EXPECT_EQ(CountColor(c, r0, b.color.value()), 0);
}

TEST(VizLineChart, NanBreaksTheLineAndSeparatorsAreDrawn) {
  constexpr Rgb kSeries{0, 0, 230};
  LineChartSpec spec;
  Panel p;
  Series s;
  for (int i = 0; i <= 100; ++i) {
    s.x.push_back(i);
    s.y.push_back(i >= 40 && i <= 60 ? std::nan("") : 5.0);
  }
  s.color = kSeries;
  p.series.push_back(s);
  p.y_min = 0;
  p.y_max = 10;
  spec.panels.push_back(p);
  spec.separators = {{80, "S2"}};
  LineChartLayout layout;
  const Canvas c = LineChart(spec, &layout);
  const PlotArea& a = layout.panels[0];
  const int y = static_cast<int>(a.PixelY(5));
  EXPECT_EQ(c.At(static_cast<int>(a.PixelX(20)), y), kSeries);
  EXPECT_NE(c.At(static_cast<int>(a.PixelX(50)), y), kSeries);
  // The separator: gray dashes down the column of x = 80, its label above.
  const int sx = static_cast<int>(a.PixelX(80));
  int dashes = 0;
  for (int yy = a.rect.y; yy < a.rect.y + a.rect.h; ++yy)
    dashes += c.At(sx, yy) == Rgb{125, 125, 125};
  EXPECT_GT(dashes, a.rect.h / 3);
  EXPECT_GT(CountNot(c, {sx + 1, a.rect.y - 14, 16, 12}, kWhite), 10);
}

TEST(VizLineChart, LegendListsNamedSeries) {
  LineChartSpec spec;
  Panel p;
  p.series.push_back({"train loss", {0, 1}, {1, 0}, Rgb{1, 2, 3}});
  spec.panels.push_back(p);
  LineChartLayout with;
  const Canvas a = LineChart(spec, &with);
  spec.panels[0].legend = false;
  const Canvas b = LineChart(spec);
  EXPECT_NE(a.pixels(), b.pixels());
}

// ---------------------------------------------------------------- heat map

HeatMapSpec Responses27x8() {
  HeatMapSpec spec;
  spec.rows = 27;
  spec.cols = 8;
  spec.row_labels = kJester;
  spec.title = "Class-temporal responses";
  spec.x_title = "step";
  spec.colorbar_title = "response";
  spec.values.assign(27 * 8, 0.5);
  return spec;
}

TEST(VizHeatMap, CellColoursFollowTheColourMap) {
  HeatMapSpec spec = Responses27x8();
  spec.values[3 * 8 + 5] = 1;
  spec.values[10 * 8 + 2] = 0;
  spec.values[20 * 8 + 7] = std::nan("");
  HeatMapLayout layout;
  const Canvas c = HeatMap(spec, &layout);
  auto centre = [&](int r, int col) {
    const Rect cr = layout.CellRect(r, col);
    return c.At(cr.x + cr.w / 2, cr.y + cr.h / 2);
  };
  EXPECT_EQ(centre(3, 5), ColorMap(1));
  EXPECT_EQ(centre(10, 2), ColorMap(0));
  EXPECT_EQ(centre(0, 0), ColorMap(0.5));
  EXPECT_NE(centre(20, 7), ColorMap(0.5));  // missing: gray
  // The whole cell has the colour.
  EXPECT_EQ(CountColor(c, layout.CellRect(3, 5), ColorMap(1)),
            layout.cell_width * layout.cell_height);
  // Row labels occupy the left margin, beside every row.
  const Rect& cells = layout.cells;
  EXPECT_GT(CountNot(c, {0, cells.y, cells.x - 2, cells.h}, kWhite), 27 * 10);
  for (int r = 0; r < 27; ++r) {
    const Rect cr = layout.CellRect(r, 0);
    EXPECT_GT(CountNot(c, {0, cr.y, cells.x - 2, cr.h}, kWhite), 5) << kJester[r];
  }
  // The colour bar runs from the top colour down to the bottom colour.
  const Rect& bar = layout.colorbar;
  EXPECT_EQ(c.At(bar.x + bar.w / 2, bar.y), ColorMap(1));
  EXPECT_EQ(c.At(bar.x + bar.w / 2, bar.y + bar.h - 1), ColorMap(0));
  EXPECT_GT(bar.x, cells.x + cells.w);
}

TEST(VizHeatMap, AutoRangeMapsTheDataExtremes) {
  HeatMapSpec spec;
  spec.rows = 2;
  spec.cols = 3;
  spec.values = {-4, 0, 2, 6, 1, 3};
  spec.auto_range = true;
  HeatMapLayout layout;
  const Canvas c = HeatMap(spec, &layout);
  EXPECT_DOUBLE_EQ(layout.v_min, -4);
  EXPECT_DOUBLE_EQ(layout.v_max, 6);
  const Rect lo = layout.CellRect(0, 0), hi = layout.CellRect(1, 0);
  EXPECT_EQ(c.At(lo.x + 1, lo.y + 1), ColorMap(0));
  EXPECT_EQ(c.At(hi.x + 1, hi.y + 1), ColorMap(1));
}

TEST(VizHeatMap, SizeAdaptsToTheColumnCount) {
  for (int cols : {8, 40, 200, 900}) {
    HeatMapSpec spec = Responses27x8();
    spec.cols = cols;
    spec.values.assign(size_t(27) * cols, 0.25);
    spec.max_width = 1200;
    HeatMapLayout layout;
    const Canvas c = HeatMap(spec, &layout);
    SCOPED_TRACE(cols);
    EXPECT_LE(c.width(), 1200);
    EXPECT_GE(layout.cell_width, 1);
    EXPECT_LE(layout.cell_width, 48);
    EXPECT_EQ(layout.cells.w, layout.cell_width * cols);
    EXPECT_GE(c.height(), layout.cells.y + layout.cells.h + 2 * Canvas::TextHeight());
    EXPECT_LE(c.height(), layout.cells.y + layout.cells.h + 60);
    // Labels never overlap: the labelled columns are far enough apart.
    EXPECT_GE(layout.col_label_every * layout.cell_width,
              Canvas::TextWidth(std::to_string(cols - 1)));
    if (cols >= 200) {
      EXPECT_GT(layout.col_label_every, 1);
    }
  }
  // Past max_width, every column keeps one pixel.
  HeatMapSpec wide = Responses27x8();
  wide.cols = 2000;
  wide.values.assign(size_t(27) * 2000, 0.25);
  HeatMapLayout wide_layout;
  EXPECT_GT(HeatMap(wide, &wide_layout).width(), 2000);
  EXPECT_EQ(wide_layout.cell_width, 1);
  // A given size is honoured exactly.
  HeatMapSpec spec = Responses27x8();
  spec.width = 900;
  spec.height = 600;
  HeatMapLayout layout;
  const Canvas c = HeatMap(spec, &layout);
  EXPECT_EQ(c.width(), 900);
  EXPECT_EQ(c.height(), 600);
  EXPECT_LE(layout.cells.y + layout.cells.h, 600);
  EXPECT_GT(layout.cell_height, 14);
}

TEST(VizHeatMap, MarksTheTopCellOfEachColumn) {
  HeatMapSpec spec = Responses27x8();
  for (int col = 0; col < 8; ++col) spec.values[(col + 2) * 8 + col] = 0.9;
  spec.mark_column_max = true;
  HeatMapLayout layout;
  const Canvas c = HeatMap(spec, &layout);
  for (int col = 0; col < 8; ++col) {
    const Rect cr = layout.CellRect(col + 2, col);
    EXPECT_EQ(c.At(cr.x - 1, cr.y + cr.h / 2), spec.mark_color) << col;
    EXPECT_EQ(c.At(cr.x + cr.w / 2, cr.y + cr.h / 2), ColorMap(0.9)) << col;
  }
  // Explicit marks; -1 and out-of-range rows are ignored.
  spec.mark_column_max = false;
  spec.marked = {0, -1, 99};
  const Canvas d = HeatMap(spec, &layout);
  const Rect m = layout.CellRect(0, 0), n = layout.CellRect(0, 1);
  EXPECT_EQ(d.At(m.x + m.w / 2, m.y - 1), spec.mark_color);
  EXPECT_NE(d.At(n.x + n.w / 2, n.y + n.h), spec.mark_color);
}

TEST(VizHeatMap, DegenerateInputsDoNotCrash) {
  HeatMapSpec spec;
  EXPECT_GT(HeatMap(spec).width(), 0);
  spec.rows = 3;
  spec.cols = 4;  // no values at all: every cell missing
  spec.row_labels = {"only one"};
  spec.v_min = 5;
  spec.v_max = 5;
  HeatMapLayout layout;
  const Canvas c = HeatMap(spec, &layout);
  EXPECT_GT(layout.v_max, layout.v_min);
  const Rect cr = layout.CellRect(2, 3);
  EXPECT_NE(c.At(cr.x + 1, cr.y + 1), ColorMap(0));
}

// ---------------------------------------------------------------- timeline

TEST(VizTimeline, BarsSitInTheirLanes) {
  TimelineSpec spec;
  spec.width = 800;
  spec.title = "Events";
  spec.predicted = {
      {"Swiping Left", 1, 3, 0.9}, {"Thumb Up", 4, 6.5, 0.6}, {"Swiping Left", 7, 9, 1}};
  spec.ground_truth = {{"Swiping Left", 0.8, 3.2}, {"Thumb Up", 4.2, 6.0}};
  TimelineLayout layout;
  const Canvas c = Timeline(spec, &layout);
  EXPECT_EQ(c.width(), 800);
  ASSERT_EQ(layout.lane_names, (std::vector<std::string>{"Swiping Left", "Thumb Up"}));
  const Rect& lane0 = layout.lanes[0];
  const Rect& lane1 = layout.lanes[1];
  const PlotArea& a = layout.area;
  // Prediction (lower half, confidence 1) at t = 8 in lane 0.
  const Rgb full = PaletteColor(0);
  EXPECT_EQ(c.At(static_cast<int>(a.PixelX(8)), lane0.y + lane0.h * 3 / 4), full);
  EXPECT_NE(c.At(static_cast<int>(a.PixelX(8)), lane1.y + lane1.h * 3 / 4), full);
  // Nothing at t = 3.6 (between events) in either lane's prediction row.
  EXPECT_EQ(c.At(static_cast<int>(a.PixelX(3.6)), lane0.y + lane0.h * 3 / 4), kWhite);
  // Lower confidence is paler than full confidence.
  const Rgb pale = c.At(static_cast<int>(a.PixelX(6.3)), lane1.y + lane1.h * 3 / 4);
  EXPECT_GT(Luma(pale), Luma(PaletteColor(1)));
  // Ground truth (upper half) of lane 1 covers t = 5.
  EXPECT_NE(c.At(static_cast<int>(a.PixelX(5)), lane1.y + lane1.h / 4 + 1), kWhite);
}

TEST(VizTimeline, PackedLanesSeparateOverlaps) {
  TimelineSpec spec;
  spec.lanes = LaneMode::kPacked;
  spec.predicted = {{"a", 0, 2}, {"b", 1, 3}, {"c", 2.5, 4}, {"d", 5, 6}};
  TimelineLayout layout;
  Timeline(spec, &layout);
  EXPECT_EQ(layout.lanes.size(), 2u);
  spec.predicted = {{"a", 0, 1}, {"b", 1, 2}, {"c", 2, 3}};
  spec.ground_truth = {{"a", 0, 1.5}, {"b", 1, 2}};
  Timeline(spec, &layout);
  EXPECT_EQ(layout.lane_names,
            (std::vector<std::string>{"ground truth", "ground truth", "predicted"}));
  spec = {};
  EXPECT_GT(Timeline(spec).height(), 0);  // empty
}

// ---------------------------------------------------------------- examples

// Training curves like the paper's Fig. 4: loss and accuracy over five stages.
LineChartSpec Fig4Like() {
  const int epochs[5] = {100, 80, 80, 80, 80};
  const double acc_end[5] = {0.93, 0.935, 0.925, 0.92, 0.885};
  std::mt19937 rng(4);
  std::normal_distribution<double> noise(0, 1);
  Series train{"train loss", {}, {}, {}}, test{"test loss", {}, {}, {}};
  test.dashed = true;
  Series acc{"test accuracy", {}, {}, Rgb{40, 150, 60}};
  LineChartSpec spec;
  spec.width = 1100;
  spec.height = 700;
  spec.title = "BILLNET 2x training (synthetic data)";
  spec.x_title = "epoch";
  int e0 = 0;
  for (int s = 0; s < 5; ++s) {
    spec.separators.push_back({static_cast<double>(e0), "S" + std::to_string(s + 1)});
    for (int e = 0; e < epochs[s]; ++e) {
      const double k = e / static_cast<double>(epochs[s]);
      const double base =
          s == 0 ? 2.8 * std::exp(-6 * k) + 0.18 : 0.45 * std::exp(-8 * k) + 0.2 + 0.02 * s;
      train.x.push_back(e0 + e);
      train.y.push_back(base + 0.01 * noise(rng));
      test.x.push_back(e0 + e);
      test.y.push_back(base * 1.15 + 0.05 + 0.02 * noise(rng));
      acc.x.push_back(e0 + e);
      const double start = s == 0 ? 0.1 : acc_end[s] - 0.15;
      acc.y.push_back(100 *
                      (acc_end[s] - (acc_end[s] - start) * std::exp(-7 * k) + 0.004 * noise(rng)));
    }
    e0 += epochs[s];
  }
  acc.y[250] = std::nan("");  // a missing evaluation breaks the line
  Panel loss_panel{"CCE loss", {train, test}, 0.0, {}, true, 1.0};
  Panel acc_panel{"top-1 accuracy (%)", {acc}, {}, 100.0, true, 0.8};
  spec.panels = {loss_panel, acc_panel};
  return spec;
}

HeatMapSpec Fig6Like() {
  HeatMapSpec spec = Responses27x8();
  spec.title = "Pulling Two Fingers In: class-temporal responses";
  spec.y_title = "class";
  spec.mark_column_max = true;
  std::mt19937 rng(6);
  std::uniform_real_distribution<double> u(0, 0.08);
  for (int r = 0; r < 27; ++r) {
    for (int col = 0; col < 8; ++col) {
      const double bump = std::exp(-0.5 * std::pow((col - 4.5) / 1.6, 2));
      double v = u(rng);
      if (r == 11) v += 0.9 * bump;            // Pulling Two Fingers In
      if (r == 5 || r == 9) v += 0.45 * bump;  // similar classes
      if (r == 25) v += 0.6 * (1 - bump);      // No gesture before and after
      spec.values[r * 8 + col] = std::min(1.0, v);
    }
  }
  for (int col = 0; col < 8; ++col)
    spec.col_labels.push_back(std::string(1, 't').append(std::to_string(col)));
  return spec;
}

TEST(VizExamples, WriteAndReadBack) {
  std::vector<std::filesystem::path> dirs = {std::filesystem::path(testing::TempDir()) /
                                             "viz_examples"};
  if (const char* keep = std::getenv("BILLNET_VIZ_EXAMPLES_DIR"); keep && *keep)
    dirs.push_back(keep);
  TimelineSpec tl;
  tl.title = "Gesture events";
  tl.predicted = {{"Swiping Left", 0.4, 2.1, 0.92},
                  {"Thumb Up", 3.0, 4.4, 0.55},
                  {"Pulling Two Fingers In", 5.2, 7.9, 0.81}};
  tl.ground_truth = {
      {"Swiping Left", 0.3, 2.3}, {"Thumb Up", 3.2, 4.6}, {"Pulling Two Fingers In", 5.0, 8.0}};
  const std::pair<std::string, Canvas> images[] = {
      {"fig4_training_curves.png", LineChart(Fig4Like())},
      {"fig6_heatmap_27x8.png", HeatMap(Fig6Like())},
      {"timeline.png", Timeline(tl)},
  };
  for (const auto& dir : dirs) {
    std::filesystem::create_directories(dir);
    for (const auto& [name, canvas] : images) {
      const std::string path = (dir / name).string();
      ASSERT_EQ(WritePng(path, canvas.data(), canvas.width(), canvas.height()), "");
      const DecodedPng d = ReadPng(path);
      ASSERT_TRUE(d.ok()) << d.error;
      EXPECT_EQ(d.width, canvas.width());
      EXPECT_EQ(d.height, canvas.height());
      EXPECT_EQ(d.pixels, canvas.pixels()) << path;
      // Charts are mostly flat colour: they compress well.
      EXPECT_LT(std::filesystem::file_size(path), canvas.pixels().size() / 8) << path;
    }
  }
  std::filesystem::remove_all(dirs[0]);  // the kept copies (if any) stay
}

}  // namespace
}  // namespace billnet::viz
