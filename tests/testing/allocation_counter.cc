#include "tests/testing/allocation_counter.h"

#include <cerrno>
#include <cstddef>
#include <atomic>

// glibc's own allocator entry points: the replacements below count, then forward to them.
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* pointer, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void __libc_free(void* pointer);
}

namespace {
std::atomic<long> allocation_count{0};
}  // namespace

// Sanitizers bring their own allocator: under them nothing is replaced and the count stays 0
// (scripts/tsan runs only tests that do not count allocations).
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
namespace {
void Count() { allocation_count.fetch_add(1, std::memory_order_relaxed); }
}  // namespace
extern "C" {
void* malloc(size_t size) {
  Count();
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) {
  Count();
  return __libc_calloc(count, size);
}
void* realloc(void* pointer, size_t size) {
  Count();
  return __libc_realloc(pointer, size);
}
void* memalign(size_t alignment, size_t size) {
  Count();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }
int posix_memalign(void** pointer, size_t alignment, size_t size) {
  *pointer = memalign(alignment, size);
  return *pointer ? 0 : ENOMEM;
}
void free(void* pointer) { __libc_free(pointer); }
}
#endif

namespace vfe::testing {

long AllocationCount() { return allocation_count.load(std::memory_order_relaxed); }

bool AllocationCounting() {
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  return true;
#else
  return false;
#endif
}

}  // namespace vfe::testing
