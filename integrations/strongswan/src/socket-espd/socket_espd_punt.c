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

#include "socket_espd_punt.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/un.h>
#include <netinet/in.h>

/** Offsets in the header */
#define OFF_MAGIC 0
#define OFF_VERSION 2
#define OFF_FAMILY 3
#define OFF_SRC_PORT 4
#define OFF_DST_PORT 6
#define OFF_SRC_ADDR 8
#define OFF_DST_ADDR 24

static const uint8_t magic[] = { 'E', 'P' };

/** An address field: 4 or 16 bytes, IPv4 padded with zeros */
static host_t *read_host(uint8_t *field, int family, uint16_t port)
{
	return host_create_from_chunk(family,
				chunk_create(field, family == AF_INET ? 4 : 16), port);
}

/*
 * Described in header
 */
bool espd_punt_decode(chunk_t datagram, host_t **src, host_t **dst,
					  chunk_t *payload, const char **error)
{
	uint8_t *h = datagram.ptr;
	int family;

	if (datagram.len < ESPD_PUNT_HEADER_LEN)
	{
		*error = "shorter than the punt header";
		return FALSE;
	}
	if (!memeq(h + OFF_MAGIC, magic, sizeof(magic)))
	{
		*error = "no \"EP\" magic";
		return FALSE;
	}
	if (h[OFF_VERSION] != ESPD_PUNT_VERSION)
	{
		*error = "unknown punt header version";
		return FALSE;
	}
	switch (h[OFF_FAMILY])
	{
		case 4:
			family = AF_INET;
			if (!chunk_equals(chunk_create(h + OFF_SRC_ADDR + 4, 12),
							  chunk_from_chars(0,0,0,0,0,0,0,0,0,0,0,0)) ||
				!chunk_equals(chunk_create(h + OFF_DST_ADDR + 4, 12),
							  chunk_from_chars(0,0,0,0,0,0,0,0,0,0,0,0)))
			{
				*error = "IPv4 address padding is not zero";
				return FALSE;
			}
			break;
		case 6:
			family = AF_INET6;
			break;
		default:
			*error = "family is neither 4 nor 6";
			return FALSE;
	}
	*src = read_host(h + OFF_SRC_ADDR, family, untoh16(h + OFF_SRC_PORT));
	*dst = read_host(h + OFF_DST_ADDR, family, untoh16(h + OFF_DST_PORT));
	if (!*src || !*dst)
	{
		DESTROY_IF(*src);
		DESTROY_IF(*dst);
		*error = "bad address";
		return FALSE;
	}
	*payload = chunk_skip(datagram, ESPD_PUNT_HEADER_LEN);
	return TRUE;
}

/*
 * Described in header
 */
bool espd_punt_is_hello(chunk_t datagram)
{
	return datagram.len == ESPD_PUNT_HEADER_LEN &&
		   memeq(datagram.ptr + OFF_MAGIC, magic, sizeof(magic)) &&
		   datagram.ptr[OFF_VERSION] == ESPD_PUNT_VERSION &&
		   datagram.ptr[OFF_FAMILY] == 0;
}

/*
 * Described in header
 */
bool espd_punt_encode(host_t *src, host_t *dst, uint8_t *header,
					  const char **error)
{
	chunk_t s, d;
	int family = dst->get_family(dst);

	if (src->get_family(src) != family)
	{
		*error = "source and destination are of different families";
		return FALSE;
	}
	if (family != AF_INET && family != AF_INET6)
	{
		*error = "neither IPv4 nor IPv6";
		return FALSE;
	}
	s = src->get_address(src);
	d = dst->get_address(dst);
	memset(header, 0, ESPD_PUNT_HEADER_LEN);
	memcpy(header + OFF_MAGIC, magic, sizeof(magic));
	header[OFF_VERSION] = ESPD_PUNT_VERSION;
	header[OFF_FAMILY] = family == AF_INET ? 4 : 6;
	htoun16(header + OFF_SRC_PORT, src->get_port(src));
	htoun16(header + OFF_DST_PORT, dst->get_port(dst));
	memcpy(header + OFF_SRC_ADDR, s.ptr, min(s.len, (size_t)16));
	memcpy(header + OFF_DST_ADDR, d.ptr, min(d.len, (size_t)16));
	return TRUE;
}

/*
 * Described in header
 */
bool espd_punt_address(const char *spec, struct sockaddr_storage *addr,
					   socklen_t *len, const char **error)
{
	struct sockaddr_un *un = (struct sockaddr_un*)addr;
	char hostpart[256], *colon, *end, *name;
	host_t *host;
	long port;

	memset(addr, 0, sizeof(*addr));
	if (strpfx(spec, "unix:"))
	{
		name = (char*)spec + strlen("unix:");
		if (!*name || strlen(name) >= sizeof(un->sun_path))
		{
			*error = "unix: needs a path of at most 107 bytes";
			return FALSE;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, name, strlen(name));
		*len = sizeof(*un);
		return TRUE;
	}
	if (!strpfx(spec, "udp:"))
	{
		*error = "expected unix:PATH or udp:HOST:PORT";
		return FALSE;
	}
	snprintf(hostpart, sizeof(hostpart), "%s", spec + strlen("udp:"));
	colon = strrchr(hostpart, ':');
	if (!colon)
	{
		*error = "udp: needs HOST:PORT";
		return FALSE;
	}
	*colon = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
	{
		*error = "udp: needs a port of 1-65535";
		return FALSE;
	}
	name = hostpart;
	if (name[0] == '[' && name[strlen(name) - 1] == ']')
	{
		name[strlen(name) - 1] = '\0';
		name++;
	}
	host = host_create_from_string(name, port);
	if (!host)
	{
		*error = "udp: needs a numeric IPv4 or IPv6 address";
		return FALSE;
	}
	*len = *host->get_sockaddr_len(host);
	memcpy(addr, host->get_sockaddr(host), *len);
	host->destroy(host);
	return TRUE;
}

/*
 * Described in header
 */
bool espd_punt_same_address(struct sockaddr_storage *a, socklen_t alen,
							struct sockaddr_storage *b, socklen_t blen)
{
	size_t off = offsetof(struct sockaddr_un, sun_path), an, bn;
	struct sockaddr_un *ua = (struct sockaddr_un*)a, *ub = (struct sockaddr_un*)b;

	if (alen < sizeof(sa_family_t) || blen < sizeof(sa_family_t) ||
		a->ss_family != b->ss_family)
	{
		return FALSE;
	}
	if (a->ss_family != AF_UNIX)
	{
		return alen == blen && memeq(a, b, alen);
	}
	an = alen > off ? min(alen - off, sizeof(ua->sun_path)) : 0;
	bn = blen > off ? min(blen - off, sizeof(ub->sun_path)) : 0;
	if (an && ua->sun_path[0] == '\0')
	{	/* abstract names are compared whole */
		return an == bn && memeq(ua->sun_path, ub->sun_path, an);
	}
	an = strnlen(ua->sun_path, an);
	bn = strnlen(ub->sun_path, bn);
	return an && an == bn && memeq(ua->sun_path, ub->sun_path, an);
}
