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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <malloc.h>

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
static inline ssize_t CIO_sendto(int fd, const void *buf, size_t n, int flags, const void *addr, socklen_t len) {
  return sendto(fd, buf, n, flags, (const struct sockaddr *)addr, len);
}
// See CIO_bind.
static inline ssize_t CIO_recvfrom(int fd, void *buf, size_t n, int flags, void *addr, socklen_t *len) {
  return recvfrom(fd, buf, n, flags, (struct sockaddr *)addr, len);
}

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

// ---- eBPF: steering a SO_REUSEPORT group by SPI. bpf(2) is reached through syscall(2), which is
// variadic. linux/bpf.h cannot be included beside pcap/bpf.h (both define struct bpf_insn), so the
// few attribute layouts and opcodes used here are spelled out, with their linux/bpf.h names.
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>

struct CIO_ebpf_insn {  // struct bpf_insn
  uint8_t code;
  uint8_t regs;  // dst_reg:4 (low), src_reg:4 (high)
  int16_t off;
  int32_t imm;
};

static inline int CIO_bpf(int cmd, void *attr) { return (int)syscall(__NR_bpf, cmd, attr, (unsigned)128); }

// A hash map u32 SPI -> u32 socket index, allocated as entries are added.
static inline int CIO_bpf_spi_map_create(unsigned int max_entries) {
  uint32_t a[32];  // union bpf_attr, map_create
  memset(a, 0, sizeof a);
  a[0] = 1;  // map_type = BPF_MAP_TYPE_HASH
  a[1] = 4;  // key_size
  a[2] = 4;  // value_size
  a[3] = max_entries;
  a[4] = 1;  // map_flags = BPF_F_NO_PREALLOC
  return CIO_bpf(0 /* BPF_MAP_CREATE */, a);
}

// BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM: map_fd at 0, key at 8, value at 16, flags at 24.
static inline int CIO_bpf_map_elem(int cmd, int fd, unsigned int *key, unsigned int *value) {
  uint64_t a[16];
  memset(a, 0, sizeof a);
  a[0] = (uint32_t)fd;
  a[1] = (uint64_t)(uintptr_t)key;
  a[2] = (uint64_t)(uintptr_t)value;
  a[3] = 0;  // BPF_ANY
  return CIO_bpf(cmd, a);
}
static inline int CIO_bpf_map_update_u32(int fd, unsigned int key, unsigned int value) {
  return CIO_bpf_map_elem(2 /* BPF_MAP_UPDATE_ELEM */, fd, &key, &value);
}
static inline int CIO_bpf_map_delete_u32(int fd, unsigned int key) {
  return CIO_bpf_map_elem(3 /* BPF_MAP_DELETE_ELEM */, fd, &key, NULL);
}
static inline int CIO_bpf_map_lookup_u32(int fd, unsigned int key, unsigned int *value) {
  return CIO_bpf_map_elem(1 /* BPF_MAP_LOOKUP_ELEM */, fd, &key, value);
}

#define CIO_INSN(c, d, s, o, i) ((struct CIO_ebpf_insn){(c), (uint8_t)((d) | ((s) << 4)), (o), (i)})

// A socket filter for SO_ATTACH_REUSEPORT_EBPF. The kernel runs it with the data advanced past the
// UDP header, so the first word is the SPI (0: the non-ESP marker of IKE); the program returns the
// socket index the map holds for it, or 0xffffffff (out of range: the kernel's 4-tuple hash picks).
// A datagram shorter than 4 bytes (a NAT-keepalive) ends the program at the load, which returns 0.
static inline int CIO_bpf_reuseport_spi_prog(int map_fd, char *log, unsigned int log_size) {
  struct CIO_ebpf_insn p[] = {
      CIO_INSN(0xbf, 6, 1, 0, 0),       // BPF_ALU64|BPF_MOV|BPF_X: r6 = r1 (skb; LD_ABS reads r6)
      CIO_INSN(0x20, 0, 0, 0, 0),       // BPF_LD|BPF_ABS|BPF_W: r0 = ntohl(payload[0..4])
      CIO_INSN(0x63, 10, 0, -4, 0),     // BPF_STX|BPF_MEM|BPF_W: *(u32 *)(r10 - 4) = r0
      CIO_INSN(0x18, 1, 1, 0, map_fd),  // BPF_LD|BPF_DW|BPF_IMM, BPF_PSEUDO_MAP_FD: r1 = map
      CIO_INSN(0x00, 0, 0, 0, 0),       //   (second half of the 64-bit immediate)
      CIO_INSN(0xbf, 2, 10, 0, 0),      // r2 = r10
      CIO_INSN(0x07, 2, 0, 0, -4),      // BPF_ALU64|BPF_ADD|BPF_K: r2 += -4 (&key)
      CIO_INSN(0x85, 0, 0, 0, 1),       // BPF_JMP|BPF_CALL: bpf_map_lookup_elem
      CIO_INSN(0x15, 0, 0, 2, 0),       // BPF_JMP|BPF_JEQ|BPF_K: if r0 == 0 skip 2
      CIO_INSN(0x61, 0, 0, 0, 0),       // BPF_LDX|BPF_MEM|BPF_W: r0 = *(u32 *)r0
      CIO_INSN(0x95, 0, 0, 0, 0),       // BPF_JMP|BPF_EXIT
      CIO_INSN(0xb4, 0, 0, 0, -1),      // BPF_ALU|BPF_MOV|BPF_K: w0 = 0xffffffff
      CIO_INSN(0x95, 0, 0, 0, 0),       // BPF_JMP|BPF_EXIT
  };
  uint32_t a[32];  // union bpf_attr, prog_load
  memset(a, 0, sizeof a);
  a[0] = 1;  // prog_type = BPF_PROG_TYPE_SOCKET_FILTER
  a[1] = sizeof p / sizeof p[0];  // insn_cnt
  uint64_t insns = (uint64_t)(uintptr_t)p, license = (uint64_t)(uintptr_t) "Apache-2.0", buf = (uint64_t)(uintptr_t)log;
  memcpy(&a[2], &insns, 8);
  memcpy(&a[4], &license, 8);
  a[6] = log ? 1 : 0;  // log_level
  a[7] = log ? log_size : 0;
  memcpy(&a[8], &buf, 8);
  return CIO_bpf(5 /* BPF_PROG_LOAD */, a);
}

#endif
