// Splits the worker's byte stream (stdout or a followed events file) into JSON events, one per line.
#pragma once
#include <QByteArray>
#include <QString>
#include <nlohmann/json.hpp>
#include <vector>

namespace repa::ui {

struct StreamItem {
  nlohmann::json event;  // an object with "type", or null when the line was not a JSON object
  QString text;          // the line itself when it was not JSON (plain output, a crash message)
};

// Incremental: bytes may end mid-line; the tail waits for the next feed.
class EventStream {
 public:
  std::vector<StreamItem> feed(const QByteArray& bytes);
  // What is left without a newline (a process that died mid-line); clears it.
  std::vector<StreamItem> flush();
  void reset() { pending_.clear(); }

 private:
  static StreamItem parse_line(const QByteArray& line);
  QByteArray pending_;
};

// The line a command is sent as on the worker's stdin: {"command": "stop"} (docs/events.md).
QByteArray command_line(const QString& command);

}  // namespace repa::ui
