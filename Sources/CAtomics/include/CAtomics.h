// SPDX-License-Identifier: Apache-2.0
// Counters and published state that one thread writes and others read: relaxed atomic loads and
// stores on plain 64-bit words (on x86-64 and arm64 an ordinary load or store, no lock prefix), and
// the acquire/release pair of a sequence lock. The writer never does a read-modify-write atomic:
// each word has a single writer, so `store(load + n)` is exact and costs what `+=` costs.
#ifndef ESPD_CATOMICS_H
#define ESPD_CATOMICS_H
#include <stdint.h>

static inline uint64_t espd_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void espd_store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
/// Single-writer add: only the word's owner may call it.
static inline void espd_add(uint64_t *p, uint64_t v) {
  __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline uint64_t espd_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void espd_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void espd_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
static inline void espd_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
#endif
