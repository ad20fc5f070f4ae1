// SPDX-License-Identifier: Apache-2.0
// libpcap, for `espd replay` (Sources/Dataplane/Capture). Its pcap/bpf.h lives here alone, apart
// from linux/bpf.h (CLinux): both define struct bpf_insn.
#ifndef CPCAP_H
#define CPCAP_H

#include <pcap/pcap.h>

#endif
