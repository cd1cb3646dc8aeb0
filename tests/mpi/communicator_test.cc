// Closed-form tests of every Communicator operation on the MPI backend, over each dtype and
// sizes 0, 1, odd, not divisible by the world size, and large, in both ways the backend runs a
// collective (blocking, and `background`: non-blocking with polling). Each rank derives its data
// from (rank, index), so every rank knows the exact result. Values stay small integers, which
// every dtype (u8 and bf16 included) holds exactly, so results are compared for equality.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "comm/mpi_communicator.h"
#include "mpi_test.h"

namespace kiln::test {
namespace {

const DType kDTypes[] = {DType::f32, DType::f64, DType::i32, DType::u8, DType::bf16, DType::f16};

void store(Tensor& t, int64_t i, double v) { store_element(t.raw(), t.dtype(), i, v); }
double load(const Tensor& t, int64_t i) { return load_element(t.raw(), t.dtype(), i); }

template <typename F>
Tensor make(int64_t n, DType dt, F value) {
  Tensor t = Tensor::empty(Shape{n}, dt, cpu_device());
  for (int64_t i = 0; i < n; ++i) store(t, i, value(i));
  return t;
}

template <typename F>
void expect_values(const Tensor& t, F expected, Mismatches& m, const char* what) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double want = expected(i);
    if (load(t, i) != want) {
      m.add("{} {} [{}] is {} (expected {})", what, dtype_name(t.dtype()), i, load(t, i), want);
    }
  }
}

// Sizes per rank: empty, one, odd, one past a multiple of the world, and large enough for
// MPI's segmented algorithms.
std::vector<int64_t> sizes() {
  const int64_t n = job().world();
  return {0, 1, 7, 5 * n + 1, 100003};
}

// Both ways the MPI backend runs a collective.
const CollectiveTag kTags[] = {CollectiveTag{"test"}, CollectiveTag{"test", -1, -1, true}};

// Sum data: rank r holds (r + 1) * (1 + i % 5), so the sum is n(n+1)/2 * (1 + i % 5).
double sum_value(int r, int64_t i) { return (r + 1) * (1 + i % 5); }
// Max/min data: a rotation by rank, so which rank holds the extreme varies with i.
double rot_value(int r, int64_t i, int n) { return static_cast<double>((r + i) % n + i % 3); }

TEST(Communicator, RankAndWorldComeFromMpi) {
  Mismatches m;
  const int n = job().world(), r = job().rank();
  if (job().backend() != "mpi") m.add("backend {}", job().backend());
  if (r < 0 || r >= n) m.add("rank {} outside [0, {})", r, n);
  if (job().local_world() < 1 || job().local_rank() >= job().local_world()) {
    m.add("local rank {} of {}", job().local_rank(), job().local_world());
  }
  // Every rank of this test job runs on this host, so the node holds the whole world.
  if (job().local_world() != n) m.add("local world {} != world {}", job().local_world(), n);
  // Ranks are distinct and cover [0, n): their sum is n(n-1)/2 and local ranks too.
  Tensor t = Tensor::from_vector(std::vector<int32_t>{r, job().local_rank()}, Shape{2});
  job().all_reduce(t, ReduceOp::sum);
  if (t.data<int32_t>()[0] != n * (n - 1) / 2) m.add("rank sum {}", t.data<int32_t>()[0]);
  if (t.data<int32_t>()[1] != n * (n - 1) / 2) m.add("local rank sum {}", t.data<int32_t>()[1]);
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, AllReduceSumMaxMinEveryDTypeAndSize) {
  const int n = job().world(), r = job().rank();
  Mismatches m;
  for (const CollectiveTag& tag : kTags)
    for (DType dt : kDTypes) {
      for (int64_t size : sizes()) {
        Tensor s = make(size, dt, [&](int64_t i) { return sum_value(r, i); });
        job().all_reduce(s, ReduceOp::sum, tag);
        expect_values(
            s, [&](int64_t i) { return n * (n + 1) / 2 * (1.0 + i % 5); }, m, "sum");
        Tensor hi = make(size, dt, [&](int64_t i) { return rot_value(r, i, n); });
        job().all_reduce(hi, ReduceOp::max, tag);
        expect_values(
            hi, [&](int64_t i) { return n - 1.0 + i % 3; }, m, "max");
        Tensor lo = make(size, dt, [&](int64_t i) { return rot_value(r, i, n); });
        job().all_reduce(lo, ReduceOp::min, tag);
        expect_values(
            lo, [&](int64_t i) { return 0.0 + i % 3; }, m, "min");
      }
    }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, ReduceScatterEveryDTypeAndSize) {
  const int n = job().world(), r = job().rank();
  Mismatches m;
  for (const CollectiveTag& tag : kTags)
    for (DType dt : kDTypes) {
      for (int64_t per : sizes()) {
        Tensor in = make(per * n, dt, [&](int64_t j) { return sum_value(r, j); });
        Tensor out = make(per, dt, [](int64_t) { return 99.0; });
        job().reduce_scatter(in, out, ReduceOp::sum, tag);
        expect_values(
            out, [&](int64_t k) { return n * (n + 1) / 2 * (1.0 + (r * per + k) % 5); }, m,
            "reduce_scatter sum");
        Tensor in_max = make(per * n, dt, [&](int64_t j) { return rot_value(r, j, n); });
        job().reduce_scatter(in_max, out, ReduceOp::max, tag);
        expect_values(
            out, [&](int64_t k) { return n - 1.0 + (r * per + k) % 3; }, m, "reduce_scatter max");
      }
    }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, AllGatherEveryDTypeAndSize) {
  const int n = job().world(), r = job().rank();
  Mismatches m;
  auto value = [](int q, int64_t k) { return static_cast<double>((q * 7 + k) % 100); };
  for (const CollectiveTag& tag : kTags)
    for (DType dt : kDTypes) {
      for (int64_t per : sizes()) {
        Tensor in = make(per, dt, [&](int64_t k) { return value(r, k); });
        Tensor out = make(per * n, dt, [](int64_t) { return 255.0; });
        job().all_gather(in, out, tag);
        expect_values(
            out, [&](int64_t j) { return value(static_cast<int>(j / per), j % per); }, m,
            "all_gather");
      }
    }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, BroadcastFromEveryRootEveryDTypeAndSize) {
  const int n = job().world(), r = job().rank();
  Mismatches m;
  auto value = [](int root, int64_t i) { return static_cast<double>((root * 3 + i) % 90); };
  for (const CollectiveTag& tag : kTags)
    for (DType dt : kDTypes) {
      for (int64_t size : sizes()) {
        for (int root = 0; root < n; ++root) {
          Tensor t = make(size, dt, [&](int64_t i) { return r == root ? value(root, i) : 255.0; });
          job().broadcast(t, root, tag);
          expect_values(
              t, [&](int64_t i) { return value(root, i); }, m, "broadcast");
        }
      }
    }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, SixteenBitSumsRoundToNearestEven) {
  // 256 + 1 lies halfway between the bf16 neighbours 256 and 258 and rounds to the even one,
  // 256; f16 (11 significant bits) holds 257 exactly. With more ranks the result would depend
  // on MPI's reduction tree, so only two ranks give a closed form.
  if (job().world() != 2) GTEST_SKIP() << "one addition only with two ranks";
  const int r = job().rank();
  Mismatches m;
  Tensor b = make(3, DType::bf16, [&](int64_t) { return r == 0 ? 256.0 : 1.0; });
  job().all_reduce(b, ReduceOp::sum);
  Tensor h = make(3, DType::f16, [&](int64_t) { return r == 0 ? 256.0 : 1.0; });
  job().all_reduce(h, ReduceOp::sum);
  for (int64_t i = 0; i < 3; ++i) {
    if (load(b, i) != 256.0) m.add("bf16 [{}] = {} (expected 256)", i, load(b, i));
    if (load(h, i) != 257.0) m.add("f16 [{}] = {} (expected 257)", i, load(h, i));
  }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, AsyncCollectivesRunInIssueOrder) {
  // Several collectives in flight at once, waited for in reverse: the second all-reduce reads
  // the first one's result (same tensor), which only holds if they ran in issue order.
  const int n = job().world(), r = job().rank();
  Mismatches m;
  Tensor a = make(1001, DType::f64, [&](int64_t i) { return sum_value(r, i); });
  Tensor b = make(33, DType::i32, [&](int64_t) { return r == 0 ? 5.0 : 0.0; });
  std::vector<std::unique_ptr<Work>> works;
  works.push_back(job().all_reduce_async(a, ReduceOp::sum, kTags[1]));
  works.push_back(job().all_reduce_async(a, ReduceOp::sum));
  works.push_back(job().broadcast_async(b, 0, kTags[1]));
  works.push_back(job().barrier_async(kTags[1]));
  for (size_t i = works.size(); i-- > 0;) works[i]->wait();
  for (auto& w : works) {
    if (!w->test()) m.add("a finished collective reports test() == false");
  }
  expect_values(
      a, [&](int64_t i) { return n * n * (n + 1) / 2 * (1.0 + i % 5); }, m, "twice");
  expect_values(
      b, [](int64_t) { return 5.0; }, m, "broadcast");
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, BlockingCollectiveQueuesBehindOnesInFlight) {
  // A blocking collective may run on the calling thread, but only once nothing issued before it
  // is queued or running. Order test: max then sum gives n * n; sum then max gives n(n+1)/2.
  const int n = job().world(), r = job().rank();
  Mismatches m;
  for (const CollectiveTag& first : kTags) {
    Tensor t = make(100003, DType::f32, [&](int64_t) { return r + 1.0; });
    // Rank 0 comes late, so that on the other ranks the first collective is still running on
    // the comm thread when the blocking one is issued.
    if (r == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::unique_ptr<Work> pending = job().all_reduce_async(t, ReduceOp::max, first);
    if (r != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    job().all_reduce(t, ReduceOp::sum);  // issued second: must see the max's result
    if (!pending->test()) m.add("the earlier all-reduce has not finished after a later one");
    pending->wait();
    expect_values(
        t, [&](int64_t) { return 1.0 * n * n; }, m, first.background ? "background" : "queued");
  }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, AllReduceInPiecesMatchesOneCall) {
  // A communicator of its own with a chunk of 1000 bytes, so that every dtype's tensor crosses
  // piece boundaries at odd places (500 f16, 250 f32, 125 f64 elements per MPI call).
  const int n = job().world(), r = job().rank();
  MpiOptions options;
  options.timeout_s = 120;
  options.chunk_bytes = 1000;
  std::unique_ptr<Communicator> pieces = make_mpi_communicator(options);
  Mismatches m;
  for (const CollectiveTag& tag : kTags)
    for (DType dt : kDTypes)
      for (int64_t size : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1000}, int64_t{4099}}) {
        Tensor s = make(size, dt, [&](int64_t i) { return sum_value(r, i); });
        pieces->all_reduce(s, ReduceOp::sum, tag);
        expect_values(
            s, [&](int64_t i) { return n * (n + 1) / 2 * (1.0 + i % 5); }, m, "sum");
        Tensor lo = make(size, dt, [&](int64_t i) { return rot_value(r, i, n); });
        std::unique_ptr<Work> w = pieces->all_reduce_async(lo, ReduceOp::min, tag);
        w->wait();
        expect_values(
            lo, [&](int64_t i) { return 0.0 + i % 3; }, m, "min");
      }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, BarrierOrdersAWriteBeforeReads) {
  // Rank 0 writes a file only after a pause; every other rank reads it right after the barrier.
  // Without a real barrier the readers would find no file.
  const std::string path =
      fmt::format("{}/kiln_barrier_{}", std::filesystem::temp_directory_path().string(), getppid());
  if (job().rank() == 0) {
    std::filesystem::remove(path);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::ofstream(path) << "written by rank 0";
  }
  job().barrier();
  Mismatches m;
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  if (text != "written by rank 0") m.add("after the barrier the file holds '{}'", text);
  job().barrier();
  if (job().rank() == 0) std::filesystem::remove(path);
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Communicator, ShapeErrorsThrowBeforeAnyRankCommunicates) {
  const int n = job().world();
  Tensor in = Tensor::zeros(Shape{n * 4 + 1}, DType::f32, cpu_device());
  Tensor out = Tensor::zeros(Shape{4}, DType::f32, cpu_device());
  EXPECT_THROW(job().reduce_scatter(in, out, ReduceOp::sum), Error);
  Tensor gathered = Tensor::zeros(Shape{n * 4}, DType::f64, cpu_device());
  EXPECT_THROW(job().all_gather(out, gathered), Error);
  EXPECT_THROW(job().broadcast(out, n), Error);
  // The communicator still works afterwards: nothing was issued.
  Tensor one = Tensor::from_vector(std::vector<float>{1.0f}, Shape{1});
  job().all_reduce(one, ReduceOp::sum);
  EXPECT_EQ(one.data<float>()[0], static_cast<float>(n));
}

}  // namespace
}  // namespace kiln::test
