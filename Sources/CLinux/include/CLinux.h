// SPDX-License-Identifier: Apache-2.0
// Linux for the Dataplane module: the TUN ioctls, socket calls Swift cannot make directly, the
// GNU-only calls and structures, and the SPI-steering eBPF program (bpf(2)).
//
// This header is seen by Swift next to its Glibc module, so it includes glibc's headers with no
// feature macro (as Glibc does: with different macros the two would define fd_set differently).
// What glibc declares only under _GNU_SOURCE (recvmmsg, struct mmsghdr, struct in6_pktinfo,
// struct ucred, accept4, gettid, pthread_setname_np, malloc_trim) is reached through CLinux.c, which is compiled
// with _GNU_SOURCE (Package.swift), with structures of the same layout declared here.
#ifndef CLINUX_H
#define CLINUX_H

#include <stdint.h>
#include <pthread.h>
#include <time.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <linux/if_tun.h>

// ---- TUN: TUNSETIFF, TUNSETOFFLOAD and TUNGETFEATURES are _IOW/_IOR macros Swift does not import.
static inline unsigned long CLinux_TUNSETIFF(void) { return TUNSETIFF; }
static inline unsigned long CLinux_TUNSETOFFLOAD(void) { return TUNSETOFFLOAD; }
static inline unsigned long CLinux_TUNGETFEATURES(void) { return TUNGETFEATURES; }

// ioctl is variadic, which Swift cannot call; this fixes its third argument to a pointer.
static inline int CLinux_ioctl(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }

// ---- Sockets, taking a plain pointer for the address (Swift passes any sockaddr_* through it).
static inline int CLinux_bind(int fd, const void *addr, socklen_t len) {
  return bind(fd, (const struct sockaddr *)addr, len);
}
static inline int CLinux_connect(int fd, const void *addr, socklen_t len) {
  return connect(fd, (const struct sockaddr *)addr, len);
}
static inline ssize_t CLinux_sendto(int fd, const void *buf, size_t n, int flags, const void *addr, socklen_t len) {
  return sendto(fd, buf, n, flags, (const struct sockaddr *)addr, len);
}
static inline ssize_t CLinux_recvfrom(int fd, void *buf, size_t n, int flags, void *addr, socklen_t *len) {
  return recvfrom(fd, buf, n, flags, (struct sockaddr *)addr, len);
}

// ---- GNU-only, in CLinux.c.
/// struct mmsghdr.
struct CLinux_mmsghdr {
  struct msghdr msg_hdr;
  unsigned int msg_len;
};
/// struct ucred (SO_PEERCRED).
struct CLinux_ucred {
  pid_t pid;
  uid_t uid;
  gid_t gid;
};
/// struct in6_pktinfo (IPV6_PKTINFO).
struct CLinux_in6_pktinfo {
  struct in6_addr ipi6_addr;
  unsigned int ipi6_ifindex;
};
int CLinux_recvmmsg(int fd, struct CLinux_mmsghdr *v, unsigned int n, int flags, struct timespec *timeout);
int CLinux_sendmmsg(int fd, struct CLinux_mmsghdr *v, unsigned int n, int flags);
/// accept4(fd, NULL, NULL, flags).
int CLinux_accept(int fd, int flags);
int CLinux_gettid(void);
int CLinux_pthread_setname(pthread_t thread, const char *name);
int CLinux_malloc_trim(size_t pad);
/// unshare(CLONE_NEWNET): this thread into a network namespace of its own (tests).
int CLinux_unshare_net(void);

// ---- eBPF: steering a SO_REUSEPORT group by SPI (CLinux.c).
/// A hash map u32 SPI -> u32 socket index, allocated as entries are added. A descriptor, or -1.
int CLinux_bpf_spi_map_create(unsigned int max_entries);
/// BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_LOOKUP_ELEM on that map: 0, or -1 (errno).
int CLinux_bpf_map_update_u32(int fd, unsigned int key, unsigned int value);
int CLinux_bpf_map_delete_u32(int fd, unsigned int key);
int CLinux_bpf_map_lookup_u32(int fd, unsigned int key, unsigned int *value);
/// The socket filter for SO_ATTACH_REUSEPORT_EBPF that picks the socket the map holds for a
/// datagram's SPI. A descriptor, or -1 (errno; the verifier's words in `log` when given).
int CLinux_bpf_reuseport_spi_prog(int map_fd, char *log, unsigned int log_size);

#endif
