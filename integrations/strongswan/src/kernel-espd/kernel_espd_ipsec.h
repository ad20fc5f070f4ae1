/*
 * Copyright (C) 2026 the espd authors
 *
 * This program is free software; you can redistribute it and/or modify it
 * under the terms of the GNU General Public License as published by the
 * Free Software Foundation; either version 2 of the License, or (at your
 * option) any later version.  See <http://www.fsf.org/copyleft/gpl.txt>.
 *
 * This program is distributed in the hope that it will be useful, but
 * WITHOUT ANY WARRANTY; without even the implied warranty of MERCHANTABILITY
 * or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU General Public License
 * for more details.
 */

/**
 * charon's IPsec backend over espd's control socket.
 *
 * @defgroup kernel_espd_ipsec kernel_espd_ipsec
 * @{ @ingroup kernel_espd
 */

#ifndef KERNEL_ESPD_IPSEC_H_
#define KERNEL_ESPD_IPSEC_H_

#include <kernel/kernel_ipsec.h>

typedef struct kernel_espd_ipsec_t kernel_espd_ipsec_t;

/**
 * kernel_ipsec_t that installs each CHILD_SA as one espd tunnel: its inbound
 * and outbound SAs (same reqid and peer) become one add_tunnel, later SAs of
 * the tunnel rekey requests, deleted SAs delete_sa (delete_tunnel for the
 * last inbound one). espd's expire events become charon's.
 */
struct kernel_espd_ipsec_t {

	/**
	 * Implements kernel_ipsec_t interface
	 */
	kernel_ipsec_t interface;
};

/**
 * Create the backend (espd need not run yet: it is reached when needed).
 *
 * @return			the backend
 */
kernel_espd_ipsec_t *kernel_espd_ipsec_create();

#endif /** KERNEL_ESPD_IPSEC_H_ @}*/
