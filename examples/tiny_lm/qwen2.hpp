// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "attention_layer.hpp"
#include "mhaprune/io/safetensors.hpp"
#include "token_batch.hpp"

namespace tiny_lm {

/// x / sqrt(mean(x²) + eps) * weight, per token (row).
inline Matrix rms_norm(const Matrix& x, const Vector& weight, float eps) {
  const Eigen::ArrayXf inv =
      ((x.rowwise().squaredNorm().array() / static_cast<float>(x.cols())) + eps).rsqrt();
  return (x.array().colwise() * inv).matrix() * weight.asDiagonal();
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

/// A Qwen2 (LLaMA-style) decoder: embeddings, RMSNorm, RoPE (HF `rotate_half`), grouped-query
/// attention with q/k/v biases, SwiGLU MLP, LM head tied to the embeddings. The attention layers may
/// have lost heads; everything else keeps its shape.
class Qwen2 {
 public:
  static constexpr const char* kind = "decoder";

  /// Reads `dir`/config.json and `dir`/model.safetensors (any float dtype, decoded to float).
  explicit Qwen2(const std::string& dir) {
    const nlohmann::json c = read_json(dir + "/config.json");
    const auto D = c.at("hidden_size").get<Index>(), H = c.at("num_attention_heads").get<Index>();
    const auto H_kv = c.at("num_key_value_heads").get<Index>(),
               layers = c.at("num_hidden_layers").get<Index>();
    eps_ = c.at("rms_norm_eps").get<float>();
    rope_theta_ = c.at("rope_theta").get<double>();
    head_dim_ = D / H;

    const mhaprune::io::SafetensorsReader in(dir + "/model.safetensors");
    const auto matrix = [&](const std::string& name) { return in.tensor(name).read_matrix<float>(); };
    const auto vector = [&](const std::string& name) { return in.tensor(name).read_vector<float>(); };
    embed_ = matrix("model.embed_tokens.weight");
    final_norm_ = vector("model.norm.weight");
    for (Index l = 0; l < layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      Layer layer;
      layer.input_norm = vector(p + "input_layernorm.weight");
      layer.post_norm = vector(p + "post_attention_layernorm.weight");
      layer.gate = matrix(p + "mlp.gate_proj.weight");
      layer.up = matrix(p + "mlp.up_proj.weight");
      layer.down = matrix(p + "mlp.down_proj.weight");
      auto& a = *(layer.attention = std::make_unique<AttentionLayer>(
                      p + "self_attn", mhaprune::HeadLayout(H, H_kv, head_dim_, D)));
      a.q = matrix(p + "self_attn.q_proj.weight");
      a.k = matrix(p + "self_attn.k_proj.weight");
      a.v = matrix(p + "self_attn.v_proj.weight");
      a.o = matrix(p + "self_attn.o_proj.weight");
      a.q_bias = vector(p + "self_attn.q_proj.bias");
      a.k_bias = vector(p + "self_attn.k_proj.bias");
      a.v_bias = vector(p + "self_attn.v_proj.bias");
      a.bind();
      layers_.push_back(std::move(layer));
    }
  }

  /// Next-byte prediction (README's decoder protocol): inputs bytes 0..126 of each sequence, targets 1..127.
  static TokenBatch batch(const std::vector<std::string>& sequences) {
    TokenBatch b;
    b.sequences = static_cast<Index>(sequences.size());
    b.length = static_cast<Index>(sequences.front().size()) - 1;
    for (const std::string& s : sequences) {
      for (Index i = 0; i < b.length; ++i) {
        b.inputs.push_back(byte_token(s[static_cast<std::size_t>(i)]));
        b.targets.push_back(byte_token(s[static_cast<std::size_t>(i + 1)]));
      }
    }
    return b;
  }

  Index layers() const { return static_cast<Index>(layers_.size()); }
  AttentionLayer& attention(Index l) { return *layers_[static_cast<std::size_t>(l)].attention; }
  const AttentionLayer& attention(Index l) const { return *layers_[static_cast<std::size_t>(l)].attention; }
  /// Prefix of layer l's entries in head_gate_grads.safetensors.
  static std::string gate_prefix(Index l) {
    return "model.layers." + std::to_string(l) + ".self_attn.head_gate";
  }
  /// Layer l's key in a calibration statistics file: its O projection's weight name minus ".weight".
  static std::string stats_key(Index l) { return "model.layers." + std::to_string(l) + ".self_attn.o_proj"; }

  /// The final hidden states `[tokens, D]` (after the last RMSNorm). Calls `observe(layer, o_input)` with
  /// every layer's O input `[tokens, H*d]`, the concatenated head outputs, before O is applied.
  /// `observe_residual(layer, x)`, when given, sees the residual stream `[tokens, D]` that layer's
  /// attention output is added to.
  /// `observe_attended(layer, u)`, when given, sees every layer's attended inputs `[tokens, H*D]`
  /// (`attended_inputs`: V's input as each head's attention weights mix it).
  template <typename Observer, typename ResidualObserver = IgnoreResidual,
            typename AttendedObserver = IgnoreResidual>
  Matrix hidden(const TokenBatch& batch, Observer&& observe, ResidualObserver&& observe_residual = {},
                AttendedObserver&& observe_attended = {}) const {
    const Index N = batch.sequences * batch.length, T = batch.length;
    Matrix x(N, embed_.cols());
    for (Index n = 0; n < N; ++n) x.row(n) = embed_.row(batch.inputs[static_cast<std::size_t>(n)]);
    const auto [cos, sin] = rope_tables(T);
    for (Index l = 0; l < layers(); ++l) {
      const Layer& layer = layers_[static_cast<std::size_t>(l)];
      const AttentionLayer& a = *layer.attention;
      Matrix h = rms_norm(x, layer.input_norm, eps_);
      Matrix q = (h * a.q.transpose()).rowwise() + a.q_bias.transpose();
      Matrix k = (h * a.k.transpose()).rowwise() + a.k_bias.transpose();
      const Matrix v = (h * a.v.transpose()).rowwise() + a.v_bias.transpose();
      apply_rope(q, cos, sin, T);
      apply_rope(k, cos, sin, T);
      Matrix heads(N, a.block.layout().query_width());
      for (Index s = 0; s < batch.sequences; ++s) {
        heads.middleRows(s * T, T) =
            attend(q.middleRows(s * T, T), k.middleRows(s * T, T), v.middleRows(s * T, T), a.block, true);
      }
      if constexpr (!std::is_same_v<std::decay_t<AttendedObserver>, IgnoreResidual>) {
        observe_attended(l, attended_inputs(q, k, h, a.block, T, true));
      }
      observe(l, heads);
      observe_residual(l, static_cast<const Matrix&>(x));
      x += a.project_output(heads);

      h = rms_norm(x, layer.post_norm, eps_);
      const Eigen::ArrayXXf gate = (h * layer.gate.transpose()).array();
      const Eigen::ArrayXXf up = (h * layer.up.transpose()).array();
      x += (gate / (1.0f + (-gate).exp()) * up).matrix() * layer.down.transpose();
    }
    return rms_norm(x, final_norm_, eps_);
  }

  /// Logits `[rows, vocab]` of final hidden states (tied LM head).
  Matrix logits(const Matrix& hidden) const { return hidden * embed_.transpose(); }

 private:
  struct Layer {
    Vector input_norm, post_norm;
    std::unique_ptr<AttentionLayer> attention;
    RowMatrix gate, up, down;  // [I, D], [I, D], [D, I]
  };

  // cos/sin of pos * theta^(-2j/d), in double then rounded to float, duplicated over both halves.
  std::pair<Matrix, Matrix> rope_tables(Index T) const {
    Matrix cos(T, head_dim_), sin(T, head_dim_);
    const Index half = head_dim_ / 2;
    for (Index p = 0; p < T; ++p) {
      for (Index j = 0; j < half; ++j) {
        const double angle =
            static_cast<double>(p) *
            std::pow(rope_theta_, -2.0 * static_cast<double>(j) / static_cast<double>(head_dim_));
        cos(p, j) = cos(p, j + half) = static_cast<float>(std::cos(angle));
        sin(p, j) = sin(p, j + half) = static_cast<float>(std::sin(angle));
      }
    }
    return {cos, sin};
  }

  // x*cos + rotate_half(x)*sin on every head of every token, rotate_half([x1, x2]) = [-x2, x1].
  void apply_rope(Matrix& x, const Matrix& cos, const Matrix& sin, Index T) const {
    const Index half = head_dim_ / 2;
    for (Index n = 0; n < x.rows(); ++n) {
      const Index p = n % T;
      for (Index base = 0; base < x.cols(); base += head_dim_) {
        for (Index j = 0; j < half; ++j) {
          const float x1 = x(n, base + j), x2 = x(n, base + j + half);
          x(n, base + j) = x1 * cos(p, j) - x2 * sin(p, j);
          x(n, base + j + half) = x2 * cos(p, j + half) + x1 * sin(p, j + half);
        }
      }
    }
  }

  RowMatrix embed_;  // [vocab, D]
  Vector final_norm_;
  std::vector<Layer> layers_;
  float eps_ = 1e-6f;
  double rope_theta_ = 10000.0;
  Index head_dim_ = 0;
};

}  // namespace tiny_lm
