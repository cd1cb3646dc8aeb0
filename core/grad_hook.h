// The hook through which a model announces, during backward, that a range of the flat gradient
// buffer is final for this micro-batch (DESIGN decision 5). GradSync (comm/) subscribes; models
// never include anything from comm/.
#pragma once

#include <cstdint>
#include <functional>

namespace kiln {

// [begin, end) in elements of the flat gradient buffer. Within one backward the ranges arrive
// in decreasing order and tile [0, total) exactly once.
using GradReadyHook = std::function<void(int64_t begin, int64_t end)>;

}  // namespace kiln
