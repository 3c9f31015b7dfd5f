// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "attention_layer.hpp"
#include "mhaprune/io/safetensors.hpp"
#include "qwen2.hpp"  // read_json
#include "token_batch.hpp"

namespace tiny_lm {

/// (x - mean) / sqrt(var + eps) * weight + bias per token (row), biased variance.
inline Matrix layer_norm(const Matrix& x, const Vector& weight, const Vector& bias, float eps) {
  const auto D = static_cast<float>(x.cols());
  const Eigen::VectorXf mean = x.rowwise().sum() / D;
  Matrix centred = x.colwise() - mean;
  const Eigen::ArrayXf inv = (centred.rowwise().squaredNorm().array() / D + eps).rsqrt();
  centred = (centred.array().colwise() * inv).matrix() * weight.asDiagonal();
  return centred.rowwise() + bias.transpose();
}

/// 0.5 x (1 + erf(x / sqrt 2)), the exact GELU.
inline Matrix gelu(const Matrix& x) {
  return x.unaryExpr([](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); });
}

/// A BERT encoder with its masked-LM head: learned absolute positions, post-LN layers, exact GELU,
/// decoder tied to the word embeddings. The attention layers may have lost heads.
class Bert {
 public:
  static constexpr const char* kind = "encoder";
  /// The [MASK] token: byte 0, which never occurs in the text.
  static constexpr int mask_token = 0;

  /// Reads `dir`/config.json and `dir`/model.safetensors (any float dtype, decoded to float).
  explicit Bert(const std::string& dir) {
    const nlohmann::json c = read_json(dir + "/config.json");
    const auto D = c.at("hidden_size").get<Index>(), H = c.at("num_attention_heads").get<Index>();
    const auto layers = c.at("num_hidden_layers").get<Index>();
    eps_ = c.at("layer_norm_eps").get<float>();

    const mhaprune::io::SafetensorsReader in(dir + "/model.safetensors");
    const auto matrix = [&](const std::string& name) { return in.tensor(name).read_matrix<float>(); };
    const auto vector = [&](const std::string& name) { return in.tensor(name).read_vector<float>(); };
    word_ = matrix("bert.embeddings.word_embeddings.weight");
    position_ = matrix("bert.embeddings.position_embeddings.weight");
    token_type_ = matrix("bert.embeddings.token_type_embeddings.weight");
    embed_norm_ = {vector("bert.embeddings.LayerNorm.weight"), vector("bert.embeddings.LayerNorm.bias")};
    for (Index l = 0; l < layers; ++l) {
      const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
      Layer layer;
      auto& a = *(layer.attention = std::make_unique<AttentionLayer>(p + "attention",
                                                                     mhaprune::HeadLayout::mha(H, D / H, D)));
      a.q = matrix(p + "attention.self.query.weight");
      a.k = matrix(p + "attention.self.key.weight");
      a.v = matrix(p + "attention.self.value.weight");
      a.o = matrix(p + "attention.output.dense.weight");
      a.q_bias = vector(p + "attention.self.query.bias");
      a.k_bias = vector(p + "attention.self.key.bias");
      a.v_bias = vector(p + "attention.self.value.bias");
      a.o_bias = vector(p + "attention.output.dense.bias");
      a.bind();
      layer.attention_norm = {vector(p + "attention.output.LayerNorm.weight"),
                              vector(p + "attention.output.LayerNorm.bias")};
      layer.up = matrix(p + "intermediate.dense.weight");
      layer.up_bias = vector(p + "intermediate.dense.bias");
      layer.down = matrix(p + "output.dense.weight");
      layer.down_bias = vector(p + "output.dense.bias");
      layer.output_norm = {vector(p + "output.LayerNorm.weight"), vector(p + "output.LayerNorm.bias")};
      layers_.push_back(std::move(layer));
    }
    transform_ = matrix("cls.predictions.transform.dense.weight");
    transform_bias_ = vector("cls.predictions.transform.dense.bias");
    transform_norm_ = {vector("cls.predictions.transform.LayerNorm.weight"),
                       vector("cls.predictions.transform.LayerNorm.bias")};
    decoder_bias_ = vector("cls.predictions.bias");
  }

  /// Masked-LM prediction (README's BERT protocol): position p of sequence s (index in the file) is
  /// masked, and predicted, iff (p + s) % 7 == 0.
  static TokenBatch batch(const std::vector<std::string>& sequences) {
    TokenBatch b;
    b.sequences = static_cast<Index>(sequences.size());
    b.length = static_cast<Index>(sequences.front().size());
    for (Index s = 0; s < b.sequences; ++s) {
      for (Index p = 0; p < b.length; ++p) {
        const int byte = byte_token(sequences[static_cast<std::size_t>(s)][static_cast<std::size_t>(p)]);
        const bool masked = (p + s) % 7 == 0;
        b.inputs.push_back(masked ? mask_token : byte);
        b.targets.push_back(masked ? byte : -1);
      }
    }
    return b;
  }

  Index layers() const { return static_cast<Index>(layers_.size()); }
  AttentionLayer& attention(Index l) { return *layers_[static_cast<std::size_t>(l)].attention; }
  const AttentionLayer& attention(Index l) const { return *layers_[static_cast<std::size_t>(l)].attention; }
  /// Prefix of layer l's entries in head_gate_grads.safetensors.
  static std::string gate_prefix(Index l) {
    return "bert.encoder.layer." + std::to_string(l) + ".attention.self.head_gate";
  }
  /// Layer l's key in a calibration statistics file: its O projection's weight name minus ".weight".
  static std::string stats_key(Index l) {
    return "bert.encoder.layer." + std::to_string(l) + ".attention.output.dense";
  }

  /// The last layer's output `[tokens, D]`. Calls `observe(layer, o_input)` with every layer's O input
  /// `[tokens, H*d]`, the concatenated head outputs, before O is applied.
  /// `observe_residual(layer, x)`, when given, sees the residual stream `[tokens, D]` that layer's
  /// attention output is added to.
  /// `observe_attended(layer, u)`, when given, sees every layer's attended inputs `[tokens, H*D]`
  /// (`attended_inputs`: V's input as each head's attention weights mix it).
  template <typename Observer, typename ResidualObserver = IgnoreResidual,
            typename AttendedObserver = IgnoreResidual>
  Matrix hidden(const TokenBatch& batch, Observer&& observe, ResidualObserver&& observe_residual = {},
                AttendedObserver&& observe_attended = {}) const {
    const Index N = batch.sequences * batch.length, T = batch.length;
    Matrix x(N, word_.cols());
    for (Index n = 0; n < N; ++n)
      x.row(n) =
          word_.row(batch.inputs[static_cast<std::size_t>(n)]) + position_.row(n % T) + token_type_.row(0);
    x = embed_norm_(x, eps_);
    for (Index l = 0; l < layers(); ++l) {
      const Layer& layer = layers_[static_cast<std::size_t>(l)];
      const AttentionLayer& a = *layer.attention;
      const Matrix q = (x * a.q.transpose()).rowwise() + a.q_bias.transpose();
      const Matrix k = (x * a.k.transpose()).rowwise() + a.k_bias.transpose();
      const Matrix v = (x * a.v.transpose()).rowwise() + a.v_bias.transpose();
      Matrix heads(N, a.block.layout().query_width());
      for (Index s = 0; s < batch.sequences; ++s) {
        heads.middleRows(s * T, T) =
            attend(q.middleRows(s * T, T), k.middleRows(s * T, T), v.middleRows(s * T, T), a.block, false);
      }
      if constexpr (!std::is_same_v<std::decay_t<AttendedObserver>, IgnoreResidual>) {
        observe_attended(l, attended_inputs(q, k, x, a.block, T, false));
      }
      observe(l, heads);
      observe_residual(l, static_cast<const Matrix&>(x));
      x = layer.attention_norm(x + a.project_output(heads), eps_);
      const Matrix inner = gelu((x * layer.up.transpose()).rowwise() + layer.up_bias.transpose());
      x = layer.output_norm((x + inner * layer.down.transpose()).rowwise() + layer.down_bias.transpose(),
                            eps_);
    }
    return x;
  }

  /// MLM logits `[rows, vocab]` of encoder outputs.
  Matrix logits(const Matrix& hidden) const {
    const Matrix t = transform_norm_(
        gelu((hidden * transform_.transpose()).rowwise() + transform_bias_.transpose()), eps_);
    return (t * word_.transpose()).rowwise() + decoder_bias_.transpose();
  }

 private:
  struct Norm {
    Vector weight, bias;
    Matrix operator()(const Matrix& x, float eps) const { return layer_norm(x, weight, bias, eps); }
  };
  struct Layer {
    std::unique_ptr<AttentionLayer> attention;
    Norm attention_norm, output_norm;
    RowMatrix up, down;  // [I, D], [D, I]
    Vector up_bias, down_bias;
  };

  RowMatrix word_, position_, token_type_;  // [vocab | positions | types, D]
  Norm embed_norm_;
  std::vector<Layer> layers_;
  RowMatrix transform_;
  Vector transform_bias_;
  Norm transform_norm_;
  Vector decoder_bias_;
  float eps_ = 1e-12f;
};

}  // namespace tiny_lm
