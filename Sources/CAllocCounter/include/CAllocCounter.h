// SPDX-License-Identifier: Apache-2.0
// Counts heap allocations made by the calling thread, so tests and `bench` can prove a path allocates nothing.
#ifndef CALLOCCOUNTER_H
#define CALLOCCOUNTER_H
#include <stdint.h>

/// Starts counting allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign)
/// made by the calling thread; resets the count.
void CAllocCounter_start(void);
/// Stops counting on the calling thread and returns how many allocations it saw since `start`.
uint64_t CAllocCounter_stop(void);
/// Resumes counting on the calling thread from `previous` (after a pause with `stop`).
void CAllocCounter_resume(uint64_t previous);
/// Bytes the allocator has handed out and not yet had back (mallinfo2: uordblks + hblkhd).
uint64_t CAllocCounter_heapBytes(void);
/// Whether the interposer is linked and live (a call to malloc was seen through it).
int CAllocCounter_isActive(void);
/// Whether this build runs under a sanitizer, which owns malloc: the counter is then compiled out
/// (`isActive` is 0) and counts nothing.
int CAllocCounter_isSanitized(void);

#endif
