// JSON-lines files appended to across runs (metrics.jsonl, events.jsonl): a write cut short by a full disk or a
// kill leaves a torn last line, and the next run's first line would be glued to it. Repair before appending.
#pragma once
#include <string>

namespace repa::io {

// Makes `path` end on a whole line: a torn last line is cut off, or completed with its newline when it is a
// whole JSON object that only lacks one. Returns a line saying what was done, "" when the file was fine or
// absent. Throws Error naming the file when it cannot be read or cut.
std::string repair_jsonl_tail(const std::string& path);

}  // namespace repa::io
