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
 * A growing text buffer for JSON request lines. Request lines carry SA keys,
 * so the buffer never leaves a copy behind: growing moves the text and wipes
 * the old block, and espd_buf_wipe() clears it before freeing.
 *
 * @defgroup espd_buf espd_buf
 * @{ @ingroup espd_common
 */

#ifndef ESPD_BUF_H_
#define ESPD_BUF_H_

#include <library.h>

typedef struct espd_buf_t espd_buf_t;

struct espd_buf_t {
	/** text, NUL-terminated (NULL until something is added) */
	char *ptr;
	/** length of the text */
	size_t len;
	/** allocated bytes */
	size_t size;
};

/**
 * Append printf-formatted text (standard conversions only).
 */
void espd_buf_printf(espd_buf_t *this, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/**
 * Append a JSON string literal (quoted and escaped).
 */
void espd_buf_string(espd_buf_t *this, const char *text);

/**
 * Append bytes as a quoted string of lowercase hex digits.
 */
void espd_buf_hex(espd_buf_t *this, chunk_t data);

/**
 * Append "ADDRESS:PORT" (IPv6 as "[ADDRESS]:PORT") as a JSON string.
 */
void espd_buf_endpoint(espd_buf_t *this, host_t *host);

/**
 * Append "ADDRESS" as a JSON string.
 */
void espd_buf_address(espd_buf_t *this, host_t *host);

/**
 * The address of a host as text (no port), for names and keys.
 *
 * @param host		the host
 * @param out		where to write
 * @param len		size of out (INET6_ADDRSTRLEN is enough)
 * @return			out
 */
char *espd_host_text(host_t *host, char *out, size_t len);

/**
 * Wipe and free the text; the buffer is empty afterwards.
 */
void espd_buf_wipe(espd_buf_t *this);

#endif /** ESPD_BUF_H_ @}*/
