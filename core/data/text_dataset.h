// Language-modelling samples from token shards (token_shard.h): sample i is the window of
// seq_len + 1 tokens starting at token i * seq_len of the split, i.e. non-overlapping windows
// that share only their boundary token; x is its first seq_len tokens (i32), y the seq_len
// tokens that follow each one. The global sampler (sampler.h) orders the windows per
// (seed, epoch), and its cursor is all the state a resumed run needs.
#pragma once

#include <memory>
#include <string>

#include "core/data/dataset.h"

namespace kiln {

// Opens the split ("train" or "val") of the shards in `dir`. Throws naming the folder and the
// command that makes shards when there are none, and when the split is shorter than one window.
std::unique_ptr<Dataset> open_text_dataset(const std::string& dir, const std::string& split,
                                           int64_t seq_len);

}  // namespace kiln
