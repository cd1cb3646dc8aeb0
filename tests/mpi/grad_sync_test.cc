// GradSync across real ranks: gradients become the sum over ranks, bucket by bucket as backward
// announces them, with and without overlap, over odd parameter sizes and tiny buckets, and only
// on the last micro-batch of an accumulated step.
#include "comm/grad_sync.h"

#include "mpi_test.h"

namespace kiln::test {
namespace {

// Odd sizes, so padding and cuts inside parameters both occur.
void declare_params(ParamStore& s) {
  s.declare("a", Shape{1}, false);
  s.declare("b", Shape{7}, false);
  s.declare("c", Shape{300}, true);
  s.declare("d", Shape{5000}, true);
  s.declare("e", Shape{33}, false);
}

// Rank r's gradient element i; the sum over n ranks is n(n+1)/2 * (1 + i % 7) / 4 exactly.
float grad_value(int r, int64_t i) { return static_cast<float>((r + 1) * (1 + i % 7) * 0.25); }

void fill_grads(ParamStore& s, int r, int times = 1) {
  float* g = s.grads().data<float>();
  for (int64_t i = 0; i < s.total(); ++i) g[i] = times * grad_value(r, i);
}

// What a model's backward does: announce parameters final from the last to the first.
void backward(ParamStore& s) {
  s.begin_backward();
  for (int id = static_cast<int>(s.infos().size()) - 1; id >= 0; --id) s.mark_grad_ready(id);
}

void expect_summed(ParamStore& s, int times, Mismatches& m) {
  const int n = job().world();
  const float* g = s.grads().data<float>();
  for (int64_t i = 0; i < s.total(); ++i) {
    const double want = times * n * (n + 1) / 2 * (1 + i % 7) * 0.25;
    if (g[i] != want) m.add("grad[{}] = {} (expected {})", i, g[i], want);
  }
}

struct Case {
  int64_t first_bytes, bytes;
  bool overlap;
};

TEST(GradSync, SumsEveryBucketWithAndWithoutOverlap) {
  const int r = job().rank();
  Mismatches m;
  for (Case c : {Case{64, 1024, true}, Case{4, 100, true}, Case{1 << 20, 25 << 20, true},
                 Case{64, 1024, false}}) {
    ParamStore store;
    declare_params(store);
    store.finalize(cpu_device(), DType::f32);
    GradSync sync(job(), store, GradSyncOptions{c.bytes, c.first_bytes, c.overlap});
    fill_grads(store, r);
    sync.begin_micro_batch(0, true);
    backward(store);
    const int in_backward = sync.launched_in_backward();
    sync.finish();
    expect_summed(store, 1, m);
    const int want = c.overlap ? static_cast<int>(sync.buckets().size()) : 0;
    if (in_backward != want) {
      m.add("caps {}/{} overlap {}: {} buckets issued inside backward, expected {}", c.first_bytes,
            c.bytes, c.overlap, in_backward, want);
    }
  }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(GradSync, AccumulationCommunicatesOnlyOnTheLastMicroBatch) {
  const int r = job().rank();
  Mismatches m;
  ParamStore store;
  declare_params(store);
  store.finalize(cpu_device(), DType::f32);
  GradSync sync(job(), store, GradSyncOptions{1024, 64, true});
  // Micro-batch 1 of 2: gradients stay local (this rank's own values).
  fill_grads(store, r);
  sync.begin_micro_batch(0, false);
  backward(store);
  if (sync.launched_in_backward() != 0) m.add("a non-final micro-batch issued buckets");
  const float* g = store.grads().data<float>();
  for (int64_t i = 0; i < store.total(); ++i) {
    if (g[i] != grad_value(r, i)) m.add("grad[{}] changed before the last micro-batch", i);
  }
  // Micro-batch 2 of 2 accumulates the same again; now the sum over ranks is taken.
  fill_grads(store, r, 2);
  sync.begin_micro_batch(0, true);
  backward(store);
  sync.finish();
  expect_summed(store, 2, m);
  // A second step runs the same way (the plan and its state reset).
  fill_grads(store, r);
  sync.begin_micro_batch(1, true);
  backward(store);
  sync.finish();
  expect_summed(store, 1, m);
  EXPECT_AGREED_NO_MISMATCH(m);
}

// comm.grad_dtype = bf16: buckets travel as bf16 and come back as f32. Multiples of 0.25 this
// small are exact in bf16, so the sums are exact; 1 + 2^-10 is not (bf16 keeps 8 significant
// bits), so each rank's copy rounds to 1 and the sum over n ranks is exactly n.
TEST(GradSync, Bf16WireSumsInBf16) {
  const int r = job().rank(), n = job().world();
  Mismatches m;
  for (bool overlap : {true, false}) {
    ParamStore store;
    declare_params(store);
    store.finalize(cpu_device(), DType::f32);
    GradSync sync(job(), store, GradSyncOptions{1024, 64, overlap, DType::bf16});
    fill_grads(store, r);
    sync.begin_micro_batch(0, true);
    backward(store);
    sync.finish();
    expect_summed(store, 1, m);
    float* g = store.grads().data<float>();
    for (int64_t i = 0; i < store.total(); ++i) g[i] = 1.0f + 1.0f / 1024;
    sync.begin_micro_batch(1, true);
    backward(store);
    sync.finish();
    for (int64_t i = 0; i < store.total(); ++i) {
      if (g[i] != static_cast<float>(n)) {
        m.add("overlap {}: grad[{}] = {} after a bf16 reduce of 1 + 2^-10, expected {}", overlap,
              i, g[i], n);
      }
    }
  }
  EXPECT_AGREED_NO_MISMATCH(m);
}

}  // namespace
}  // namespace kiln::test
