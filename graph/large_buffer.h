#ifndef VFE_GRAPH_LARGE_BUFFER_H_
#define VFE_GRAPH_LARGE_BUFFER_H_

// Flat arrays of millions of numbers (a long chain's per-step buffers, the moments of a large
// model) on transparent huge pages where the kernel offers them. Every pass over such an array
// otherwise needs a new page-table walk per 4 KiB, which under a hypervisor (two levels of
// tables) costs more than the arithmetic: the smoother of a 10⁶-step chain ran more than twice
// as fast on 2 MiB pages (bench/RESULTS.md). Private to the library.

#include <cstddef>
#include <vector>

namespace vfe {

/// Arrays below this many bytes are left to the allocator as they are.
constexpr size_t kLargeBufferBytes = size_t{4} << 20;

/// Asks the kernel to back [data, data + bytes) with huge pages (the whole 2 MiB pages inside
/// it); does nothing where that is not supported. Call before the memory is first touched.
void AdviseHugePages(void* data, size_t bytes);

/// v.assign(n, value), with a large array reallocated and advised before it is filled.
template <class T>
void AssignLarge(std::vector<T>& v, size_t n, const T& value) {
  if (n * sizeof(T) < kLargeBufferBytes || v.capacity() >= n) {
    v.assign(n, value);
    return;
  }
  std::vector<T>().swap(v);
  v.reserve(n);
  AdviseHugePages(v.data(), n * sizeof(T));
  v.assign(n, value);
}

}  // namespace vfe

#endif  // VFE_GRAPH_LARGE_BUFFER_H_
