#include "billnet/viz/charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace billnet::viz {
namespace {

constexpr Rgb kTextColor{30, 30, 30};
constexpr Rgb kMutedText{95, 95, 95};
constexpr Rgb kFrameColor{70, 70, 70};
constexpr Rgb kGridColor{232, 232, 232};
constexpr Rgb kSeparatorColor{125, 125, 125};
constexpr Rgb kMissingColor{190, 190, 190};
constexpr double kInf = std::numeric_limits<double>::infinity();

const int kTh = Canvas::TextHeight(1);  // text height at scale 1

// Control points of ColorMap, evenly spaced in t (our own, viridis-like).
constexpr Rgb kColorMapPoints[] = {
    {48, 8, 80}, {62, 60, 135}, {46, 112, 142}, {33, 156, 136}, {88, 198, 102}, {250, 230, 40},
};

constexpr Rgb kPalette[] = {
    {33, 102, 172}, {230, 120, 20}, {40, 150, 60},   {200, 40, 45},  {125, 80, 175},
    {140, 90, 60},  {215, 95, 165}, {100, 100, 100}, {160, 160, 30}, {20, 165, 185},
};

double Luma(Rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

Rgb TextOn(Rgb background) { return Luma(background) < 140 ? kWhite : kTextColor; }

int Floor(double v) { return static_cast<int>(std::floor(v)); }

// The smallest k in 1, 2, 5, 10, 20, 50, ... with k * pitch >= need.
int NiceEvery(int pitch, int need) {
  pitch = std::max(1, pitch);
  for (int base = 1;; base *= 10) {
    for (int m : {1, 2, 5}) {
      if (static_cast<long long>(base) * m * pitch >= need) return base * m;
    }
    if (base > 100000000) return base * 10;
  }
}

int MaxTextWidth(const std::vector<std::string>& labels) {
  int w = 0;
  for (const std::string& s : labels) w = std::max(w, Canvas::TextWidth(s));
  return w;
}

void DrawTitle(Canvas* c, const std::string& title, int y) {
  if (title.empty()) return;
  const std::string t = Canvas::Ellipsize(title, c->width() - 20, 2);
  c->DrawText(c->width() / 2, y, t, {kTextColor, 2, HAlign::kCenter, VAlign::kTop});
}

// Range of finite values; {+inf, -inf} when there is none.
void Extend(double v, double* lo, double* hi) {
  if (!std::isfinite(v)) return;
  *lo = std::min(*lo, v);
  *hi = std::max(*hi, v);
}

// Fixes up a possibly empty or degenerate data range.
void SaneRange(double* lo, double* hi) {
  if (!(*lo <= *hi) || !std::isfinite(*lo) || !std::isfinite(*hi)) {
    *lo = 0;
    *hi = 1;
  }
  if (*hi == *lo) {
    const double d = *lo == 0 ? 1 : std::abs(*lo) * 0.1;
    *lo -= d;
    *hi += d;
  }
}

}  // namespace

// ---------------------------------------------------------------- colours

Rgb ColorMap(double t) {
  if (!(t > 0)) t = 0;  // also NaN
  if (t > 1) t = 1;
  constexpr int n = sizeof(kColorMapPoints) / sizeof(kColorMapPoints[0]);
  const double f = t * (n - 1);
  const int i = std::min(n - 2, static_cast<int>(f));
  return Mix(kColorMapPoints[i], kColorMapPoints[i + 1], f - i);
}

Rgb PaletteColor(int i) {
  constexpr int n = sizeof(kPalette) / sizeof(kPalette[0]);
  return kPalette[((i % n) + n) % n];
}

// ---------------------------------------------------------------- axes

std::string FormatTick(double value, double step) {
  if (std::abs(value) < std::abs(step) * 1e-9) value = 0;  // no "-0", no 1e-17
  char buf[64];
  const double mag = std::max(std::abs(value), std::abs(step));
  if (mag >= 1e6 || (step != 0 && std::abs(step) < 1e-4)) {
    std::snprintf(buf, sizeof buf, "%.4g", value);
  } else {
    const int decimals =
        step > 0 ? std::max(0, -static_cast<int>(std::floor(std::log10(std::abs(step)) + 1e-9)))
                 : 2;
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  }
  return buf;
}

Ticks NiceTicks(double min, double max, int target, bool extend) {
  Ticks t;
  if (min > max) std::swap(min, max);
  SaneRange(&min, &max);
  target = std::clamp(target, 1, 100);
  const double raw = (max - min) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double nice = norm <= 1 + 1e-9 ? 1 : norm <= 2 + 1e-9 ? 2 : norm <= 5 + 1e-9 ? 5 : 10;
  t.step = nice * mag;
  t.lo = min;
  t.hi = max;
  if (extend) {
    t.lo = std::floor(min / t.step + 1e-9) * t.step;
    t.hi = std::ceil(max / t.step - 1e-9) * t.step;
  }
  const double first = std::ceil(t.lo / t.step - 1e-9);
  for (double k = first; k * t.step <= t.hi + t.step * 1e-9 && t.values.size() < 1000; k += 1) {
    double v = k * t.step;
    if (std::abs(v) < t.step * 1e-9) v = 0;
    t.values.push_back(v);
    t.labels.push_back(FormatTick(v, t.step));
  }
  return t;
}

double PlotArea::PixelX(double x) const {
  return rect.x + 0.5 + (x - x_min) / (x_max - x_min) * std::max(0, rect.w - 1);
}

double PlotArea::PixelY(double y) const {
  return rect.y + 0.5 + (y_max - y) / (y_max - y_min) * std::max(0, rect.h - 1);
}

// ---------------------------------------------------------------- line chart

namespace {

struct LegendEntry {
  std::string name;
  Rgb color;
  double width;
  bool dashed;
};

void DrawLegend(Canvas* c, const PlotArea& area, const std::vector<LegendEntry>& entries,
                const std::vector<PointF>& data_points) {
  if (entries.empty()) return;
  constexpr int kPad = 6, kSwatch = 22, kGap = 6, kInset = 8;
  const int kRow = kTh + 5;
  int text_w = 0;
  for (const LegendEntry& e : entries) text_w = std::max(text_w, Canvas::TextWidth(e.name));
  const int max_text = std::max(20, area.rect.w - 2 * kInset - 2 * kPad - kSwatch - kGap);
  text_w = std::min(text_w, max_text);
  const int w = 2 * kPad + kSwatch + kGap + text_w;
  const int h = 2 * kPad + static_cast<int>(entries.size()) * kRow - 5;
  if (w > area.rect.w - 2 * kInset || h > area.rect.h - 2 * kInset) return;  // no room
  const Rect& r = area.rect;
  // Corners in order of preference; the one covering the fewest data points wins.
  const Rect candidates[4] = {{r.x + r.w - kInset - w, r.y + kInset, w, h},
                              {r.x + kInset, r.y + kInset, w, h},
                              {r.x + r.w - kInset - w, r.y + r.h - kInset - h, w, h},
                              {r.x + kInset, r.y + r.h - kInset - h, w, h}};
  int best = 0;
  size_t best_count = SIZE_MAX;
  for (int i = 0; i < 4; ++i) {
    size_t count = 0;
    for (const PointF& p : data_points) count += candidates[i].Contains(Floor(p.x), Floor(p.y));
    if (count < best_count) {
      best_count = count;
      best = i;
    }
  }
  const Rect& box = candidates[best];
  for (int y = box.y; y < box.y + box.h; ++y) {
    for (int x = box.x; x < box.x + box.w; ++x) c->Blend(x, y, kWhite, 0.88);
  }
  c->StrokeRect(box.x, box.y, box.w, box.h, {190, 190, 190});
  for (size_t i = 0; i < entries.size(); ++i) {
    const LegendEntry& e = entries[i];
    const int cy = box.y + kPad + static_cast<int>(i) * kRow + kTh / 2;
    c->DrawPolyline({{box.x + kPad + 0.5, cy + 0.5}, {box.x + kPad + kSwatch - 0.5, cy + 0.5}},
                    e.color, std::min(e.width, 4.0), true, e.dashed ? 6 : 0, e.dashed ? 4 : 0);
    c->DrawText(box.x + kPad + kSwatch + kGap, cy, Canvas::Ellipsize(e.name, text_w),
                {kTextColor, 1, HAlign::kLeft, VAlign::kMiddle});
  }
}

}  // namespace

Canvas LineChart(const LineChartSpec& spec, LineChartLayout* layout) {
  const int W = std::clamp(spec.width, 160, 8192), H = std::clamp(spec.height, 120, 8192);
  Canvas c(W, H, kWhite);
  static const Panel kEmptyPanel;
  std::vector<const Panel*> panels;
  for (const Panel& p : spec.panels) panels.push_back(&p);
  if (panels.empty()) panels.push_back(&kEmptyPanel);
  const int np = static_cast<int>(panels.size());

  // x range: the data's, unless given.
  double xlo = kInf, xhi = -kInf;
  for (const Panel* p : panels) {
    for (const Series& s : p->series) {
      const size_t n = std::min(s.x.size(), s.y.size());
      for (size_t i = 0; i < n; ++i) {
        if (std::isfinite(s.y[i])) Extend(s.x[i], &xlo, &xhi);
      }
    }
  }
  if (spec.x_min) xlo = *spec.x_min;
  if (spec.x_max) xhi = *spec.x_max;
  if (xlo > xhi && spec.x_min && !spec.x_max) xhi = xlo + 1;
  if (xlo > xhi && spec.x_max && !spec.x_min) xlo = xhi - 1;
  SaneRange(&xlo, &xhi);

  // Vertical layout.
  bool sep_labels = false;
  for (const Separator& s : spec.separators) sep_labels |= !s.label.empty();
  const int top = 10 + (spec.title.empty() ? 0 : 2 * kTh + 10) + (sep_labels ? kTh + 6 : 4);
  const int bottom = 10 + 6 + kTh + (spec.x_title.empty() ? 0 : kTh + 8);
  constexpr int kPanelGap = 14;
  const int avail_h = std::max(np * 8, H - top - bottom - (np - 1) * kPanelGap);
  double weight_sum = 0;
  for (const Panel* p : panels) weight_sum += p->height_weight > 0 ? p->height_weight : 1;
  std::vector<int> panel_y(np), panel_h(np);
  {
    int y = top;
    double acc = 0;
    for (int i = 0; i < np; ++i) {
      acc += panels[i]->height_weight > 0 ? panels[i]->height_weight : 1;
      const int end =
          top + static_cast<int>(std::lround(avail_h * acc / weight_sum)) + i * kPanelGap;
      panel_y[i] = y;
      panel_h[i] = std::max(8, end - y);
      y = end + kPanelGap;
    }
  }

  // y ranges and ticks per panel.
  std::vector<Ticks> yticks(np);
  bool any_y_title = false;
  int ylabel_w = 0;
  for (int i = 0; i < np; ++i) {
    const Panel& p = *panels[i];
    any_y_title |= !p.y_title.empty();
    double lo = kInf, hi = -kInf;
    for (const Series& s : p.series) {
      const size_t n = std::min(s.x.size(), s.y.size());
      for (size_t k = 0; k < n; ++k) {
        if (std::isfinite(s.x[k]) && s.x[k] >= xlo && s.x[k] <= xhi) Extend(s.y[k], &lo, &hi);
      }
    }
    if (p.y_min) lo = *p.y_min;
    if (p.y_max) hi = *p.y_max;
    if (lo > hi && p.y_min && !p.y_max) hi = lo + 1;
    if (lo > hi && p.y_max && !p.y_min) lo = hi - 1;
    SaneRange(&lo, &hi);
    const int target = std::max(2, panel_h[i] / 45);
    Ticks t = NiceTicks(lo, hi, target, /*extend=*/true);
    if (p.y_min || p.y_max) {
      // Keep the given bounds exactly; list the ticks inside.
      const Ticks inside = NiceTicks(p.y_min ? lo : t.lo, p.y_max ? hi : t.hi, target, false);
      t = inside;
    }
    yticks[i] = t;
    ylabel_w = std::max(ylabel_w, MaxTextWidth(t.labels));
  }
  const int left = 10 + (any_y_title ? kTh + 8 : 0) + ylabel_w + 8;

  // x ticks (the label width sets the right margin).
  const int est_w = std::max(40, W - left - 30);
  const Ticks xt = NiceTicks(xlo, xhi, std::max(2, est_w / 90), /*extend=*/false);
  const int right = std::max(16, MaxTextWidth(xt.labels) / 2 + 8);
  const int plot_w = std::max(8, W - left - right);

  std::vector<PlotArea> areas(np);
  for (int i = 0; i < np; ++i) {
    areas[i].rect = {left, panel_y[i], plot_w, panel_h[i]};
    areas[i].x_min = xlo;
    areas[i].x_max = xhi;
    areas[i].y_min = yticks[i].lo;
    areas[i].y_max = yticks[i].hi;
  }

  DrawTitle(&c, spec.title, 10);

  for (int i = 0; i < np; ++i) {
    const Panel& p = *panels[i];
    const PlotArea& a = areas[i];
    const Rect& r = a.rect;
    // Grid.
    for (double v : yticks[i].values) {
      const int py = std::clamp(Floor(a.PixelY(v)), r.y, r.y + r.h - 1);
      c.FillRect(r.x, py, r.w, 1, kGridColor);
    }
    for (double v : xt.values) {
      const int px = std::clamp(Floor(a.PixelX(v)), r.x, r.x + r.w - 1);
      c.FillRect(px, r.y, 1, r.h, kGridColor);
    }
    // Separators.
    for (const Separator& s : spec.separators) {
      if (!(s.x >= xlo && s.x <= xhi)) continue;
      const int px = std::clamp(Floor(a.PixelX(s.x)), r.x, r.x + r.w - 1);
      c.DashedVLine(px, r.y, r.h, kSeparatorColor, 5, 4);
      if (i == 0 && !s.label.empty()) {
        c.DrawText(px + 3, r.y - 3, s.label, {kTextColor, 1, HAlign::kLeft, VAlign::kBottom});
      }
    }
    // Series, clipped to the plot.
    std::vector<LegendEntry> legend;
    std::vector<PointF> all_points;
    c.SetClip(r);
    for (size_t k = 0; k < p.series.size(); ++k) {
      const Series& s = p.series[k];
      const Rgb color = s.color.value_or(PaletteColor(static_cast<int>(k)));
      const size_t n = std::min(s.x.size(), s.y.size());
      std::vector<PointF> pts(n);
      for (size_t j = 0; j < n; ++j) {
        if (std::isfinite(s.x[j]) && std::isfinite(s.y[j])) {
          pts[j] = {a.PixelX(s.x[j]), a.PixelY(s.y[j])};
          all_points.push_back(pts[j]);
          if (j > 0 && std::isfinite(pts[j - 1].x)) {
            all_points.push_back({(pts[j].x + pts[j - 1].x) / 2, (pts[j].y + pts[j - 1].y) / 2});
          }
        } else {
          pts[j] = {std::nan(""), std::nan("")};
        }
      }
      const double w = std::clamp(s.line_width, 0.5, 12.0);
      c.DrawPolyline(pts, color, w, true, s.dashed ? 3 * w + 4 : 0, s.dashed ? 2 * w + 2 : 0);
      if (s.markers) {
        for (const PointF& q : pts) c.FillCircle(q, w + 1.5, color);
      }
      if (!s.name.empty()) legend.push_back({s.name, color, w, s.dashed});
    }
    c.ResetClip();
    // Frame (outside the plot rectangle), ticks and tick labels.
    c.StrokeRect(r.x - 1, r.y - 1, r.w + 2, r.h + 2, kFrameColor);
    for (size_t k = 0; k < yticks[i].values.size(); ++k) {
      const int py = std::clamp(Floor(a.PixelY(yticks[i].values[k])), r.y, r.y + r.h - 1);
      c.FillRect(r.x - 5, py, 4, 1, kFrameColor);
      c.DrawText(r.x - 8, py, yticks[i].labels[k],
                 {kTextColor, 1, HAlign::kRight, VAlign::kMiddle});
    }
    if (!p.y_title.empty()) {
      const std::string t = Canvas::Ellipsize(p.y_title, r.h);
      c.DrawText(10, r.y + r.h / 2, t, {kTextColor, 1, HAlign::kLeft, VAlign::kMiddle, true});
    }
    if (p.legend) DrawLegend(&c, a, legend, all_points);
  }

  // x tick labels and title under the last panel.
  const PlotArea& last = areas.back();
  const int axis_y = last.rect.y + last.rect.h + 1;
  for (size_t k = 0; k < xt.values.size(); ++k) {
    const int px =
        std::clamp(Floor(last.PixelX(xt.values[k])), last.rect.x, last.rect.x + last.rect.w - 1);
    c.FillRect(px, axis_y, 1, 4, kFrameColor);
    c.DrawText(px, axis_y + 6, xt.labels[k], {kTextColor, 1, HAlign::kCenter, VAlign::kTop});
  }
  if (!spec.x_title.empty()) {
    c.DrawText(last.rect.x + last.rect.w / 2, axis_y + 6 + kTh + 8,
               Canvas::Ellipsize(spec.x_title, last.rect.w),
               {kTextColor, 1, HAlign::kCenter, VAlign::kTop});
  }
  if (layout) layout->panels = areas;
  return c;
}

// ---------------------------------------------------------------- heat map

Canvas HeatMap(const HeatMapSpec& spec, HeatMapLayout* layout) {
  const int rows = std::clamp(spec.rows, 0, 4096), cols = std::clamp(spec.cols, 0, 4096);
  auto value = [&](int r, int col) {
    const size_t i = static_cast<size_t>(r) * spec.cols + col;
    return i < spec.values.size() ? spec.values[i] : std::nan("");
  };

  // Value range.
  double vmin = 0, vmax = 1;
  if (spec.auto_range) {
    double lo = kInf, hi = -kInf;
    for (int r = 0; r < rows; ++r)
      for (int col = 0; col < cols; ++col) Extend(value(r, col), &lo, &hi);
    if (lo <= hi) {
      vmin = lo;
      vmax = hi;
    }
  }
  if (spec.v_min && std::isfinite(*spec.v_min)) vmin = *spec.v_min;
  if (spec.v_max && std::isfinite(*spec.v_max)) vmax = *spec.v_max;
  if (!(vmax > vmin)) vmax = vmin + 1;

  // Labels.
  constexpr int kMaxRowLabel = 260;
  std::vector<std::string> row_labels;
  if (!spec.row_labels.empty()) {
    for (int r = 0; r < rows; ++r) {
      row_labels.push_back(Canvas::Ellipsize(
          r < static_cast<int>(spec.row_labels.size()) ? spec.row_labels[r] : "", kMaxRowLabel));
    }
  }
  std::vector<std::string> col_labels;
  for (int col = 0; col < cols; ++col) {
    col_labels.push_back(col < static_cast<int>(spec.col_labels.size()) ? spec.col_labels[col]
                                                                        : std::to_string(col));
  }
  const Ticks bar_ticks = NiceTicks(vmin, vmax, 5, /*extend=*/false);

  // Margins.
  const int top = 10 + (spec.title.empty() ? 0 : 2 * kTh + 10);
  const int row_label_w = MaxTextWidth(row_labels);
  const int left = 10 + (spec.y_title.empty() ? 0 : kTh + 8) + row_label_w + (row_label_w ? 6 : 0);
  constexpr int kBarGap = 16, kBarW = 14;
  const int right = kBarGap + kBarW + 4 + 4 + MaxTextWidth(bar_ticks.labels) +
                    (spec.colorbar_title.empty() ? 0 : 8 + kTh) + 10;
  const int bottom = 6 + kTh + (spec.x_title.empty() ? 0 : 8 + kTh) + 10;

  // Cell sizes and image size.
  int cell_h, cell_w;
  if (spec.height > 0) {
    cell_h = std::max(1, (std::clamp(spec.height, 60, 8192) - top - bottom) / std::max(1, rows));
  } else {
    cell_h = std::clamp(spec.cell_height, 1, 64);
  }
  if (spec.width > 0) {
    cell_w = std::max(1, (std::clamp(spec.width, 80, 8192) - left - right) / std::max(1, cols));
  } else {
    const int max_w = std::clamp(spec.max_width, 80, 8192);
    cell_w =
        std::clamp((max_w - left - right) / std::max(1, cols), 1, std::max(1, spec.max_cell_width));
  }
  const int cells_w = cell_w * cols, cells_h = cell_h * rows;
  const int bar_h = std::max(cells_h, 60);
  int W = spec.width > 0 ? std::clamp(spec.width, 80, 8192)
                         : std::clamp(left + cells_w + right, 80, 8192);
  int H = spec.height > 0 ? std::clamp(spec.height, 60, 8192)
                          : std::clamp(top + bar_h + bottom, 60, 8192);
  if (spec.width <= 0) W = std::clamp(std::max(W, Canvas::TextWidth(spec.title, 2) + 20), 80, 8192);
  Canvas c(W, H, kWhite);
  DrawTitle(&c, spec.title, 10);

  const Rect cells{left, top, cells_w, cells_h};
  HeatMapLayout lay;
  lay.cells = cells;
  lay.cell_width = cell_w;
  lay.cell_height = cell_h;
  lay.v_min = vmin;
  lay.v_max = vmax;

  // Cells.
  for (int r = 0; r < rows; ++r) {
    for (int col = 0; col < cols; ++col) {
      const double v = value(r, col);
      const Rgb color = std::isfinite(v) ? ColorMap((v - vmin) / (vmax - vmin)) : kMissingColor;
      const Rect cr = lay.CellRect(r, col);
      c.FillRect(cr.x, cr.y, cr.w, cr.h, color);
    }
  }
  // Marked cells.
  std::vector<int> marked(spec.marked.begin(), spec.marked.end());
  if (spec.mark_column_max) {
    marked.assign(cols, -1);
    for (int col = 0; col < cols; ++col) {
      double best = -kInf;
      for (int r = 0; r < rows; ++r) {
        const double v = value(r, col);
        if (std::isfinite(v) && v > best) {
          best = v;
          marked[col] = r;
        }
      }
    }
  }
  const int mark_t = cell_w >= 12 && cell_h >= 8 ? 2 : 1;  // thin boxes on narrow cells
  for (int col = 0; col < std::min(cols, static_cast<int>(marked.size())); ++col) {
    const int r = marked[col];
    if (r < 0 || r >= rows) continue;
    const Rect cr = lay.CellRect(r, col);
    c.StrokeRect(cr.x - mark_t, cr.y - mark_t, cr.w + 2 * mark_t, cr.h + 2 * mark_t,
                 spec.mark_color, mark_t);
  }

  // Row labels (every k-th when rows are shorter than the text).
  lay.row_label_every = NiceEvery(cell_h, kTh + 1);
  if (!row_labels.empty()) {
    for (int r = 0; r < rows; r += lay.row_label_every) {
      const Rect cr = lay.CellRect(r, 0);
      c.DrawText(cells.x - 6, cr.y + cr.h / 2, row_labels[r],
                 {kTextColor, 1, HAlign::kRight, VAlign::kMiddle});
    }
  }
  // Column labels (every k-th so that they do not overlap).
  lay.col_label_every = NiceEvery(cell_w, MaxTextWidth(col_labels) + 6);
  for (int col = 0; col < cols; col += lay.col_label_every) {
    const Rect cr = lay.CellRect(0, col);
    const int cx = cr.x + cr.w / 2;
    c.FillRect(cx, cells.y + cells.h, 1, 3, kFrameColor);
    c.DrawText(cx, cells.y + cells.h + 5, col_labels[col],
               {kTextColor, 1, HAlign::kCenter, VAlign::kTop});
  }
  if (!spec.x_title.empty()) {
    c.DrawText(cells.x + cells.w / 2, cells.y + cells.h + 5 + kTh + 8, spec.x_title,
               {kTextColor, 1, HAlign::kCenter, VAlign::kTop});
  }
  if (!spec.y_title.empty()) {
    c.DrawText(10, cells.y + cells.h / 2, Canvas::Ellipsize(spec.y_title, std::max(cells.h, 40)),
               {kTextColor, 1, HAlign::kLeft, VAlign::kMiddle, true});
  }

  // Colour bar with its scale.
  const Rect bar{cells.x + cells.w + kBarGap, cells.y, kBarW, bar_h};
  lay.colorbar = bar;
  for (int y = 0; y < bar.h; ++y) {
    const double t = bar.h > 1 ? 1.0 - static_cast<double>(y) / (bar.h - 1) : 1.0;
    c.FillRect(bar.x, bar.y + y, bar.w, 1, ColorMap(t));
  }
  c.StrokeRect(bar.x - 1, bar.y - 1, bar.w + 2, bar.h + 2, kFrameColor);
  int tick_label_right = bar.x + bar.w + 4;
  for (size_t k = 0; k < bar_ticks.values.size(); ++k) {
    const double f = (bar_ticks.values[k] - vmin) / (vmax - vmin);
    const int py = bar.y + static_cast<int>(std::lround((1 - f) * (bar.h - 1)));
    c.FillRect(bar.x + bar.w + 1, py, 3, 1, kFrameColor);
    c.DrawText(bar.x + bar.w + 8, py, bar_ticks.labels[k],
               {kTextColor, 1, HAlign::kLeft, VAlign::kMiddle});
    tick_label_right =
        std::max(tick_label_right, bar.x + bar.w + 8 + Canvas::TextWidth(bar_ticks.labels[k]));
  }
  if (!spec.colorbar_title.empty()) {
    c.DrawText(tick_label_right + 8, bar.y + bar.h / 2,
               Canvas::Ellipsize(spec.colorbar_title, bar.h),
               {kTextColor, 1, HAlign::kLeft, VAlign::kMiddle, true});
  }
  if (layout) *layout = lay;
  return c;
}

// ---------------------------------------------------------------- timeline

namespace {

// Greedy interval packing: each interval (sorted by start) goes to the first
// lane that is free by its start. Returns the lane of each interval.
std::vector<int> PackLanes(const std::vector<Interval>& items, int* lanes) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::min(items[a].start, items[a].end) < std::min(items[b].start, items[b].end);
  });
  std::vector<double> lane_end;
  std::vector<int> lane(items.size(), 0);
  for (size_t i : order) {
    const double s = std::min(items[i].start, items[i].end),
                 e = std::max(items[i].start, items[i].end);
    size_t l = 0;
    while (l < lane_end.size() && lane_end[l] > s) ++l;
    if (l == lane_end.size()) lane_end.push_back(e);
    lane_end[l] = e;
    lane[i] = static_cast<int>(l);
  }
  *lanes = static_cast<int>(lane_end.size());
  return lane;
}

}  // namespace

Canvas Timeline(const TimelineSpec& spec, TimelineLayout* layout) {
  const int W = std::clamp(spec.width, 200, 8192);
  const bool has_gt = !spec.ground_truth.empty();

  // Labels in order (colours and per-label lanes follow it).
  std::vector<std::string> labels;
  auto add_label = [&](const std::string& s) {
    if (std::find(labels.begin(), labels.end(), s) == labels.end()) labels.push_back(s);
  };
  const bool per_label = spec.lanes == LaneMode::kPerLabel;
  for (const std::string& s : spec.label_order) add_label(s);
  for (const Interval& iv : spec.predicted) add_label(iv.label);
  for (const Interval& iv : spec.ground_truth) add_label(iv.label);
  auto color_of = [&](const std::string& s) {
    return PaletteColor(
        static_cast<int>(std::find(labels.begin(), labels.end(), s) - labels.begin()));
  };

  // Lanes.
  std::vector<std::string> lane_names;
  std::vector<int> gt_lane, pred_lane;
  int gt_lanes = 0, pred_lanes = 0;
  if (per_label) {
    lane_names = labels;
    auto index = [&](const std::string& s) {
      return static_cast<int>(std::find(labels.begin(), labels.end(), s) - labels.begin());
    };
    for (const Interval& iv : spec.ground_truth) gt_lane.push_back(index(iv.label));
    for (const Interval& iv : spec.predicted) pred_lane.push_back(index(iv.label));
  } else {
    gt_lane = PackLanes(spec.ground_truth, &gt_lanes);
    pred_lane = PackLanes(spec.predicted, &pred_lanes);
    if (pred_lanes == 0) pred_lanes = 1;
    for (int i = 0; i < gt_lanes; ++i) lane_names.push_back("ground truth");
    for (int& l : pred_lane) l += gt_lanes;
    for (int i = 0; i < pred_lanes; ++i) lane_names.push_back("predicted");
  }
  const int nlanes = std::max(1, static_cast<int>(lane_names.size()));

  // Time range.
  double tlo = kInf, thi = -kInf;
  for (const auto* v : {&spec.predicted, &spec.ground_truth}) {
    for (const Interval& iv : *v) {
      Extend(iv.start, &tlo, &thi);
      Extend(iv.end, &tlo, &thi);
    }
  }
  if (spec.t_min) tlo = *spec.t_min;
  if (spec.t_max) thi = *spec.t_max;
  SaneRange(&tlo, &thi);

  // Layout.
  constexpr int kMaxLaneLabel = 240;
  int name_w = 0;
  for (const std::string& s : lane_names)
    name_w = std::max(name_w, std::min(kMaxLaneLabel, Canvas::TextWidth(s)));
  const bool legend = per_label && has_gt;
  const int top = 10 + (spec.title.empty() ? 0 : 2 * kTh + 10) + (legend ? kTh + 8 : 0);
  const int bottom = 10 + 6 + kTh + (spec.x_title.empty() ? 0 : kTh + 8);
  const int left = 10 + name_w + 8;
  int lane_h = per_label && has_gt ? 26 : 18;
  const int H = spec.height > 0 ? std::clamp(spec.height, 80, 8192)
                                : std::clamp(top + nlanes * lane_h + bottom, 80, 8192);
  if (spec.height > 0) lane_h = std::max(4, (H - top - bottom) / nlanes);
  const int est_w = std::max(40, W - left - 30);
  const Ticks xt = NiceTicks(tlo, thi, std::max(2, est_w / 90), /*extend=*/false);
  const int right = std::max(16, MaxTextWidth(xt.labels) / 2 + 8);

  Canvas c(W, H, kWhite);
  DrawTitle(&c, spec.title, 10);
  PlotArea area;
  area.rect = {left, top, std::max(8, W - left - right), nlanes * lane_h};
  area.x_min = tlo;
  area.x_max = thi;
  area.y_min = 0;
  area.y_max = nlanes;
  const Rect& r = area.rect;

  std::vector<Rect> lane_rects;
  for (int l = 0; l < nlanes; ++l) {
    lane_rects.push_back({r.x, r.y + l * lane_h, r.w, lane_h});
    if (l % 2 == 1) c.FillRect(r.x, r.y + l * lane_h, r.w, lane_h, {246, 246, 246});
  }
  for (double v : xt.values) {
    c.FillRect(std::clamp(Floor(area.PixelX(v)), r.x, r.x + r.w - 1), r.y, 1, r.h, kGridColor);
  }
  if (!per_label && gt_lanes > 0) c.FillRect(r.x, r.y + gt_lanes * lane_h, r.w, 1, kSeparatorColor);

  // Lane names: every lane per label; the first lane of each group when packed.
  for (int l = 0; l < static_cast<int>(lane_names.size()); ++l) {
    if (!per_label && l > 0 && lane_names[l] == lane_names[l - 1]) continue;
    c.DrawText(r.x - 6, r.y + l * lane_h + lane_h / 2,
               Canvas::Ellipsize(lane_names[l], kMaxLaneLabel),
               {kTextColor, 1, HAlign::kRight, VAlign::kMiddle});
  }

  // Bars.
  c.SetClip(r);
  auto bar_x = [&](const Interval& iv, int* x0, int* w) {
    const double a = std::min(iv.start, iv.end), b = std::max(iv.start, iv.end);
    const double pa = std::clamp(area.PixelX(a) - 0.5, r.x - 1.0, r.x + r.w + 1.0);
    const double pb = std::clamp(area.PixelX(b) - 0.5, r.x - 1.0, r.x + r.w + 1.0);
    *x0 = static_cast<int>(std::lround(pa));
    *w = std::max(1, static_cast<int>(std::lround(pb)) - *x0);
  };
  auto draw_text_in = [&](const Rect& box, const std::string& text, Rgb fill) {
    if (box.w < 12 || box.h < kTh) return;
    const std::string t = Canvas::Ellipsize(text, box.w - 4);
    if (t.empty()) return;
    c.DrawText(box.x + 3, box.y + box.h / 2, t, {TextOn(fill), 1, HAlign::kLeft, VAlign::kMiddle});
  };
  for (size_t i = 0; i < spec.ground_truth.size(); ++i) {
    const Interval& iv = spec.ground_truth[i];
    if (!std::isfinite(iv.start) || !std::isfinite(iv.end)) continue;
    int x0, w;
    bar_x(iv, &x0, &w);
    const int ly = r.y + gt_lane[i] * lane_h;
    const Rect box =
        per_label ? Rect{x0, ly + 3, w, lane_h / 2 - 3} : Rect{x0, ly + 3, w, lane_h - 6};
    const Rgb col = color_of(iv.label);
    const Rgb fill = Mix(kWhite, col, 0.3);
    c.FillRect(box.x, box.y, box.w, box.h, fill);
    c.StrokeRect(box.x, box.y, box.w, box.h, Mix(col, kBlack, 0.25));
    if (!per_label) draw_text_in(box, iv.label, fill);
  }
  for (size_t i = 0; i < spec.predicted.size(); ++i) {
    const Interval& iv = spec.predicted[i];
    if (!std::isfinite(iv.start) || !std::isfinite(iv.end)) continue;
    int x0, w;
    bar_x(iv, &x0, &w);
    const int ly = r.y + pred_lane[i] * lane_h;
    const Rect box = per_label && has_gt ? Rect{x0, ly + lane_h / 2, w, lane_h / 2 - 3}
                                         : Rect{x0, ly + 3, w, lane_h - 6};
    const double conf = std::isfinite(iv.confidence) ? std::clamp(iv.confidence, 0.0, 1.0) : 1.0;
    const Rgb fill = Mix(kWhite, color_of(iv.label), 0.25 + 0.75 * conf);
    c.FillRect(box.x, box.y, box.w, box.h, fill);
    const std::string conf_text = FormatTick(conf, 0.01);
    draw_text_in(box, per_label ? conf_text : iv.label + " " + conf_text, fill);
  }
  c.ResetClip();

  // Frame, time axis, legend.
  c.StrokeRect(r.x - 1, r.y - 1, r.w + 2, r.h + 2, kFrameColor);
  const int axis_y = r.y + r.h + 1;
  for (size_t k = 0; k < xt.values.size(); ++k) {
    const int px = std::clamp(Floor(area.PixelX(xt.values[k])), r.x, r.x + r.w - 1);
    c.FillRect(px, axis_y, 1, 4, kFrameColor);
    c.DrawText(px, axis_y + 6, xt.labels[k], {kTextColor, 1, HAlign::kCenter, VAlign::kTop});
  }
  if (!spec.x_title.empty()) {
    c.DrawText(r.x + r.w / 2, axis_y + 6 + kTh + 8, spec.x_title,
               {kTextColor, 1, HAlign::kCenter, VAlign::kTop});
  }
  if (legend) {
    const int y = r.y - kTh - 6;
    const std::string gt = "ground truth", pr = "predicted";
    int x = r.x + r.w - (Canvas::TextWidth(gt) + Canvas::TextWidth(pr) + 2 * 22 + 16);
    c.FillRect(x, y, 16, kTh, Mix(kWhite, kMutedText, 0.3));
    c.StrokeRect(x, y, 16, kTh, kMutedText);
    c.DrawText(x + 20, y, gt, {kTextColor});
    x += 22 + Canvas::TextWidth(gt) + 16;
    c.FillRect(x, y, 16, kTh, kMutedText);
    c.DrawText(x + 20, y, pr, {kTextColor});
  }
  if (layout) {
    layout->area = area;
    layout->lane_names = lane_names;
    layout->lanes = lane_rects;
  }
  return c;
}

}  // namespace billnet::viz
