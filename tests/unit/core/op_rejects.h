// Bad calls of every Ops method, each with the message the shared argument checks
// (core/ops_check.h) give it. ops_check_test.cc asserts the messages on the CPU;
// its "cuda/..." tests assert that every other device throws the same message from the same
// file and line.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/ops.h"

namespace kiln::test {

struct BadCall {
  std::string name;
  std::string message;  // a part of the expected message
  // Builds the (f32 unless the point is the dtype) tensors on `device` and makes the call.
  std::function<void(Ops& ops, Device& device)> call;
};

const std::vector<BadCall>& bad_calls();

}  // namespace kiln::test
