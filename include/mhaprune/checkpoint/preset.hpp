// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mhaprune/checkpoint/architecture_preset.hpp"
#include "mhaprune/checkpoint/builtin_presets.hpp"
#include "mhaprune/checkpoint/user_preset.hpp"

/// The built-in presets: the documents of builtin_presets.hpp, read by `preset_from_json` like a
/// user's preset file, each once (on first use; the function-local statics make that thread-safe).
/// `model_type` refines the LLaMA family (Qwen2 and Mistral cannot hold an O bias; LLaMA can,
/// through `attention_bias`).
namespace mhaprune::checkpoint::presets {

namespace detail {
/// The built-in document `documents::<id>` as a preset.
/// @throws preset_error if it is not a valid preset, or not JSON (a bug the tests catch).
inline ArchitecturePreset read_builtin(std::string_view document, const char* id) {
  // Not JSON reads as a "discarded" value, which preset_from_json reports as a preset_error.
  return preset_from_json(nlohmann::json::parse(document, nullptr, false),
                          std::string("mhaprune/checkpoint/builtin_presets.hpp documents::") + id);
}
}  // namespace detail

/// BERT, RoBERTa, XLM-R, ELECTRA... (`documents::bert`).
inline ArchitecturePreset bert() {
  static const ArchitecturePreset p = detail::read_builtin(documents::bert, "bert");
  return p;
}

/// ViT, DeiT, DINOv2... (`documents::vit`).
inline ArchitecturePreset vit() {
  static const ArchitecturePreset p = detail::read_builtin(documents::vit, "vit");
  return p;
}

/// GPT-2 (`documents::gpt2`).
inline ArchitecturePreset gpt2() {
  static const ArchitecturePreset p = detail::read_builtin(documents::gpt2, "gpt2");
  return p;
}

/// LLaMA, Mistral, Qwen2 (`documents::llama`; `documents::llama_without_output_bias` for a
/// `model_type` of "qwen2", "mistral" or "mixtral").
inline ArchitecturePreset llama(const std::string& model_type = "llama") {
  if (model_type == "qwen2" || model_type == "mistral" || model_type == "mixtral") {
    static const ArchitecturePreset without =
        detail::read_builtin(documents::llama_without_output_bias, "llama_without_output_bias");
    return without;
  }
  static const ArchitecturePreset p = detail::read_builtin(documents::llama, "llama");
  return p;
}

/// GPT-NeoX, Pythia (`documents::gpt_neox`).
inline ArchitecturePreset gpt_neox() {
  static const ArchitecturePreset p = detail::read_builtin(documents::gpt_neox, "gpt_neox");
  return p;
}

/// DistilBERT (`documents::distilbert`).
inline ArchitecturePreset distilbert() {
  static const ArchitecturePreset p = detail::read_builtin(documents::distilbert, "distilbert");
  return p;
}

/// OPT (`documents::opt`).
inline ArchitecturePreset opt() {
  static const ArchitecturePreset p = detail::read_builtin(documents::opt, "opt");
  return p;
}

/// Phi-3 (`documents::phi3`).
inline ArchitecturePreset phi3() {
  static const ArchitecturePreset p = detail::read_builtin(documents::phi3, "phi3");
  return p;
}

/// Every built-in preset, in the order name-based detection tries them.
inline std::vector<ArchitecturePreset> all() {
  return {bert(), vit(), gpt2(), llama(), gpt_neox(), distilbert(), opt(), phi3()};
}

}  // namespace mhaprune::checkpoint::presets
