// Start-up agreement: before ranks exchange any tensor, each states what it believes about the
// job (config hash, model fingerprint, bucket plan, dataset size) and every rank receives every
// rank's statement. A difference fails every rank at once with one message that names the
// item, the ranks and the values they hold, instead of a hang or a garbled collective later.
#pragma once

#include <string>
#include <vector>

#include "comm/communicator.h"

namespace kiln {

struct AgreementItem {
  std::string name;   // "config hash"
  std::string value;  // this rank's value (one line)
  std::string hint;   // what the user can do when ranks differ
};

// Collective: every rank calls it with the same item names. Throws kiln::Error (on every rank,
// with the same message) when any value differs between ranks.
void check_agreement(Communicator& comm, const std::vector<AgreementItem>& items);

}  // namespace kiln
