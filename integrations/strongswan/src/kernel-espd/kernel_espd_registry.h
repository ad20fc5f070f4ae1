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
 * What kernel-espd installed in espd: tunnels (one per CHILD_SA, i.e. reqid
 * and peer) and their SAs, with the indexes charon's and espd's names need.
 * Not thread-safe: the caller locks.
 *
 * @defgroup kernel_espd_registry kernel_espd_registry
 * @{ @ingroup kernel_espd
 */

#ifndef KERNEL_ESPD_REGISTRY_H_
#define KERNEL_ESPD_REGISTRY_H_

#include <espd_buf.h>

#include <collections/linked_list.h>
#include <ipsec/ipsec_types.h>
#include <networking/host.h>

typedef struct kernel_espd_sa_t kernel_espd_sa_t;
typedef struct kernel_espd_tunnel_t kernel_espd_tunnel_t;
typedef struct kernel_espd_registry_t kernel_espd_registry_t;

/** Longest tunnel name espd takes */
#define KERNEL_ESPD_NAME_MAX 64

/**
 * One SA, as charon names it (SPI and destination address).
 */
struct kernel_espd_sa_t {
	/** SPI, host order */
	uint32_t spi;
	/** TRUE for an inbound SA (its SPI is ours) */
	bool inbound;
	/** source address, as charon gave it */
	host_t *src;
	/** destination address, as charon gave it (and wants it in events) */
	host_t *dst;
	/** tunnel of the SA, NULL for an SPI reserved by get_spi */
	kernel_espd_tunnel_t *tunnel;
	/** the SA object, with its keys, until it is sent to espd */
	espd_buf_t json;
	/** TRUE while espd has it */
	bool in_espd;
	/** TRUE if espd reserved the SPI (alloc_spi) */
	bool reserved_in_espd;
	/** bytes espd last reported */
	uint64_t bytes;
	/** packets espd last reported */
	uint64_t packets;
	/** monotonic time of the last use seen */
	time_t last_use;
};

/**
 * One CHILD_SA: an espd tunnel.
 */
struct kernel_espd_tunnel_t {
	/** registry key: reqid in tunnel mode, reqid and peer in transport mode */
	char *key;
	/** espd's tunnel name */
	char name[KERNEL_ESPD_NAME_MAX + 1];
	/** charon's reqid */
	uint32_t reqid;
	/** MODE_TUNNEL or MODE_TRANSPORT */
	ipsec_mode_t mode;
	/** the peer's address and port */
	host_t *peer;
	/** our address */
	host_t *local;
	/** JSON array of remote_ts prefixes (tunnel mode) */
	espd_buf_t remote_ts;
	/** TRUE while espd has the tunnel */
	bool in_espd;
	/** kernel_espd_sa_t of the tunnel, oldest first */
	linked_list_t *sas;
	/** the outbound SA in use, or waiting to be, NULL if none */
	kernel_espd_sa_t *outbound;
};

/**
 * The registry.
 */
struct kernel_espd_registry_t {

	/**
	 * An SA by SPI and destination address.
	 */
	kernel_espd_sa_t *(*find_sa)(kernel_espd_registry_t *this, uint32_t spi,
								 host_t *dst);

	/**
	 * An inbound SA (or reservation) by SPI alone: our SPIs are unique.
	 */
	kernel_espd_sa_t *(*find_inbound)(kernel_espd_registry_t *this,
									  uint32_t spi);

	/**
	 * Whether an inbound SA or reservation has the SPI.
	 */
	bool (*spi_in_use)(kernel_espd_registry_t *this, uint32_t spi);

	/**
	 * Register an SA (its tunnel, if any, set by the caller).
	 *
	 * @return			NULL if another SA has its SPI and destination (or, if
	 *					inbound, its SPI), the SA otherwise
	 */
	kernel_espd_sa_t *(*add_sa)(kernel_espd_registry_t *this, uint32_t spi,
								bool inbound, host_t *src, host_t *dst);

	/**
	 * Attach a registered SA to a tunnel.
	 */
	void (*attach_sa)(kernel_espd_registry_t *this, kernel_espd_sa_t *sa,
					  kernel_espd_tunnel_t *tunnel);

	/**
	 * Give an SA new addresses.
	 */
	void (*move_sa)(kernel_espd_registry_t *this, kernel_espd_sa_t *sa,
					host_t *src, host_t *dst);

	/**
	 * Unregister an SA (from its tunnel too), wipe and free it.
	 */
	void (*remove_sa)(kernel_espd_registry_t *this, kernel_espd_sa_t *sa);

	/**
	 * A tunnel by registry key.
	 */
	kernel_espd_tunnel_t *(*find_tunnel)(kernel_espd_registry_t *this,
										 const char *key);

	/**
	 * A tunnel by espd name.
	 */
	kernel_espd_tunnel_t *(*find_tunnel_by_name)(kernel_espd_registry_t *this,
												 const char *name);

	/**
	 * Register a new tunnel (no SAs, not in espd).
	 *
	 * @return			NULL if the key or name is taken
	 */
	kernel_espd_tunnel_t *(*add_tunnel)(kernel_espd_registry_t *this,
						const char *key, const char *name, uint32_t reqid,
						ipsec_mode_t mode, host_t *peer, host_t *local);

	/**
	 * Give a tunnel a new key.
	 *
	 * @return			FALSE if another tunnel has that key (nothing changed)
	 */
	bool (*rekey_tunnel)(kernel_espd_registry_t *this,
						 kernel_espd_tunnel_t *tunnel, const char *key);

	/**
	 * Unregister a tunnel with all its SAs, wipe and free them.
	 */
	void (*remove_tunnel)(kernel_espd_registry_t *this,
						  kernel_espd_tunnel_t *tunnel);

	/**
	 * The tunnels, as a list the caller destroys (the registry may change
	 * while it is walked, the tunnels listed must not be removed).
	 */
	linked_list_t *(*list_tunnels)(kernel_espd_registry_t *this);

	/**
	 * The SPIs reserved by get_spi and not installed yet.
	 */
	linked_list_t *(*list_reservations)(kernel_espd_registry_t *this);

	/**
	 * Wipe and free everything.
	 */
	void (*destroy)(kernel_espd_registry_t *this);
};

/**
 * Create an empty registry.
 */
kernel_espd_registry_t *kernel_espd_registry_create();

#endif /** KERNEL_ESPD_REGISTRY_H_ @}*/
