#ifndef VFE_TESTS_TESTING_ALLOCATION_COUNTER_H_
#define VFE_TESTS_TESTING_ALLOCATION_COUNTER_H_

// Counts every heap allocation of the process (malloc, calloc, realloc and the aligned
// allocators, hence operator new and Eigen too), so that a test or benchmark can check that a
// window of code allocates nothing. Link tests/testing/allocation_counter.cc into the binary.

namespace vfe::testing {

/// Allocations so far in this process (all threads).
long AllocationCount();

/// False when the counter is compiled out (under AddressSanitizer or ThreadSanitizer, which
/// bring their own allocator): AllocationCount() then stays 0.
bool AllocationCounting();

}  // namespace vfe::testing

#endif  // VFE_TESTS_TESTING_ALLOCATION_COUNTER_H_
