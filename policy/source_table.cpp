// Counting for SourceTable.
#include "policy/source_table.h"

namespace usherd::policy {

void SourceTable::add(const IpAddress& source) {
  ++counts_[source];
}

bool SourceTable::remove(const IpAddress& source) {
  auto it = counts_.find(source);
  if (it == counts_.end()) return false;
  if (--it->second == 0) counts_.erase(it);
  return true;
}

unsigned SourceTable::count(const IpAddress& source) const {
  auto it = counts_.find(source);
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace usherd::policy
