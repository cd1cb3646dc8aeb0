// NVTX ranges for the tracer's spans (built only with KILN_WITH_CUDA; trace_nvtx_off.cc stands
// in otherwise). NVTX is header-only: without a profiler attached each call returns at once.
#include <nvtx3/nvToolsExt.h>

#include "core/trace.h"

namespace kiln::trace {

bool nvtx_available() { return true; }

namespace detail {
void span_begin_nvtx(const char* name) { nvtxRangePushA(name); }
void span_end_nvtx() { nvtxRangePop(); }
}  // namespace detail

}  // namespace kiln::trace
