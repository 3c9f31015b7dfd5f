// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/temp_file.hpp"

// Small files (a report, a config, a picture) written the way the library writes its checkpoints:
// no reader, and no crash, ever sees a half-written file under the final name.

namespace mhaprune::io {

/// Writes `content` to `path`, replacing any file there, atomically: the bytes go to a temporary
/// file next to `path` (created with O_EXCL, so concurrent writers never share one), which is
/// renamed over `path` only when complete. Until then `path` keeps its old content, or stays absent.
///
/// @param path the file to write; its directory must exist.
/// @param content the whole file (it is written in one go, so meant for files that fit in memory).
/// @param durable fsync the file before the rename and its directory after, so the new content
///        survives a power cut once this returns; false skips both (still atomic, much faster on
///        some file systems; a crash may then lose the new file, never leave a partial one).
/// @throws io_error naming `path`, what failed and the system's reason, when the temporary file
///         cannot be created, written, synced or renamed; the temporary file is removed then.
inline void write_file(const std::string& path, std::string_view content, bool durable = true) {
  detail::TempFile file(path);
  file.append(content.data(), content.size());
  file.commit(durable);
}

}  // namespace mhaprune::io
