// The communicator of a world of one.
#include "comm/communicator.h"

namespace kiln {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  return "?";
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

  std::unique_ptr<Work> all_reduce_async(Tensor&, ReduceOp) override {
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp) override {
    KILN_CHECK(in.numel() == out.numel(), "reduce_scatter over 1 rank: in {} != out {}",
               in.numel(), out.numel());
    out.copy_from(in);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out) override {
    KILN_CHECK(in.numel() == out.numel(), "all_gather over 1 rank: in {} != out {}", in.numel(),
               out.numel());
    out.copy_from(in);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<Work> broadcast_async(Tensor&, int root) override {
    KILN_CHECK(root == 0, "broadcast root {} in a world of one", root);
    return std::make_unique<DoneWork>();
  }
  void barrier() override {}
  void abort() noexcept override {}
};

}  // namespace

std::unique_ptr<Communicator> make_self_communicator() {
  return std::make_unique<SelfCommunicator>();
}

}  // namespace kiln
