// The communicator of a world of one, and the helpers every backend shares.
#include <cstdio>
#include <cstdlib>

#include "comm/communicator.h"

namespace kiln {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return "sum";
    case ReduceOp::max:
      return "max";
    case ReduceOp::min:
      return "min";
  }
  return "?";
}

std::string describe_collective(const char* op, uint64_t seq, const CollectiveTag& tag) {
  std::string s = fmt::format("{} #{} ({}", op, seq, tag.what ? tag.what : "collective");
  if (tag.step >= 0) s += fmt::format(", step {}", tag.step + 1);
  if (tag.bucket >= 0) s += fmt::format(", bucket {}", tag.bucket);
  return s + ")";
}

namespace {

class DoneWork final : public Work {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class SelfCommunicator final : public Communicator {
 public:
  std::string backend() const override { return "self"; }
  int rank() const override { return 0; }
  int world() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_world() const override { return 1; }

  std::unique_ptr<Work> all_reduce_async(Tensor&, ReduceOp, const CollectiveTag&) override {
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp,
                                             const CollectiveTag&) override {
    KILN_CHECK(in.numel() == out.numel(), "reduce_scatter over 1 rank: in {} != out {}", in.numel(),
               out.numel());
    out.copy_from(in);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out,
                                         const CollectiveTag&) override {
    KILN_CHECK(in.numel() == out.numel(), "all_gather over 1 rank: in {} != out {}", in.numel(),
               out.numel());
    out.copy_from(in);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<Work> broadcast_async(Tensor&, int root, const CollectiveTag&) override {
    KILN_CHECK(root == 0, "broadcast root {} in a world of one", root);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<Work> barrier_async(const CollectiveTag&) override {
    return std::make_unique<DoneWork>();
  }
  [[noreturn]] void abort(int exit_code) noexcept override {
    std::fflush(nullptr);
    std::_Exit(exit_code);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_self_communicator() {
  return std::make_unique<SelfCommunicator>();
}

}  // namespace kiln
