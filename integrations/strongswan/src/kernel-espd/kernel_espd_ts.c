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

#include "kernel_espd_ts.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/** Bound on the prefixes of one tunnel (a range splits into at most 2*128) */
#define MAX_PREFIXES 1024

/** Whether the low hostbits bits of addr are all zero */
static bool aligned(const uint8_t *addr, int len, int hostbits)
{
	int i, bits;

	for (i = len - 1; i >= 0 && hostbits > 0; i--, hostbits -= 8)
	{
		bits = min(hostbits, 8);
		if (addr[i] & ((1 << bits) - 1))
		{
			return FALSE;
		}
	}
	return TRUE;
}

/** addr with its low hostbits bits set: the last address of the block */
static void block_end(const uint8_t *addr, int len, int hostbits, uint8_t *end)
{
	int i, bits;

	memcpy(end, addr, len);
	for (i = len - 1; i >= 0 && hostbits > 0; i--, hostbits -= 8)
	{
		bits = min(hostbits, 8);
		end[i] |= (1 << bits) - 1;
	}
}

/** Adds one to addr; FALSE if it wrapped past the last address */
static bool increment(uint8_t *addr, int len)
{
	int i;

	for (i = len - 1; i >= 0; i--)
	{
		if (++addr[i])
		{
			return TRUE;
		}
	}
	return FALSE;
}

/** Appends one prefix unless it was appended already */
static void add_prefix(espd_buf_t *buf, linked_list_t *seen, int family,
					   uint8_t *addr, int len, int prefixlen)
{
	enumerator_t *enumerator;
	char text[64], addr_text[INET6_ADDRSTRLEN], *old;
	host_t *net;
	bool dup = FALSE;

	if (seen->get_count(seen) >= MAX_PREFIXES)
	{
		return;
	}
	net = host_create_from_chunk(family, chunk_create(addr, len), 0);
	if (!net)
	{
		return;
	}
	snprintf(text, sizeof(text), "%s/%d",
			 espd_host_text(net, addr_text, sizeof(addr_text)), prefixlen);
	net->destroy(net);
	enumerator = seen->create_enumerator(seen);
	while (!dup && enumerator->enumerate(enumerator, &old))
	{
		dup = streq(old, text);
	}
	enumerator->destroy(enumerator);
	if (dup)
	{
		return;
	}
	espd_buf_printf(buf, "%s", seen->get_count(seen) ? "," : "");
	espd_buf_string(buf, text);
	seen->insert_last(seen, strdup(text));
}

/** Splits the range from..to into prefixes */
static void add_range(espd_buf_t *buf, linked_list_t *seen, int family,
					  chunk_t from, chunk_t to)
{
	uint8_t cur[16], end[16];
	int len = from.len, bits = len * 8, hostbits;

	if (len != to.len || len > 16)
	{
		return;
	}
	memcpy(cur, from.ptr, len);
	while (memcmp(cur, to.ptr, len) <= 0)
	{
		for (hostbits = bits; hostbits > 0; hostbits--)
		{
			if (aligned(cur, len, hostbits))
			{
				block_end(cur, len, hostbits, end);
				if (memcmp(end, to.ptr, len) <= 0)
				{
					break;
				}
			}
		}
		block_end(cur, len, hostbits, end);
		add_prefix(buf, seen, family, cur, len, bits - hostbits);
		memcpy(cur, end, len);
		if (!increment(cur, len))
		{
			break;
		}
	}
}

/*
 * Described in header
 */
bool kernel_espd_ts_prefixes(espd_buf_t *buf, linked_list_t *list,
							 bool *narrowed)
{
	enumerator_t *enumerator;
	traffic_selector_t *ts;
	linked_list_t *seen;
	size_t start = buf->len;
	bool any;

	seen = linked_list_create();
	espd_buf_printf(buf, "[");
	enumerator = list->create_enumerator(list);
	while (enumerator->enumerate(enumerator, &ts))
	{
		switch (ts->get_type(ts))
		{
			case TS_IPV4_ADDR_RANGE:
				add_range(buf, seen, AF_INET, ts->get_from_address(ts),
						  ts->get_to_address(ts));
				break;
			case TS_IPV6_ADDR_RANGE:
				add_range(buf, seen, AF_INET6, ts->get_from_address(ts),
						  ts->get_to_address(ts));
				break;
			default:
				continue;
		}
		if (ts->get_protocol(ts) || ts->get_from_port(ts) != 0 ||
			ts->get_to_port(ts) != 0xffff)
		{
			*narrowed = TRUE;
		}
	}
	enumerator->destroy(enumerator);
	espd_buf_printf(buf, "]");
	any = seen->get_count(seen) > 0;
	seen->destroy_function(seen, free);
	if (!any)
	{
		buf->len = start;
		if (buf->ptr)
		{
			buf->ptr[start] = '\0';
		}
	}
	return any;
}
