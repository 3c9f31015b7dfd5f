// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Every way to misuse binding and removal throws the right mhaprune::error subtype, with a message
// that names the block, the tensor and the shapes or ids involved, and (strong guarantee) leaves
// every byte and shape of every tensor and the block's bookkeeping exactly as they were.

#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <mhaprune/mhaprune.hpp>
#include <new>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "support/random_block.hpp"

namespace test_remove_errors {

namespace {

using Catch::Matchers::Contains;
using mhaprune::Axis;
using mhaprune::head_id_error;
using mhaprune::HeadLayout;
using mhaprune::HeadMask;
using mhaprune::Index;
using mhaprune::layout_error;
using mhaprune::Orientation;
using mhaprune::OriginalIds;
using mhaprune::Positions;
using mhaprune::removal_error;
using mhaprune::shape_error;
using mhaprune::storage_error;
using mhaprune::StorageOrder;
namespace layout = mhaprune::layout;
using namespace mhaprune_test;

/// Matches an exception whose `what()` contains every one of `parts` (Catch's `Contains` matchers,
/// held by value so that the matcher can be stored and reused):
/// `REQUIRE_THROWS_MATCHES(call, shape_error, MessageHas({"block \"b\"", "[8, 6]"}))` checks the exact
/// type and the message at once.
class MessageHas final : public Catch::MatcherBase<std::exception> {
 public:
  MessageHas(std::initializer_list<std::string> parts) {
    for (const std::string& p : parts) parts_.push_back(Contains(p));
  }
  bool match(const std::exception& e) const override {
    const std::string what = e.what();
    for (const auto& p : parts_)
      if (!p.match(what)) return false;
    return true;
  }
  std::string describe() const override {
    std::string d = "has a message that";
    for (std::size_t i = 0; i < parts_.size(); ++i) d += (i ? " and " : " ") + parts_[i].toString();
    return d;
  }

 private:
  std::vector<Catch::Matchers::StdString::ContainsMatcher> parts_;
};

/// `call` must throw `type` (matched by `matcher`) and, run again, be catchable as
/// `mhaprune::error`; `state()` (every byte, shape and id that could change) must be the same
/// before and after both.
#define REQUIRE_REJECTED(state, call, type, matcher)    \
  do {                                                  \
    const auto state_before_ = (state)();               \
    REQUIRE_THROWS_MATCHES(call, type, matcher);        \
    REQUIRE_THROWS_AS(call, mhaprune::error);           \
    const bool unchanged_ = (state)() == state_before_; \
    REQUIRE(unchanged_);                                \
  } while (false)

/// The grouped-query block most removal errors run on: H=8, H_kv=2, with biases and every extra.
BlockConfig gqa_config(Container container, StorageOrder order) {
  BlockConfig c;
  c.name = "layers.3.attn";
  c.heads = 8;
  c.kv_heads = 2;
  c.head_dim = 2;
  c.model_dim = 6;
  c.qkv = QkvLayout::grouped;
  c.storage.container = container;
  c.storage.order = order;
  c.storage.slack = container == Container::matrix ? 0 : 2;
  c.qkv_bias = true;
  c.output_bias = true;
  c.extras = true;
  return c;
}

BlockConfig mha_config(Container container, StorageOrder order) {
  BlockConfig c = gqa_config(container, order);
  c.kv_heads = 8;
  c.qkv = QkvLayout::separate;
  return c;
}

const Container all_containers[] = {Container::matrix, Container::map, Container::buffer};
const StorageOrder all_orders[] = {StorageOrder::row_major, StorageOrder::col_major};

/// Bookkeeping of a block that is not a RandomBlock: what `add` and `validate` must leave alone.
template <typename Scalar>
auto block_state(const mhaprune::AttentionBlock<Scalar>& b) {
  std::vector<std::vector<Index>> bound;
  for (const auto& t : b.tensors()) {
    std::vector<Index> v = {t.rows, t.cols};
    for (const auto& seg : t.segments) v.insert(v.end(), {seg.unit, seg.width});
    bound.push_back(std::move(v));
  }
  std::vector<std::string> names;
  for (const auto& t : b.tensors()) names.push_back(t.name);
  return std::make_tuple(b.layout().heads(), b.layout().kv_heads(), b.head_ids(), b.kv_head_ids(), bound,
                         names);
}

/// The bytes of a dense object's elements (compared with memcmp semantics by vector's ==).
template <typename M>
std::vector<unsigned char> bytes_of(const M& m) {
  const auto* p = reinterpret_cast<const unsigned char*>(m.data());
  return std::vector<unsigned char>(p, p + static_cast<std::size_t>(m.size()) * sizeof(*m.data()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Removal

TEST_CASE("removing every head is refused", "[remove][errors]") {
  for (Container container : all_containers) {
    for (StorageOrder order : all_orders) {
      for (const BlockConfig& config : {gqa_config(container, order), mha_config(container, order)}) {
        INFO(config.describe());
        RandomBlock<float> b(config, 7);
        auto state = [&] { return snapshot(b); };
        auto& blk = b.block();
        REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{0, 1, 2, 3, 4, 5, 6, 7}), removal_error,
                         MessageHas({"block \"layers.3.attn\"", "all 8 heads"}));
        REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds{7, 6, 5, 4, 3, 2, 1, 0}),
                         removal_error, MessageHas({"all 8 heads"}));
        HeadMask all(8);
        for (Index h = 0; h < 8; ++h) all.remove(h);
        REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, all), removal_error, MessageHas({"all 8 heads"}));
        std::vector<Index> every_kv(static_cast<std::size_t>(config.kv_heads));
        for (Index g = 0; g < config.kv_heads; ++g) every_kv[static_cast<std::size_t>(g)] = g;
        REQUIRE_REJECTED(state, mhaprune::remove_kv_heads(blk, OriginalIds(every_kv)), removal_error,
                         MessageHas({"all 8 heads"}));
        // After a first round, "every head" means every remaining one.
        mhaprune::remove_kv_heads(blk, OriginalIds{0});
        const Index left = blk.layout().heads();
        std::vector<Index> rest;
        for (Index id : blk.head_ids()) rest.push_back(id);
        REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds(rest)), removal_error,
                         MessageHas({"all " + std::to_string(left) + " heads"}));
        REQUIRE(b.check_contents() == "");
      }
    }
  }
}

TEST_CASE("bad head positions are refused", "[remove][errors]") {
  for (Container container : all_containers) {
    for (StorageOrder order : all_orders) {
      const BlockConfig config = mha_config(container, order);
      INFO(config.describe());
      RandomBlock<double> b(config, 11);
      auto state = [&] { return snapshot(b); };
      auto& blk = b.block();
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{8}), head_id_error,
                       MessageHas({"block \"layers.3.attn\"", "head position 8", "out of range [0, 8)"}));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{-1}), head_id_error,
                       MessageHas({"head position -1", "out of range"}));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{3, 1, 3}), head_id_error,
                       MessageHas({"head position 3", "named twice"}));
      // A valid prefix does not get applied when a later id is bad.
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{0, 1, 100}), head_id_error,
                       MessageHas({"head position 100"}));
      // Positions are current: after removing two heads, 6 is out of range.
      mhaprune::remove_heads(blk, Positions{0, 1});
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{6}), head_id_error,
                       MessageHas({"out of range [0, 6)"}));
      REQUIRE(b.check_contents() == "");
    }
  }
}

TEST_CASE("bad original ids are refused", "[remove][errors]") {
  for (Container container : all_containers) {
    for (StorageOrder order : all_orders) {
      const BlockConfig config = mha_config(container, order);
      INFO(config.describe());
      RandomBlock<float> b(config, 13);
      auto state = [&] { return snapshot(b); };
      auto& blk = b.block();
      mhaprune::remove_heads(blk, OriginalIds{2, 5});
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds{5}), head_id_error,
                       MessageHas({"block \"layers.3.attn\"", "original head 5", "already removed",
                                   "present: {0, 1, 3, 4, 6, 7}"}));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds{1, 2}), head_id_error,
                       MessageHas({"original head 2", "already removed"}));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds{8}), head_id_error,
                       MessageHas({"original head 8", "does not exist", "had 8 heads"}));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds{-3}), head_id_error,
                       MessageHas({"original head -3", "does not exist"}));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds{4, 4}), head_id_error,
                       MessageHas({"named twice"}));
      REQUIRE_REJECTED(state, mhaprune::remove_kv_heads(blk, OriginalIds{5}), head_id_error,
                       MessageHas({"original key/value head 5", "not present"}));
      REQUIRE_REJECTED(state, mhaprune::remove_kv_heads(blk, OriginalIds{42}), head_id_error,
                       MessageHas({"original key/value head 42"}));
      REQUIRE(b.check_contents() == "");
    }
  }
}

TEST_CASE("ragged grouped-query removals are refused", "[remove][errors][gqa]") {
  for (Container container : all_containers) {
    for (StorageOrder order : all_orders) {
      const BlockConfig config = gqa_config(container, order);
      INFO(config.describe());
      RandomBlock<float> b(config, 17);
      auto state = [&] { return snapshot(b); };
      auto& blk = b.block();
      REQUIRE_REJECTED(
          state, mhaprune::remove_heads(blk, Positions{0}), removal_error,
          MessageHas({"block \"layers.3.attn\"", "different numbers", "{3, 4}", "group size 4"}));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{0, 1, 4}), removal_error,
                       MessageHas({"{2, 3}"}));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds{7, 6, 5}), removal_error,
                       MessageHas({"{4, 1}"}));
      // Uniform, then a removal that is ragged only with respect to the new groups.
      mhaprune::remove_heads(blk, Positions{0, 4});
      REQUIRE(blk.layout() == HeadLayout(6, 2, 2, 6));
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, OriginalIds{1}), removal_error,
                       MessageHas({"{2, 3}", "group size 3"}));
      REQUIRE(b.check_contents() == "");
    }
  }
}

TEST_CASE("a head mask of the wrong length is refused", "[remove][errors]") {
  RandomBlock<double> b(gqa_config(Container::buffer, StorageOrder::col_major), 19);
  auto state = [&] { return snapshot(b); };
  auto& blk = b.block();
  for (Index n : {0, 7, 9}) {
    INFO("mask of " << n);
    HeadMask mask(n);
    REQUIRE_REJECTED(
        state, mhaprune::remove_heads(blk, mask), head_id_error,
        MessageHas({"block \"layers.3.attn\"", "mask has " + std::to_string(n) + " entries", "8 heads"}));
  }
  // The mask itself refuses what it cannot hold, as an mhaprune::error too.
  REQUIRE_THROWS_MATCHES(HeadMask(-1), head_id_error, MessageHas({"-1"}));
  HeadMask mask(8);
  REQUIRE_THROWS_MATCHES(mask.remove(8), head_id_error, MessageHas({"head 8", "[0, 8)"}));
  REQUIRE_THROWS_AS(mask.keeps(-1), mhaprune::error);
  REQUIRE(mask.removed_count() == 0);
}

// ---------------------------------------------------------------------------------------------
// Binding

namespace {

/// An empty block and the checks a rejected `add` must pass: the message names the block, the
/// tensor and both shapes, and neither the block nor the rejected tensor changed.
struct AddFixture {
  HeadLayout layout{4, 2, 2, 6};  // Q [8, 6], K/V [4, 6], O [6, 8]
  mhaprune::AttentionBlock<float> block{"enc.0.attn", layout};
};

Eigen::MatrixXd ones(Index r, Index c) { return Eigen::MatrixXd::Constant(r, c, 0.5); }

}  // namespace

TEST_CASE("a tensor of the wrong shape is refused at add", "[add][errors]") {
  for (Container container : all_containers) {
    for (StorageOrder order : all_orders) {
      Storage storage;
      storage.container = container;
      storage.order = order;
      storage.slack = container == Container::matrix ? 0 : 1;
      INFO(to_string(container) << '/' << to_string(order));
      AddFixture f;
      // Bind a correct Q first, so a rejection must also leave bound tensors alone.
      TestTensor<float> good_q(ones(8, 6), storage);
      good_q.visit([&](auto& o) { f.block.add(layout::query(o)); });

      struct Case {
        const char* what;
        Index rows, cols;
        const char* expected;
        std::function<mhaprune::TensorSpec<float>(TestTensor<float>&)> spec;
      };
      auto by = [](auto adapter) {
        return [adapter](TestTensor<float>& t) { return t.visit([&](auto& o) { return adapter(o); }); };
      };
      const std::vector<Case> cases = {
          {"q2", 7, 6, "[8, 6]", by([](auto& o) { return layout::query(o).named("q2"); })},
          {"key.weight", 4, 5, "[4, 6]", by([](auto& o) { return layout::key(o); })},
          {"value.weight", 6, 6, "[4, 6]", by([](auto& o) { return layout::value(o); })},
          {"output.weight", 6, 9, "[6, 8]", by([](auto& o) { return layout::output(o); })},
          {"output.weight", 8, 6, "[6, 8]", by([](auto& o) { return layout::output(o); })},
          {"c_proj.weight", 6, 8, "[8, 6]", by([](auto& o) {
             return layout::output(o).named("c_proj.weight").stored_as(Orientation::in_out);
           })},
          {"c_attn.weight", 16, 6, "[6, 16]", by([](auto& o) {
             return layout::qkv_concat(o).named("c_attn.weight").stored_as(Orientation::in_out);
           })},
          {"qkv.weight", 15, 6, "[16, 6]", by([](auto& o) { return layout::qkv_concat(o); })},
          {"query_key_value.weight", 16, 7, "[16, 6]", by([](auto& o) { return layout::qkv_grouped(o); })},
          {"query.bias", 7, 1, "length 8", by([](auto& o) { return layout::query_bias(o); })},
          {"key.bias", 1, 5, "length 4", by([](auto& o) { return layout::key_bias(o); })},
          {"value.bias", 2, 2, "length 4", by([](auto& o) { return layout::value_bias(o); })},
          {"output.bias", 8, 1, "length 6", by([](auto& o) { return layout::output_bias(o); })},
          {"qkv.bias", 15, 1, "length 16", by([](auto& o) { return layout::qkv_concat_bias(o); })},
          {"query_key_value.bias", 2, 8, "length 16",
           by([](auto& o) { return layout::qkv_grouped_bias(o); })},
          {"alibi_slopes", 3, 1, "rows (3)", by([](auto& o) { return layout::alibi_slopes(o); })},
          {"sinks", 1, 5, "columns (5)", by([](auto& o) { return layout::attention_sinks(o); })},
          {"rel_bias", 32, 3, "columns (3)",
           by([](auto& o) { return layout::per_head("rel_bias", o, Axis::cols); })},
          {"head_norm", 7, 1, "rows (7)", by([](auto& o) { return layout::per_head("head_norm", o); })},
          {"k_norm", 5, 1, "rows (5)", by([](auto& o) {
             return layout::per_head("k_norm", o, Axis::rows, mhaprune::Role::extra,
                                     mhaprune::Owner::kv_head);
           })},
      };
      for (const Case& c : cases) {
        INFO(c.what << " as [" << c.rows << ", " << c.cols << "]");
        TestTensor<float> bad(ones(c.rows, c.cols), storage);
        auto state = [&] {
          return std::make_tuple(block_state(f.block), good_q.bytes(), bad.bytes(), bad.rows(), bad.cols());
        };
        const std::string got = mhaprune::detail::shape_string(c.rows, c.cols);
        REQUIRE_REJECTED(state, f.block.add(c.spec(bad)), shape_error,
                         MessageHas({"block \"enc.0.attn\"", std::string("\"") + c.what + "\"", c.expected,
                                     got, "H=4, H_kv=2, d=2, D=6"}));
      }
      REQUIRE(f.block.tensors().size() == 1);
    }
  }
}

TEST_CASE("binding the same object twice, or two tensors under one name, is refused", "[add][errors]") {
  AddFixture f;
  Eigen::MatrixXf q = Eigen::MatrixXf::Ones(8, 6), k = Eigen::MatrixXf::Ones(4, 6);
  f.block.add(layout::query(q));
  auto state = [&] { return std::make_tuple(block_state(f.block), bytes_of(q), q.rows(), q.cols()); };
  REQUIRE_REJECTED(
      state, f.block.add(layout::query(q).named("again")), mhaprune::storage_error,
      MessageHas({"block \"enc.0.attn\"", "tensor \"again\"", "already bound as \"query.weight\""}));
  // The object check comes before the shape check: Q is not a valid K, but the message is about binding.
  REQUIRE_REJECTED(state, f.block.add(layout::key(q)), mhaprune::storage_error,
                   MessageHas({"already bound as \"query.weight\""}));
  // The same Map object twice; a second Map over the same memory is a different object.
  Eigen::Map<Eigen::MatrixXf> kmap(k.data(), 4, 6);
  f.block.add(layout::key(kmap));
  REQUIRE_REJECTED(state, f.block.add(layout::value(kmap)), mhaprune::storage_error,
                   MessageHas({"tensor \"value.weight\"", "already bound as \"key.weight\""}));
  Eigen::MatrixXf other_k = Eigen::MatrixXf::Ones(4, 6);
  REQUIRE_REJECTED(state, f.block.add(layout::key(other_k)), mhaprune::storage_error,
                   MessageHas({"tensor \"key.weight\"", "of that name is already bound"}));
  REQUIRE(f.block.tensors().size() == 2);
}

TEST_CASE("unusable MatrixBuffers are refused", "[add][errors][storage]") {
  AddFixture f;
  std::vector<float> memory(48, 1.0f);
  auto state = [&] {
    return std::make_tuple(block_state(f.block), bytes_of(Eigen::Map<Eigen::VectorXf>(memory.data(), 48)));
  };
  mhaprune::MatrixBuffer<float> small{memory.data(), 47, 8, 6, StorageOrder::row_major};
  REQUIRE_REJECTED(state, f.block.add(layout::query(small)), storage_error,
                   MessageHas({"block \"enc.0.attn\"", "tensor \"query.weight\"",
                               "MatrixBuffer holds 47 elements", "[8, 6] (48 elements)"}));
  mhaprune::MatrixBuffer<float> null_data{nullptr, 48, 8, 6, StorageOrder::col_major};
  REQUIRE_REJECTED(state, f.block.add(layout::query(null_data)), storage_error,
                   MessageHas({"tensor \"query.weight\"", "MatrixBuffer of shape [8, 6]", "has no data"}));
  mhaprune::MatrixBuffer<float> negative{memory.data(), 48, -8, 6, StorageOrder::row_major};
  REQUIRE_REJECTED(state, f.block.add(layout::query(negative)), storage_error, MessageHas({"[-8, 6]"}));
  mhaprune::TensorSpec<float> unbound;
  unbound.name = "nothing";
  REQUIRE_REJECTED(state, f.block.add(unbound), storage_error, MessageHas({"tensor \"nothing\": no tensor"}));
  // A buffer of exactly the right capacity is fine.
  mhaprune::MatrixBuffer<float> exact{memory.data(), 48, 8, 6, StorageOrder::row_major};
  REQUIRE_NOTHROW(f.block.add(layout::query(exact)));
}

TEST_CASE("a tensor changed by the caller after binding is noticed before anything moves",
          "[remove][errors]") {
  for (Container container : all_containers) {
    for (StorageOrder order : all_orders) {
      const BlockConfig config = gqa_config(container, order);
      INFO(config.describe());
      RandomBlock<float> b(config, 23);
      auto state = [&] { return snapshot(b); };
      auto& blk = b.block();
      TestTensor<float>& k = b.tensor("output.weight");  // [6, 16]
      // What a caller might do: shrink the matrix, re-seat the Map, or edit the buffer's shape.
      k.visit([](auto& o) {
        using O = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<O, mhaprune::MatrixBuffer<float>>) {
          o.cols -= 1;
        } else if constexpr (mhaprune::detail::is_plain_map<O>::value) {
          float* p = o.data();
          const Index r = o.rows(), c = o.cols();
          new (&o) O(p, r, c - 1);
        } else {
          o.conservativeResize(o.rows(), o.cols() - 1);
        }
      });
      REQUIRE(k.cols() == 15);
      const MessageHas message{"block \"layers.3.attn\"", "tensor \"output.weight\"",
                               "shape changed since it was bound", "expected [6, 16]", "got [6, 15]"};
      REQUIRE_THROWS_MATCHES(blk.validate(), shape_error, message);
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{0, 4}), shape_error, message);
      REQUIRE_REJECTED(state, mhaprune::remove_kv_heads(blk, OriginalIds{1}), shape_error, message);
      REQUIRE_REJECTED(state, mhaprune::remove_heads(blk, Positions{}), shape_error, message);
      REQUIRE_THROWS_AS(mhaprune::reference::attention(Eigen::MatrixXd::Zero(3, 6), blk), shape_error);
    }
  }
}

TEST_CASE("a MatrixBuffer whose memory went away after binding is noticed", "[remove][errors][storage]") {
  RandomBlock<double> b(gqa_config(Container::buffer, StorageOrder::row_major), 29);
  auto state = [&] { return snapshot(b); };
  auto& q = std::get<mhaprune::MatrixBuffer<double>>(b.tensor("query_key_value.weight").object());
  const Index capacity = q.capacity;
  q.capacity = q.rows * q.cols - 1;
  REQUIRE_REJECTED(state, mhaprune::remove_kv_heads(b.block(), OriginalIds{0}), storage_error,
                   MessageHas({"tensor \"query_key_value.weight\"", "too few"}));
  q.capacity = capacity;
  double* data = q.data;
  q.data = nullptr;
  REQUIRE_REJECTED(state, mhaprune::remove_kv_heads(b.block(), OriginalIds{0}), storage_error,
                   MessageHas({"tensor \"query_key_value.weight\"", "has no data"}));
  q.data = data;
  REQUIRE_NOTHROW(mhaprune::remove_kv_heads(b.block(), OriginalIds{0}));
  REQUIRE(b.check_contents() == "");
}

TEST_CASE("Q, K, V and O must each be bound exactly once", "[validate][errors]") {
  const HeadLayout L(4, 2, 2, 6);
  Eigen::MatrixXf q = Eigen::MatrixXf::Random(8, 6), k = Eigen::MatrixXf::Random(4, 6),
                  v = Eigen::MatrixXf::Random(4, 6), o = Eigen::MatrixXf::Random(6, 8),
                  qkv = Eigen::MatrixXf::Random(16, 6), bq = Eigen::MatrixXf::Random(8, 1),
                  bqkv = Eigen::MatrixXf::Random(16, 1);
  auto state = [&](const mhaprune::AttentionBlock<float>& blk) {
    return [&] {
      return std::make_tuple(block_state(blk), bytes_of(q), bytes_of(k), bytes_of(v), bytes_of(o),
                             bytes_of(qkv), bytes_of(bq), bytes_of(bqkv));
    };
  };

  SECTION("one missing") {
    for (const char* missing : {"query", "key", "value", "output"}) {
      INFO("missing " << missing);
      mhaprune::AttentionBlock<float> blk("dec.1.self_attn", L);
      if (std::string(missing) != "query") blk.add(layout::query(q));
      if (std::string(missing) != "key") blk.add(layout::key(k));
      if (std::string(missing) != "value") blk.add(layout::value(v));
      if (std::string(missing) != "output") blk.add(layout::output(o));
      const MessageHas message{"block \"dec.1.self_attn\"",
                               std::string("the ") + missing + " weight is missing"};
      REQUIRE_THROWS_MATCHES(blk.validate(), shape_error, message);
      REQUIRE_REJECTED(state(blk), mhaprune::remove_heads(blk, Positions{0, 2}), shape_error, message);
    }
  }
  SECTION("Q bound twice, separately and inside a fused QKV") {
    mhaprune::AttentionBlock<float> blk("dec.1.self_attn", L);
    blk.add(layout::query(q)).add(layout::qkv_concat(qkv)).add(layout::output(o));
    const MessageHas message{"the query weight is bound more than once", "query head 0"};
    REQUIRE_THROWS_MATCHES(blk.validate(), shape_error, message);
    REQUIRE_REJECTED(state(blk), mhaprune::remove_heads(blk, Positions{0, 2}), shape_error, message);
  }
  SECTION("a bias bound twice") {
    mhaprune::AttentionBlock<float> blk("dec.1.self_attn", L);
    blk.add(layout::qkv_concat(qkv))
        .add(layout::output(o))
        .add(layout::query_bias(bq))
        .add(layout::qkv_concat_bias(bqkv));
    const MessageHas message{"the query bias is bound more than once"};
    REQUIRE_THROWS_MATCHES(blk.validate(), shape_error, message);
    REQUIRE_REJECTED(state(blk), mhaprune::remove_heads(blk, Positions{0, 2}), shape_error, message);
  }
  SECTION("an empty block") {
    mhaprune::AttentionBlock<float> blk("dec.1.self_attn", L);
    REQUIRE_THROWS_MATCHES(blk.validate(), shape_error, MessageHas({"the query weight is missing"}));
  }
  SECTION("complete") {
    mhaprune::AttentionBlock<float> blk("dec.1.self_attn", L);
    blk.add(layout::qkv_concat(qkv)).add(layout::output(o)).add(layout::qkv_concat_bias(bqkv));
    REQUIRE_NOTHROW(blk.validate());
  }
}

TEST_CASE("the per-head interleaved QKV layout is refused for grouped-query attention",
          "[add][errors][gqa]") {
  for (auto [heads, kv_heads] : std::vector<std::pair<Index, Index>>{{4, 2}, {6, 3}, {4, 1}}) {
    mhaprune::AttentionBlock<float> blk("gpt_neox.layers.0.attention", HeadLayout(heads, kv_heads, 2, 6));
    Eigen::MatrixXf w = Eigen::MatrixXf::Ones(3 * heads * 2, 6), b = Eigen::MatrixXf::Ones(3 * heads * 2, 1);
    auto state = [&] { return std::make_tuple(block_state(blk), bytes_of(w), bytes_of(b)); };
    const std::string numbers = "H=" + std::to_string(heads) + ", H_kv=" + std::to_string(kv_heads);
    REQUIRE_REJECTED(state, blk.add(layout::qkv_interleaved(w)), layout_error,
                     MessageHas({"block \"gpt_neox.layers.0.attention\"", "tensor \"query_key_value.weight\"",
                                 "qkv_interleaved", numbers, "qkv_grouped"}));
    REQUIRE_REJECTED(state, blk.add(layout::qkv_interleaved_bias(b)), layout_error,
                     MessageHas({"tensor \"query_key_value.bias\"", numbers}));
  }
}

TEST_CASE("impossible head layouts are refused with their numbers", "[layout][errors]") {
  REQUIRE_THROWS_MATCHES(HeadLayout(0, 1, 2, 8), layout_error, MessageHas({"heads=0, kv_heads=1"}));
  REQUIRE_THROWS_MATCHES(HeadLayout(4, -2, 2, 8), layout_error, MessageHas({"kv_heads=-2"}));
  REQUIRE_THROWS_MATCHES(HeadLayout(4, 2, 0, 8), layout_error, MessageHas({"head_dim=0"}));
  REQUIRE_THROWS_MATCHES(HeadLayout(4, 2, 2, -1), layout_error, MessageHas({"model_dim=-1"}));
  REQUIRE_THROWS_MATCHES(HeadLayout(8, 3, 2, 8), layout_error, MessageHas({"heads (8)", "kv_heads (3)"}));
  REQUIRE_THROWS_AS(HeadLayout(6, 4, 2, 8), mhaprune::error);
}

TEST_CASE("every mhaprune exception type is an mhaprune::error and a std::runtime_error", "[errors]") {
  STATIC_REQUIRE(std::is_base_of_v<mhaprune::error, layout_error>);
  STATIC_REQUIRE(std::is_base_of_v<mhaprune::error, shape_error>);
  STATIC_REQUIRE(std::is_base_of_v<mhaprune::error, storage_error>);
  STATIC_REQUIRE(std::is_base_of_v<mhaprune::error, head_id_error>);
  STATIC_REQUIRE(std::is_base_of_v<mhaprune::error, removal_error>);
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, mhaprune::error>);
}

}  // namespace test_remove_errors
