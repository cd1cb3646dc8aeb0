// Start-up agreement over two collectives: the longest statement, then all statements.
#include "comm/agreement.h"

#include <algorithm>
#include <map>

#include "core/device.h"

namespace kiln {

namespace {

// "ranks 0, 2" / "rank 1".
std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

}  // namespace

void check_agreement(Communicator& comm, const std::vector<AgreementItem>& items) {
  const int world = comm.world();
  if (world == 1) return;
  std::string mine;
  for (const AgreementItem& it : items) {
    KILN_CHECK(it.value.find('\n') == std::string::npos, "agreement value of '{}' spans lines",
               it.name);
    mine += it.value + "\n";
  }
  const CollectiveTag tag{"start-up agreement"};
  Tensor len =
      Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(mine.size())}, Shape{1});
  comm.all_reduce(len, ReduceOp::max, tag);
  const int64_t width = len.data<int32_t>()[0];
  Tensor local = Tensor::zeros(Shape{width}, DType::u8, cpu_device());
  std::copy(mine.begin(), mine.end(), local.data<uint8_t>());
  Tensor all = Tensor::zeros(Shape{width * world}, DType::u8, cpu_device());
  comm.all_gather(local, all, tag);

  // values[r][i]: rank r's value of item i.
  std::vector<std::vector<std::string>> values(static_cast<size_t>(world));
  const char* base = reinterpret_cast<const char*>(all.data<uint8_t>());
  for (int r = 0; r < world; ++r) {
    std::string text(base + r * width, static_cast<size_t>(width));
    size_t start = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      const size_t nl = text.find('\n', start);
      values[r].push_back(nl == std::string::npos ? "?" : text.substr(start, nl - start));
      start = nl == std::string::npos ? text.size() : nl + 1;
    }
  }

  std::string problems;
  for (size_t i = 0; i < items.size(); ++i) {
    std::map<std::string, std::vector<int>> holders;  // value -> ranks holding it
    for (int r = 0; r < world; ++r) holders[values[r][i]].push_back(r);
    if (holders.size() == 1) continue;
    std::vector<std::pair<std::string, std::vector<int>>> groups(holders.begin(), holders.end());
    std::sort(groups.begin(), groups.end(),
              [](const auto& a, const auto& b) { return a.second[0] < b.second[0]; });
    problems += fmt::format("\n  {}:", items[i].name);
    for (const auto& [value, ranks] : groups) {
      problems += fmt::format(" {} = {};", rank_list(ranks), value);
    }
    if (!items[i].hint.empty()) problems += " " + items[i].hint;
  }
  KILN_CHECK(problems.empty(), "the {} ranks of this job disagree at start-up:{}", world, problems);
}

}  // namespace kiln
