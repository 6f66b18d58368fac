#ifndef VFE_NODES_CHUNK_CACHE_H_
#define VFE_NODES_CHUNK_CACHE_H_

// Sums over a plate's factors kept between calls (the cache behind Node::TracksChanges).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "vfe/nodes/node.h"

namespace vfe {

/// Sums over chunks of kChunk consecutive factors of a plate (`width` numbers per chunk),
/// each kept with the versions (SlotView::version) of the two variables it was summed from,
/// and summed again when one of them has changed. A call writes a chunk only when its factor
/// range covers the whole chunk, so calls over disjoint ranges may run concurrently; the
/// value a range gets does not depend on what was cached before.
class ChunkCache {
 public:
  static constexpr size_t kChunk = 1024;

  /// Sizes the cache for `num_factors` factors and forgets every sum (allocates: call from
  /// Node::Prepare).
  void Reset(size_t num_factors, size_t width) {
    num_factors_ = num_factors;
    width_ = width;
    const size_t chunks = (num_factors + kChunk - 1) / kChunk;
    sums_.assign(chunks * width, 0.0);
    stamps_.assign(2 * chunks, kNever);
  }
  /// True when both views carry versions and Reset was called: Visit may cache.
  bool Usable(const SlotView& a, const SlotView& b) const {
    return a.version && b.version && !stamps_.empty();
  }
  /// Visits factors [begin, end) in order: whole(sums) for each chunk inside the range, with
  /// its sums (first set to zero and filled by fill(chunk_begin, chunk_end, sums) when `a`'s
  /// or `b`'s version moved since they were summed), and part(piece_begin, piece_end) for
  /// the pieces of chunks the range cuts. Requires Usable(a, b).
  template <class Fill, class Whole, class Part>
  void Visit(size_t begin, size_t end, const SlotView& a, const SlotView& b, Fill fill,
             Whole whole, Part part) const {
    const uint64_t version_a = a.version->load(std::memory_order_relaxed);
    const uint64_t version_b = b.version->load(std::memory_order_relaxed);
    for (size_t n = begin; n < end;) {
      const size_t chunk = n / kChunk;
      const size_t chunk_end = std::min(num_factors_, (chunk + 1) * kChunk);
      if (n != chunk * kChunk || chunk_end > end) {
        const size_t stop = std::min(end, chunk_end);
        part(n, stop);
        n = stop;
        continue;
      }
      double* sums = sums_.data() + chunk * width_;
      if (stamps_[2 * chunk] != version_a || stamps_[2 * chunk + 1] != version_b) {
        std::fill_n(sums, width_, 0.0);
        fill(n, chunk_end, sums);
        stamps_[2 * chunk] = version_a;
        stamps_[2 * chunk + 1] = version_b;
      }
      whole(static_cast<const double*>(sums));
      n = chunk_end;
    }
  }

 private:
  static constexpr uint64_t kNever = UINT64_MAX;  // the stamp of a chunk never summed
  size_t num_factors_ = 0;
  size_t width_ = 0;
  mutable std::vector<double> sums_;
  mutable std::vector<uint64_t> stamps_;  // by chunk: the versions of a and b
};

}  // namespace vfe

#endif  // VFE_NODES_CHUNK_CACHE_H_
