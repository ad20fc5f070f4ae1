// SPDX-License-Identifier: Apache-2.0
// The GNU-only calls CLinux.h declares, and the SPI-steering eBPF program. Compiled with
// _GNU_SOURCE (Package.swift's cSettings), unlike what Swift sees of glibc.
#include "CLinux.h"

#include <malloc.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <sys/syscall.h>

_Static_assert(sizeof(struct CLinux_mmsghdr) == sizeof(struct mmsghdr), "struct mmsghdr");
_Static_assert(offsetof(struct CLinux_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr.msg_len");
_Static_assert(sizeof(struct CLinux_ucred) == sizeof(struct ucred), "struct ucred");
_Static_assert(offsetof(struct CLinux_ucred, gid) == offsetof(struct ucred, gid), "ucred.gid");
_Static_assert(sizeof(struct CLinux_in6_pktinfo) == sizeof(struct in6_pktinfo), "struct in6_pktinfo");
_Static_assert(offsetof(struct CLinux_in6_pktinfo, ipi6_ifindex) == offsetof(struct in6_pktinfo, ipi6_ifindex),
               "in6_pktinfo.ipi6_ifindex");

int CLinux_recvmmsg(int fd, struct CLinux_mmsghdr *v, unsigned int n, int flags, struct timespec *timeout) {
  return recvmmsg(fd, (struct mmsghdr *)v, n, flags, timeout);
}
int CLinux_sendmmsg(int fd, struct CLinux_mmsghdr *v, unsigned int n, int flags) {
  return sendmmsg(fd, (struct mmsghdr *)v, n, flags);
}
int CLinux_accept(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }
int CLinux_gettid(void) { return (int)gettid(); }
int CLinux_pthread_setname(pthread_t thread, const char *name) { return pthread_setname_np(thread, name); }
int CLinux_malloc_trim(size_t pad) { return malloc_trim(pad); }
int CLinux_unshare_net(void) { return unshare(CLONE_NEWNET); }

// bpf(2) has no glibc wrapper.
static int sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr) {
  return (int)syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

int CLinux_bpf_spi_map_create(unsigned int max_entries) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_HASH;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = max_entries;
  a.map_flags = BPF_F_NO_PREALLOC;
  return sys_bpf(BPF_MAP_CREATE, &a);
}

static int map_elem(enum bpf_cmd cmd, int fd, unsigned int *key, unsigned int *value) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)fd;
  a.key = (uint64_t)(uintptr_t)key;
  a.value = (uint64_t)(uintptr_t)value;
  a.flags = BPF_ANY;
  return sys_bpf(cmd, &a);
}
int CLinux_bpf_map_update_u32(int fd, unsigned int key, unsigned int value) {
  return map_elem(BPF_MAP_UPDATE_ELEM, fd, &key, &value);
}
int CLinux_bpf_map_delete_u32(int fd, unsigned int key) { return map_elem(BPF_MAP_DELETE_ELEM, fd, &key, NULL); }
int CLinux_bpf_map_lookup_u32(int fd, unsigned int key, unsigned int *value) {
  return map_elem(BPF_MAP_LOOKUP_ELEM, fd, &key, value);
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

// The kernel runs a reuseport socket filter with the data advanced past the UDP header, so the
// first word is the SPI (0: the non-ESP marker of IKE); the program returns the socket index the
// map holds for it, or 0xffffffff (out of range: the kernel's 4-tuple hash picks). A datagram
// shorter than 4 bytes (a NAT-keepalive) ends the program at the load, which returns 0.
int CLinux_bpf_reuseport_spi_prog(int map_fd, char *log, unsigned int log_size) {
  struct bpf_insn p[] = {
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),  // r6 = r1 (skb; LD_ABS reads r6)
      INSN(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, 0),                     // r0 = ntohl(payload[0..4])
      INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_0, -4, 0),  // *(u32 *)(r10 - 4) = r0
      INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map_fd),  // r1 = map
      INSN(0, 0, 0, 0, 0),                                            //   (the immediate's high half)
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),  // r2 = r10
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),          // r2 += -4 (&key)
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),     // r0 = lookup(r1, r2)
      INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 2, 0),             // if r0 == NULL skip 2
      INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_0, BPF_REG_0, 0, 0),     // r0 = *(u32 *)r0
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
      INSN(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, -1),            // w0 = 0xffffffff
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  a.insn_cnt = sizeof p / sizeof p[0];
  a.insns = (uint64_t)(uintptr_t)p;
  a.license = (uint64_t)(uintptr_t) "Apache-2.0";
  a.log_level = log ? 1 : 0;
  a.log_size = log ? log_size : 0;
  a.log_buf = (uint64_t)(uintptr_t)log;
  return sys_bpf(BPF_PROG_LOAD, &a);
}
