// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/criteria/element_wise.hpp"
#include "mhaprune/layouts/segments.hpp"

namespace mhaprune::checkpoint::detail {

/// The scores of an element-wise criterion that reads only weights (magnitude) for a block of a
/// file, read one row at a time: the same scores, bit for bit, as binding the block's weights
/// decoded to float (same rows, runs and order of additions), without ever holding a block of
/// floats. Scoring a LLaMA-7B block that way writes and reads back 256 MiB; row by row, each
/// weight byte is read once and the floats stay in cache.
///
/// @tparam Rows a class with
///   - `Index rows(const std::string& tensor)`, `Index cols(const std::string& tensor)`: its shape
///     as stored (row-major, `[out, in]`, or `[in, out]` when `info.in_out`);
///   - `const float* row(const std::string& tensor, Index r)`: row r decoded to float (`cols`
///     floats), valid until the next call; rows are asked for in ascending order, one tensor
///     after another;
///   - `void done(const std::string& tensor)`: called when a tensor's rows are no longer needed
///     (to release its file pages).
/// @throws what `Rows` throws; shape_error when the shapes do not fit `info.layout`.
template <typename Fn, typename Rows>
Eigen::VectorXd score_by_row(const ElementWise<Fn>& criterion, const BlockInfo& info, Rows& rows) {
  const BlockTensorNames& n = info.tensors;
  const HeadLayout& L = info.layout;
  std::vector<const std::string*> names;
  std::vector<LinedWeight> weights;
  // Q/K/V's heads split the output features, O's the input features; a row of an `[out, in]`
  // tensor is one output feature.
  const auto add = [&](const std::string& name, std::vector<Segment> segments, bool heads_on_out) {
    names.push_back(&name);
    weights.push_back({std::move(segments), rows.rows(name), rows.cols(name), heads_on_out != info.in_out});
  };
  if (info.qkv == QkvLayout::separate) {
    add(n.q, layout::segments::single(L, Role::query), true);
    add(n.k, layout::segments::single(L, Role::key), true);
    add(n.v, layout::segments::single(L, Role::value), true);
  } else {
    add(n.qkv,
        info.qkv == QkvLayout::concat        ? layout::segments::qkv_concat(L)
        : info.qkv == QkvLayout::interleaved ? layout::segments::qkv_interleaved(L)
                                             : layout::segments::qkv_grouped(L),
        true);
  }
  add(n.o, layout::segments::single(L, Role::output), false);

  std::size_t open = names.size();  // the tensor whose rows are being read
  const auto line_of = [&](std::size_t w, Index r) -> const float* {
    if (w != open) {
      if (open < names.size()) rows.done(*names[open]);
      open = w;
    }
    return rows.row(*names[w], r);
  };
  Eigen::VectorXd scores = criterion.scores_by_line(L, weights, line_of);
  if (open < names.size()) rows.done(*names[open]);
  return scores;
}

}  // namespace mhaprune::checkpoint::detail
