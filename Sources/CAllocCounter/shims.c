// SPDX-License-Identifier: Apache-2.0
// Interposes the glibc allocator entry points in the executable that links this target and
// counts, per thread, the calls made while counting is on (the swift-nio malloc-counter idea).
#define _GNU_SOURCE 1
#include "CAllocCounter.h"
#include <errno.h>
#include <stddef.h>
#include <malloc.h>
#include <stdlib.h>

// Under a sanitizer (swift build --sanitize=address|thread) the sanitizer's runtime owns malloc:
// two interposers of one symbol crash at startup, so the counter is compiled out and reports itself
// inactive; the allocation tests are skipped in those builds.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define CALLOCCOUNTER_SANITIZED 1
#endif
#endif

#ifdef CALLOCCOUNTER_SANITIZED
void CAllocCounter_start(void) {}
uint64_t CAllocCounter_stop(void) { return 0; }
void CAllocCounter_resume(uint64_t previous) { (void)previous; }
uint64_t CAllocCounter_heapBytes(void) {
  struct mallinfo2 m = mallinfo2();
  return (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
}
int CAllocCounter_isActive(void) { return 0; }
int CAllocCounter_isSanitized(void) { return 1; }
#else
int CAllocCounter_isSanitized(void) { return 0; }

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static __thread int counting;
static __thread uint64_t count;
static int seen;

void CAllocCounter_start(void) { count = 0; counting = 1; }
uint64_t CAllocCounter_stop(void) { counting = 0; return count; }
void CAllocCounter_resume(uint64_t previous) { count = previous; counting = 1; }
uint64_t CAllocCounter_heapBytes(void) {
  struct mallinfo2 m = mallinfo2();
  return (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
}
int CAllocCounter_isActive(void) {
  void *p = malloc(1);
  __libc_free(p);
  return seen;
}

void *malloc(size_t n) { seen = 1; if (counting) count++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { if (counting) count++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { if (counting) count++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t a, size_t n) { if (counting) count++; return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { if (counting) count++; return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
  if (counting) count++;
  void *p = __libc_memalign(a, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
#endif
