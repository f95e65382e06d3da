// SourceTable: how many live things each source (an address or a source block) holds.
//
// Used for MaxConnectionsPerSource= (live instances per exact address) and
// PerSourceMaxStartups= (startups per block). An entry exists only while its count is
// positive, and every count is a live instance or startup, so the table is bounded by the
// number of live instances, which MaxConnections= and MaxStartups= bound in turn: a flood of
// distinct IPv6 sources cannot grow it beyond the admitted connections.
#pragma once

#include <cstddef>
#include <unordered_map>

#include "policy/address.h"

namespace usherd::policy {

/// A multiset of addresses.
class SourceTable {
 public:
  /// Counts one more for source.
  void add(const IpAddress& source);
  /// Counts one less for source, forgetting it at zero; false if it had none.
  bool remove(const IpAddress& source);
  /// The count for source (0 when absent).
  unsigned count(const IpAddress& source) const;
  /// Number of distinct sources with a positive count.
  std::size_t size() const { return counts_.size(); }

 private:
  std::unordered_map<IpAddress, unsigned> counts_;
};

}  // namespace usherd::policy
