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
 * espd's IKE punt header (docs/INTERFACE.md "The IKE punt channel"): 40 bytes in front of
 * each IKE message between espd and the IKE daemon, and where the punt
 * channel is (unix:PATH or udp:HOST:PORT).
 *
 * @defgroup socket_espd_punt socket_espd_punt
 * @{ @ingroup socket_espd
 */

#ifndef SOCKET_ESPD_PUNT_H_
#define SOCKET_ESPD_PUNT_H_

#include <library.h>
#include <networking/host.h>

#include <sys/socket.h>

/** Length of the punt header */
#define ESPD_PUNT_HEADER_LEN 40

/** Version of the header layout */
#define ESPD_PUNT_VERSION 1

/** Bit of the family byte asking espd to send a reply as it is (no marker) */
#define ESPD_PUNT_RAW 0x80

/**
 * Read the header of a punted datagram.
 *
 * @param datagram		the datagram as received
 * @param src			set to the IKE message's source (address and port)
 * @param dst			set to its destination (espd's listen address)
 * @param payload		set to the IKE message after the header
 * @param error			set to a static description when FALSE is returned
 * @return				TRUE if the header is valid
 */
bool espd_punt_decode(chunk_t datagram, host_t **src, host_t **dst,
					  chunk_t *payload, const char **error);

/**
 * Whether a datagram is a hello: a header alone with family 0, which espd
 * sends to make its end of the channel known (ESPD-EXTENSIONS.md).
 */
bool espd_punt_is_hello(chunk_t datagram);

/**
 * Write the header of a reply.
 *
 * @param src			espd's listen address and port to send from
 * @param dst			the peer
 * @param header		ESPD_PUNT_HEADER_LEN bytes
 * @param error			set to a static description when FALSE is returned
 * @return				TRUE if written (both of one family)
 */
bool espd_punt_encode(host_t *src, host_t *dst, uint8_t *header,
					  const char **error);

/**
 * Parse a punt channel address: "unix:PATH" or "udp:HOST:PORT" (IPv6 as
 * "udp:[ADDRESS]:PORT").
 *
 * @param spec			the address as configured
 * @param addr			the socket address
 * @param len			its length
 * @param error			set to a static description when FALSE is returned
 * @return				TRUE if spec is such an address
 */
bool espd_punt_address(const char *spec, struct sockaddr_storage *addr,
					   socklen_t *len, const char **error);

/**
 * Whether two punt channel addresses name the same socket. A Unix address is
 * compared by its path: the kernel reports a sender's path with the length
 * it has, not the sizeof(struct sockaddr_un) it was configured with.
 *
 * @param a				one address
 * @param alen			its length
 * @param b				the other
 * @param blen			its length
 * @return				TRUE if both name the same socket
 */
bool espd_punt_same_address(struct sockaddr_storage *a, socklen_t alen,
							struct sockaddr_storage *b, socklen_t blen);

#endif /** SOCKET_ESPD_PUNT_H_ @}*/
