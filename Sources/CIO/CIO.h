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

// TUNSETIFF is a function-like _IOW macro that Swift does not import.
static inline unsigned long CIO_TUNSETIFF(void) { return TUNSETIFF; }

#endif
