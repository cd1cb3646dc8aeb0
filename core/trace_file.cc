// Chrome trace JSON for one rank's recorded events.
#include "core/trace_file.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "core/error.h"

namespace kiln::trace {

namespace {

// Names are literals and layer names: quote and escape what JSON requires.
void append_string(std::string& out, const char* s) {
  out += '"';
  for (const char* p = s; *p; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

void append_metadata(std::string& out, const char* what, int pid, int tid,
                     const std::string& name) {
  out += fmt::format(
      "{{\"ph\":\"M\",\"pid\":{},\"tid\":{},\"name\":\"{}\",\"args\":{{\"name\":", pid, tid, what);
  append_string(out, name.c_str());
  out += "}},\n";
}

}  // namespace

std::string rank_file_name(int rank) { return fmt::format("rank-{:05d}.trace.json", rank); }

std::string chrome_trace_json(const std::vector<ThreadEvents>& threads, int pid,
                              const std::string& process_name, const nlohmann::json& other) {
  size_t n = 0;
  for (const ThreadEvents& t : threads) n += t.events.size();
  std::string out;
  out.reserve(200 + n * 160);
  out += "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"kiln\":" + other.dump() + "},\n";
  out += "\"traceEvents\":[\n";
  append_metadata(out, "process_name", pid, 0, process_name);
  for (const ThreadEvents& t : threads) {
    append_metadata(out, "thread_name", pid, t.tid, t.name);
    out += fmt::format(
        "{{\"ph\":\"M\",\"pid\":{},\"tid\":{},\"name\":\"thread_sort_index\","
        "\"args\":{{\"sort_index\":{}}}}},\n",
        pid, t.tid, t.tid);
  }
  for (const ThreadEvents& t : threads) {
    for (const Event& e : t.events) {
      out += "{\"name\":";
      append_string(out, e.name);
      out += ",\"cat\":";
      append_string(out, e.cat);
      out += fmt::format(",\"ph\":\"{}\",\"pid\":{},\"tid\":{},\"ts\":{:.3f}", e.ph, pid, t.tid,
                         static_cast<double>(e.ts_ns) / 1e3);
      if (e.ph == 'X') out += fmt::format(",\"dur\":{:.3f}", static_cast<double>(e.dur_ns) / 1e3);
      if (e.ph == 'b' || e.ph == 'e') out += fmt::format(",\"id\":{}", e.id);
      if (e.ph == 'i') out += ",\"s\":\"t\"";
      if (e.nargs > 0) {
        out += ",\"args\":{";
        for (int i = 0; i < e.nargs; ++i) {
          if (i) out += ',';
          append_string(out, e.args[i].key);
          out += fmt::format(":{}", e.args[i].value);
        }
        out += '}';
      }
      out += "},\n";
    }
  }
  // Chrome's JSON allows no trailing comma: the last metadata or event line loses it.
  out.resize(out.size() - 2);
  out += "\n]}\n";
  return out;
}

size_t write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  KILN_CHECK(f != nullptr,
             "cannot create {}: {}; check that the directory exists and is "
             "writable",
             tmp, errno_string());
  const size_t written = std::fwrite(text.data(), 1, text.size(), f);
  const bool closed = std::fclose(f) == 0;
  KILN_CHECK(written == text.size() && closed, "writing {} failed: {} (disk full?)", tmp,
             errno_string());
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  KILN_CHECK(!ec, "cannot rename {} to {}: {}", tmp, path, ec.message());
  return written;
}

}  // namespace kiln::trace
