#include "core/data/captions.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"

namespace repa::data {

namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("caption file '" + path + "' cannot be read");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// The offset of the first byte that does not start or continue a well-formed UTF-8 sequence (no overlongs,
// no surrogates, nothing above U+10FFFF), or npos.
std::size_t first_invalid_utf8(const std::string& bytes) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (c < 0x80)
      length = 1;
    else if (c >= 0xC2 && c <= 0xDF)
      length = 2;
    else if (c >= 0xE0 && c <= 0xEF)
      length = 3, low = c == 0xE0 ? 0xA0 : 0x80, high = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
      length = 4, low = c == 0xF0 ? 0x90 : 0x80, high = c == 0xF4 ? 0x8F : 0xBF;
    else
      return i;
    for (std::size_t k = 1; k < length; ++k) {
      if (i + k >= n) return i;
      const unsigned char next = b[i + k];
      if (k == 1 ? (next < low || next > high) : (next < 0x80 || next > 0xBF)) return i;
    }
    i += length;
  }
  return std::string::npos;
}

std::string decorate(const std::string& caption, const CaptionOptions& options) {
  std::string out = options.prepend_instance_prompt ? options.instance_prompt + " " + caption : caption;
  return options.prefix + out;
}

// metadata.jsonl of the folder root: relative file name → caption.
std::map<std::string, std::string> read_metadata(const std::string& root) {
  const std::string path = (fs::path(root) / "metadata.jsonl").string();
  if (!fs::exists(path))
    throw InputError("caption_strategy \"metadata\" reads '" + path +
                     "', which does not exist (one JSON object per line: {\"file_name\": ..., \"text\": ...})");
  const std::string text = read_caption_file(path);
  std::map<std::string, std::string> captions;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (trim(line).empty()) continue;
    const std::string where = path + " line " + std::to_string(number);
    const auto entry = parse_json_bounded(line, where);
    if (!entry.is_object() || !entry.contains("file_name") || !entry["file_name"].is_string())
      throw InputError(where + ": expected an object with a string \"file_name\", got " + json_excerpt(entry));
    if (!entry.contains("text") || !entry["text"].is_string())
      throw InputError(where + ": \"" + entry["file_name"].get<std::string>() +
                       "\" has no string \"text\" (the caption column of a Hugging Face image folder)");
    captions[fs::path(entry["file_name"].get<std::string>()).lexically_normal().generic_string()] =
        trim(entry["text"].get<std::string>());
  }
  return captions;
}

}  // namespace

CaptionStrategy CaptionOptions::parse_strategy(const std::string& value, const std::string& key) {
  if (value == "filename") return CaptionStrategy::Filename;
  if (value == "textfile") return CaptionStrategy::Textfile;
  if (value == "instanceprompt" || value == "instance_prompt") return CaptionStrategy::InstancePrompt;
  if (value == "metadata" || value == "jsonl") return CaptionStrategy::Metadata;
  if (value == "parquet")
    throw InputError(key +
                     " \"parquet\" is not supported by the studio's trainer: convert the captions to "
                     "textfile (one image.txt beside each image) or to a metadata.jsonl ({\"file_name\", "
                     "\"text\"} per line, caption_strategy \"metadata\")");
  throw InputError(key + " \"" + value +
                   "\" is not one the studio's trainer reads (filename, textfile, instanceprompt, metadata)");
}

std::string to_string(CaptionStrategy strategy) {
  switch (strategy) {
    case CaptionStrategy::Filename:
      return "filename";
    case CaptionStrategy::Textfile:
      return "textfile";
    case CaptionStrategy::InstancePrompt:
      return "instanceprompt";
    case CaptionStrategy::Metadata:
      return "metadata";
  }
  return "filename";
}

std::string read_caption_file(const std::string& path) {
  std::string bytes = read_file(path);
  const std::size_t bad = first_invalid_utf8(bytes);
  if (bad != std::string::npos) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02X", static_cast<unsigned char>(bytes[bad]));
    throw InputError("caption file '" + path + "' is not UTF-8: byte " + hex + " at offset " + std::to_string(bad) +
                     " (save it as UTF-8)");
  }
  if (bytes.rfind("\xEF\xBB\xBF", 0) == 0) bytes.erase(0, 3);
  return trim(bytes);
}

std::vector<std::vector<std::string>> read_captions(const ImageFolder& folder, const CaptionOptions& options) {
  if ((options.strategy == CaptionStrategy::InstancePrompt || options.prepend_instance_prompt) &&
      options.instance_prompt.empty())
    throw InputError(options.source + ": caption_strategy \"" + to_string(options.strategy) + "\"" +
                     (options.prepend_instance_prompt ? " with prepend_instance_prompt" : "") +
                     " needs an instance_prompt, which is empty");
  std::map<std::string, std::string> metadata;
  if (options.strategy == CaptionStrategy::Metadata) metadata = read_metadata(folder.root);
  std::vector<std::vector<std::string>> out;
  out.reserve(folder.images.size());
  for (const auto& image : folder.images) {
    std::vector<std::string> captions;
    switch (options.strategy) {
      case CaptionStrategy::Filename: {
        std::string stem = fs::path(image.path).stem().string();
        for (char& c : stem)
          if (c == '_') c = ' ';
        captions.push_back(stem);
        break;
      }
      case CaptionStrategy::Textfile: {
        const std::string path = fs::path(image.path).replace_extension(".txt").string();
        if (!fs::exists(path))
          throw InputError("image '" + image.path + "' has no caption file '" + path +
                           "' (caption_strategy \"textfile\" reads one beside each image)");
        std::istringstream lines(read_caption_file(path));
        std::string line;
        while (std::getline(lines, line))
          if (!trim(line).empty()) captions.push_back(trim(line));
        if (captions.empty()) throw InputError("caption file '" + path + "' is empty");
        break;
      }
      case CaptionStrategy::InstancePrompt:
        captions.push_back(options.instance_prompt);
        break;
      case CaptionStrategy::Metadata: {
        const auto name = fs::relative(image.path, folder.root).lexically_normal().generic_string();
        const auto found = metadata.find(name);
        if (found == metadata.end())
          throw InputError("image '" + image.path + "' has no line in " + folder.root +
                           "/metadata.jsonl (expected {\"file_name\": \"" + name + "\", \"text\": ...})");
        captions.push_back(found->second);
        break;
      }
    }
    // SimpleTuner returns the instance prompt itself, never "instance_prompt instance_prompt".
    for (auto& caption : captions)
      caption =
          options.strategy == CaptionStrategy::InstancePrompt ? options.prefix + caption : decorate(caption, options);
    out.push_back(std::move(captions));
  }
  return out;
}

}  // namespace repa::data
