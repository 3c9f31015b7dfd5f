// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The GGUF file format layer: metadata values, the checked reader over a memory map, split models
// and the streaming writer. Block (de)quantization is in ggml_quants.hpp, imatrix files in
// imatrix.hpp.

#include "mhaprune/io/ggml_type.hpp"    // IWYU pragma: export
#include "mhaprune/io/gguf_reader.hpp"  // IWYU pragma: export
#include "mhaprune/io/gguf_split.hpp"   // IWYU pragma: export
#include "mhaprune/io/gguf_value.hpp"   // IWYU pragma: export
#include "mhaprune/io/gguf_writer.hpp"  // IWYU pragma: export
