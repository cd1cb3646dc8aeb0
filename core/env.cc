// The table of KILN_* environment knobs: name, default, help.
#include "core/env.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace kiln::env {

const std::vector<Knob>& knobs() {
  static const std::vector<Knob> table = {
      {"KILN_LOG_LEVEL", "info",
       "log level, optionally per subsystem: 'info' or 'info,comm=debug,data=warn'"},
      {"KILN_SET", "",
       "config overrides applied after the YAML and before --set, separated by ';': "
       "'train.steps=100;optim.lr=0.01'"},
      {"KILN_NUM_THREADS", "0",
       "CPU threads per rank; 0 = the node's cores divided by the ranks on this node"},
      {"KILN_DEBUG_HANG_AT_STEP", "-1",
       "debug hook: this rank blocks forever in the given step (counted from 1, as in the logs; "
       "tests of the watchdog and of kiln launch, which passes this and the other one-shot hooks "
       "(NAN, STOP) to its first generation only)"},
      {"KILN_DEBUG_STEP_SLEEP_MS", "0",
       "debug hook: every step sleeps this many ms (tests that act at chosen steps)"},
      {"KILN_DEBUG_HANG_RANK", "-1", "debug hook: which rank KILN_DEBUG_HANG_AT_STEP applies to"},
      {"KILN_DEBUG_NAN_AT_STEP", "-1",
       "debug hook: the loss of the given step (counted from 1, as in the logs) is replaced by NaN "
       "(tests of non-finite handling)"},
      {"KILN_DEBUG_STOP_AT_STEP", "-1",
       "debug hook: the run stops after the given step as if SIGTERM had arrived during it "
       "(tests of interrupted and resumed runs)"},
      {"KILN_DEBUG_CKPT_SLOW_MS", "0",
       "debug hook: sleep this many ms between the phases of a checkpoint save (crash tests)"},
      {"KILN_CKPT_WRITER_NICE", "10",
       "CPU priority (nice, 0..19) of the thread that writes checkpoint files: training threads "
       "keep most of the cores while a save is written in the background (its CPU work is "
       "small: checksums; the files go to disk by direct I/O)"},
      {"KILN_COORDINATOR_TOKEN", "", "the job's coordinator token (instead of a token file)"},
      {"KILN_TRACE_MAX_EVENTS", "262144",
       "tracer: events each thread keeps per trace window (about 100 bytes each); later "
       "events are dropped and counted"},
      {"KILN_DEBUG_TRACE_SKEW_US", "0",
       "debug hook: rank r's trace clock runs r times this many microseconds ahead (tests of "
       "the clock alignment of kiln trace merge)"},
      {"KILN_NVTX", "0",
       "1: NVTX ranges around the traced phases (forward, backward per layer, buckets, "
       "optimizer...) for Nsight Systems, for the whole run; CUDA builds only"},
      {"KILN_MPI_POLL_US", "100",
       "MPI backend: while no thread waits for a collective in flight (a gradient bucket "
       "during backward), the comm thread tests it this often (microseconds) and sleeps in "
       "between, leaving the CPU to computation"},
      {"KILN_MPI_CHUNK_BYTES", "8388608",
       "MPI backend: an all-reduce is handed to MPI in pieces of at most this many bytes "
       "(Open MPI slows down sharply on single calls of 32 MiB and more)"},
  };
  return table;
}

namespace {
const Knob& find(const char* name) {
  for (const Knob& k : knobs()) {
    if (std::strcmp(k.name, name) == 0) return k;
  }
  KILN_FAIL("environment knob {} is not declared in core/env.cc", name);
}
}  // namespace

bool is_set(const char* name) {
  find(name);
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

std::string get(const char* name) {
  const Knob& k = find(name);
  const char* v = std::getenv(name);
  return (v && *v) ? std::string(v) : std::string(k.default_value);
}

int64_t get_int(const char* name) {
  std::string v = get(name);
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  KILN_CHECK(end && *end == '\0', "environment variable {}='{}' is not an integer", name, v);
  return x;
}

double get_double(const char* name) {
  std::string v = get(name);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  KILN_CHECK(end && *end == '\0', "environment variable {}='{}' is not a number", name, v);
  return x;
}

}  // namespace kiln::env
