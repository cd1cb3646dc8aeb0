// The tracer's NVTX hooks in a build without CUDA: there is no profiler to tell.
#include "core/trace.h"

namespace kiln::trace {

bool nvtx_available() { return false; }

namespace detail {
void span_begin_nvtx(const char*) {}
void span_end_nvtx() {}
}  // namespace detail

}  // namespace kiln::trace
