// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The picture of a prune: one row per block, one column per original head id, the colour the head's
// score, removed heads crossed out. Plain SVG text, so the tool needs no plotting library.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "mhaprune/pruner/prune_report.hpp"

namespace mhaprune_cli {

struct HeatmapOptions {
  std::string title = "mhaprune head scores";
  std::string subtitle;  ///< a second line under the title, e.g. the criterion and target
};

namespace detail {

inline std::string xml_escaped(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
        break;
    }
  }
  return out;
}

inline std::string number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

inline std::string pixels(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

/// Viridis at t in [0, 1] (perceptually uniform, readable when printed grey): nine anchors of
/// matplotlib's table, linearly interpolated.
inline std::string viridis(double t) {
  static constexpr std::array<std::array<double, 3>, 9> anchors{{{68, 1, 84},
                                                                 {71, 44, 122},
                                                                 {59, 81, 139},
                                                                 {44, 113, 142},
                                                                 {33, 144, 141},
                                                                 {39, 173, 129},
                                                                 {92, 200, 99},
                                                                 {170, 220, 50},
                                                                 {253, 231, 37}}};
  t = std::clamp(t, 0.0, 1.0) * (anchors.size() - 1);
  const std::size_t i = std::min(static_cast<std::size_t>(t), anchors.size() - 2);
  const double f = t - static_cast<double>(i);
  char buf[8];
  const auto channel = [&](std::size_t c) {
    return static_cast<int>(std::lround(anchors[i][c] + f * (anchors[i + 1][c] - anchors[i][c])));
  };
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", channel(0), channel(1), channel(2));
  return buf;
}

}  // namespace detail

/// The heatmap of `report` as a standalone SVG document (starts with "<svg").
///
/// Colours span the smallest to the largest finite score over all blocks, so layers compare. A head
/// already gone before this call (absent from the block's `head_ids`) is drawn as an empty grey cell;
/// a non-finite score as a grey cell marked "?". Every cell has a tooltip with block, head and score.
inline std::string heatmap_svg(const mhaprune::PruneReport& report, const HeatmapOptions& options = {}) {
  using detail::number;
  using detail::pixels;
  using detail::xml_escaped;
  std::size_t columns = 1;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& b : report.blocks) {
    for (const auto id : b.head_ids) columns = std::max(columns, static_cast<std::size_t>(id) + 1);
    for (const double s : b.scores) {
      if (!std::isfinite(s)) continue;
      lo = std::min(lo, s);
      hi = std::max(hi, s);
    }
  }
  const bool any_score = lo <= hi;
  const auto shade = [&](double s) {
    if (!any_score || hi == lo) return detail::viridis(0.5);
    return detail::viridis((s - lo) / (hi - lo));
  };

  const std::size_t rows = report.blocks.size();
  const double cell = std::clamp(720.0 / static_cast<double>(columns), 10.0, 32.0);
  const double left = 64, top = options.subtitle.empty() ? 66 : 86;
  const double grid_w = cell * static_cast<double>(columns), grid_h = cell * static_cast<double>(rows);
  const double legend_top = top + grid_h + 36;
  // Text is not measured by SVG; estimate it (bold 16 px sans ~10 px a character, 11 px ~6.5 px)
  // so that a long model name in the title is not cut off at the right edge.
  const double text_w = std::max(10.0 * static_cast<double>(options.title.size()),
                                 6.5 * static_cast<double>(options.subtitle.size()));
  const double width = std::max({left + grid_w + 24, left + text_w + 24, 460.0}), height = legend_top + 64;
  // Label every head id when they fit, else every k-th.
  const std::size_t label_every = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(18.0 / cell)));

  std::string svg;
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + pixels(width) + "\" height=\"" +
         pixels(height) + "\" viewBox=\"0 0 " + pixels(width) + ' ' + pixels(height) +
         "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg += "<title>" + xml_escaped(options.title) + "</title>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  svg += "<text x=\"" + pixels(left) + "\" y=\"24\" font-size=\"16\" font-weight=\"bold\">" +
         xml_escaped(options.title) + "</text>\n";
  if (!options.subtitle.empty())
    svg += "<text x=\"" + pixels(left) + "\" y=\"44\" fill=\"#444444\">" + xml_escaped(options.subtitle) +
           "</text>\n";
  svg += "<text x=\"" + pixels(left + grid_w / 2) + "\" y=\"" + pixels(top - 22) +
         "\" text-anchor=\"middle\" fill=\"#444444\">head (original id)</text>\n";
  svg += "<text transform=\"translate(16," + pixels(top + grid_h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\" fill=\"#444444\">layer</text>\n";
  for (std::size_t c = 0; c < columns; c += label_every) {
    svg += "<text x=\"" + pixels(left + cell * (static_cast<double>(c) + 0.5)) + "\" y=\"" + pixels(top - 6) +
           "\" text-anchor=\"middle\">" + std::to_string(c) + "</text>\n";
  }

  for (std::size_t r = 0; r < rows; ++r) {
    const auto& b = report.blocks[r];
    const double y = top + cell * static_cast<double>(r);
    svg += "<text x=\"" + pixels(left - 6) + "\" y=\"" + pixels(y + cell / 2 + 4) +
           "\" text-anchor=\"end\">" + std::to_string(r) + "<title>" + xml_escaped(b.name) +
           "</title></text>\n";
    for (std::size_t c = 0; c < columns; ++c) {
      const double x = left + cell * static_cast<double>(c);
      const auto at = std::find(b.head_ids.begin(), b.head_ids.end(), static_cast<mhaprune::Index>(c));
      const std::string where = xml_escaped(b.name) + " head " + std::to_string(c);
      const std::string box = "x=\"" + pixels(x) + "\" y=\"" + pixels(y) + "\" width=\"" + pixels(cell) +
                              "\" height=\"" + pixels(cell) + '"';
      if (at == b.head_ids.end()) {
        svg += "<rect " + box + " fill=\"#eeeeee\" stroke=\"#ffffff\"><title>" + where +
               ": absent (removed earlier)</title></rect>\n";
        continue;
      }
      const std::size_t k = static_cast<std::size_t>(at - b.head_ids.begin());
      const double s = k < b.scores.size() ? b.scores[k] : NAN;
      const bool removed =
          std::find(b.removed.begin(), b.removed.end(), static_cast<mhaprune::Index>(c)) != b.removed.end();
      const std::string fill = std::isfinite(s) ? shade(s) : std::string("#bbbbbb");
      svg += "<rect " + box + " fill=\"" + fill + "\" stroke=\"#ffffff\"><title>" + where + ": score " +
             number(s) + (removed ? ", removed" : "") + "</title></rect>\n";
      if (!std::isfinite(s)) {
        svg += "<text x=\"" + pixels(x + cell / 2) + "\" y=\"" + pixels(y + cell / 2 + 4) +
               "\" text-anchor=\"middle\">?</text>\n";
      }
      if (removed) {
        const double m = cell * 0.18;
        svg += "<path d=\"M" + pixels(x + m) + ' ' + pixels(y + m) + " L" + pixels(x + cell - m) + ' ' +
               pixels(y + cell - m) + " M" + pixels(x + cell - m) + ' ' + pixels(y + m) + " L" +
               pixels(x + m) + ' ' + pixels(y + cell - m) + "\" stroke=\"#e8112d\" stroke-width=\"" +
               pixels(std::max(1.5, cell / 10)) + "\" stroke-linecap=\"round\"/>\n";
      }
    }
  }

  // Legend: the colour scale with its two ends, then the two cell kinds that are not colours.
  const double bar_w = 200, bar_h = 12;
  svg += "<defs><linearGradient id=\"scale\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">";
  for (int i = 0; i <= 8; ++i)
    svg += "<stop offset=\"" + number(i / 8.0) + "\" stop-color=\"" + detail::viridis(i / 8.0) + "\"/>";
  svg += "</linearGradient></defs>\n";
  svg +=
      "<text x=\"" + pixels(left) + "\" y=\"" + pixels(legend_top - 6) + "\">score (higher = keep)</text>\n";
  svg += "<rect x=\"" + pixels(left) + "\" y=\"" + pixels(legend_top) + "\" width=\"" + pixels(bar_w) +
         "\" height=\"" + pixels(bar_h) + "\" fill=\"url(#scale)\"/>\n";
  svg += "<text x=\"" + pixels(left) + "\" y=\"" + pixels(legend_top + bar_h + 14) + "\">" +
         (any_score ? number(lo) : std::string("n/a")) + "</text>\n";
  svg += "<text x=\"" + pixels(left + bar_w) + "\" y=\"" + pixels(legend_top + bar_h + 14) +
         "\" text-anchor=\"end\">" + (any_score ? number(hi) : std::string("n/a")) + "</text>\n";
  const double kx = left + bar_w + 24;
  svg += "<rect x=\"" + pixels(kx) + "\" y=\"" + pixels(legend_top - 2) +
         "\" width=\"16\" height=\"16\" fill=\"#dddddd\"/><path d=\"M" + pixels(kx + 3) + ' ' +
         pixels(legend_top + 1) + " L" + pixels(kx + 13) + ' ' + pixels(legend_top + 11) + " M" +
         pixels(kx + 13) + ' ' + pixels(legend_top + 1) + " L" + pixels(kx + 3) + ' ' +
         pixels(legend_top + 11) + "\" stroke=\"#e8112d\" stroke-width=\"2\"/>\n";
  svg += "<text x=\"" + pixels(kx + 22) + "\" y=\"" + pixels(legend_top + 10) + "\">removed</text>\n";
  svg += "<rect x=\"" + pixels(kx + 90) + "\" y=\"" + pixels(legend_top - 2) +
         "\" width=\"16\" height=\"16\" fill=\"#eeeeee\" stroke=\"#cccccc\"/>\n";
  svg += "<text x=\"" + pixels(kx + 112) + "\" y=\"" + pixels(legend_top + 10) + "\">absent</text>\n";
  svg += "</svg>\n";
  return svg;
}

}  // namespace mhaprune_cli
