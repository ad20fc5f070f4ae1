// SPDX-License-Identifier: Apache-2.0
// liburing for the Dataplane module's io_uring loop, and the few of its macros and union fields
// Swift cannot reach.
#ifndef CURING_H
#define CURING_H

// glibc's feature macros are settled here, before liburing.h defines _GNU_SOURCE for its own
// includes: this module then sees glibc's headers exactly as Swift's Glibc module does (with
// different macros the two would define fd_set differently and could not be loaded together).
#include <features.h>
#include <liburing.h>

// io_uring_prep_* are static inline already; this one sets the buffer-select flag and group.
static inline void CURing_sqe_set_buffer_select(struct io_uring_sqe *sqe, unsigned short group) {
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = group;
}

// sqe->ioprio carries the recv flags of IORING_OP_RECVMSG (a union field Swift reaches awkwardly).
static inline void CURing_sqe_set_ioprio(struct io_uring_sqe *sqe, unsigned short ioprio) { sqe->ioprio = ioprio; }

// IORING_CQE_BUFFER_SHIFT is a macro; the buffer id sits in the high 16 bits of cqe->flags.
static inline unsigned int CURing_cqe_buffer_id(const struct io_uring_cqe *cqe) {
  return cqe->flags >> IORING_CQE_BUFFER_SHIFT;
}

#endif
