#include "ui/event_stream.h"

#include "core/base/bounded_json.h"

namespace repa::ui {

StreamItem EventStream::parse_line(const QByteArray& raw) {
  StreamItem item;
  const QByteArray line = raw.trimmed();
  if (line.isEmpty()) return item;
  if (line.startsWith('{')) {
    // Bounded: a line from a file or a worker can be hostile (65,000 levels deep).
    nlohmann::json parsed =
        try_parse_json_bounded(std::string_view(line.constData(), static_cast<std::size_t>(line.size())));
    if (parsed.is_object()) {
      item.event = std::move(parsed);
      return item;
    }
  }
  item.text = QString::fromUtf8(line);
  return item;
}

std::vector<StreamItem> EventStream::feed(const QByteArray& bytes) {
  std::vector<StreamItem> items;
  pending_.append(bytes);
  qsizetype start = 0;
  for (;;) {
    const qsizetype newline = pending_.indexOf('\n', start);
    if (newline < 0) break;
    StreamItem item = parse_line(pending_.mid(start, newline - start));
    if (!item.event.is_null() || !item.text.isEmpty()) items.push_back(std::move(item));
    start = newline + 1;
  }
  pending_.remove(0, start);
  return items;
}

std::vector<StreamItem> EventStream::flush() {
  std::vector<StreamItem> items;
  StreamItem item = parse_line(pending_);
  pending_.clear();
  if (!item.event.is_null() || !item.text.isEmpty()) items.push_back(std::move(item));
  return items;
}

QByteArray command_line(const QString& command) {
  const nlohmann::json line = {{"command", command.toStdString()}};
  return QByteArray::fromStdString(line.dump()) + '\n';
}

}  // namespace repa::ui
