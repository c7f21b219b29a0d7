// Files replaced atomically: write beside the target, flush, rename over it.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace repa::io {

// Calls `write` with a stream onto `path`.tmp-<pid>, syncs it and renames it to `path`. On any failure the
// temporary file is removed, `path` keeps its previous content, and Error names the file.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace repa::io
