// SPDX-License-Identifier: Apache-2.0
// Shims over liburing, libpcap and linux/if_tun.h for the Dataplane module.
#ifndef CIO_H
#define CIO_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <liburing.h>
#include <pcap/pcap.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/udp.h>

// TUNSETIFF is a function-like _IOW macro that Swift does not import.
static inline unsigned long CIO_TUNSETIFF(void) { return TUNSETIFF; }

// TUNSETOFFLOAD and TUNGETFEATURES are _IOW/_IOR macros too.
static inline unsigned long CIO_TUNSETOFFLOAD(void) { return TUNSETOFFLOAD; }
static inline unsigned long CIO_TUNGETFEATURES(void) { return TUNGETFEATURES; }

// ioctl is variadic, which Swift cannot call; this fixes its third argument to a pointer.
static inline int CIO_ioctl(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }

// With _GNU_SOURCE glibc declares these with a transparent union (__CONST_SOCKADDR_ARG) that Swift
// cannot pass a pointer to; the shims take a plain pointer.
static inline int CIO_bind(int fd, const void *addr, socklen_t len) { return bind(fd, (const struct sockaddr *)addr, len); }
// See CIO_bind.
static inline int CIO_connect(int fd, const void *addr, socklen_t len) { return connect(fd, (const struct sockaddr *)addr, len); }

// See CIO_bind.
static inline int CIO_accept(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }

// io_uring_prep_* are static inline already; this one sets the buffer-select flag and group.
static inline void CIO_sqe_set_buffer_select(struct io_uring_sqe *sqe, unsigned short group) {
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = group;
}

// sqe->ioprio carries the recv flags of IORING_OP_RECVMSG (a union field Swift reaches awkwardly).
static inline void CIO_sqe_set_ioprio(struct io_uring_sqe *sqe, unsigned short ioprio) { sqe->ioprio = ioprio; }

// IORING_CQE_BUFFER_SHIFT is a macro; the buffer id sits in the high 16 bits of cqe->flags.
static inline unsigned int CIO_cqe_buffer_id(const struct io_uring_cqe *cqe) { return cqe->flags >> IORING_CQE_BUFFER_SHIFT; }

#endif
