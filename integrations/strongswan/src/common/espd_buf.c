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

#include "espd_buf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/** Makes room for at least more bytes and the NUL */
static void reserve(espd_buf_t *this, size_t more)
{
	size_t size;
	char *ptr;

	if (this->len + more + 1 <= this->size)
	{
		return;
	}
	size = max(this->size * 2, (size_t)256);
	while (size < this->len + more + 1)
	{
		size *= 2;
	}
	ptr = malloc(size);
	if (this->ptr)
	{
		memcpy(ptr, this->ptr, this->len + 1);
		memwipe(this->ptr, this->size);
		free(this->ptr);
	}
	else
	{
		ptr[0] = '\0';
	}
	this->ptr = ptr;
	this->size = size;
}

static void append(espd_buf_t *this, const char *data, size_t len)
{
	reserve(this, len);
	memcpy(this->ptr + this->len, data, len);
	this->len += len;
	this->ptr[this->len] = '\0';
}

/*
 * Described in header
 */
void espd_buf_printf(espd_buf_t *this, const char *fmt, ...)
{
	va_list args;
	int len;

	va_start(args, fmt);
	len = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	if (len <= 0)
	{
		return;
	}
	reserve(this, len);
	va_start(args, fmt);
	vsnprintf(this->ptr + this->len, len + 1, fmt, args);
	va_end(args);
	this->len += len;
}

/*
 * Described in header
 */
void espd_buf_string(espd_buf_t *this, const char *text)
{
	const unsigned char *p;
	char esc[8];

	append(this, "\"", 1);
	for (p = (const unsigned char*)text; *p; p++)
	{
		switch (*p)
		{
			case '"':
				append(this, "\\\"", 2);
				break;
			case '\\':
				append(this, "\\\\", 2);
				break;
			default:
				if (*p < 0x20)
				{
					snprintf(esc, sizeof(esc), "\\u%04x", *p);
					append(this, esc, 6);
				}
				else
				{
					append(this, (const char*)p, 1);
				}
				break;
		}
	}
	append(this, "\"", 1);
}

/*
 * Described in header
 */
void espd_buf_hex(espd_buf_t *this, chunk_t data)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	reserve(this, data.len * 2 + 2);
	this->ptr[this->len++] = '"';
	for (i = 0; i < data.len; i++)
	{
		this->ptr[this->len++] = digits[data.ptr[i] >> 4];
		this->ptr[this->len++] = digits[data.ptr[i] & 0x0f];
	}
	this->ptr[this->len++] = '"';
	this->ptr[this->len] = '\0';
}

/*
 * Described in header
 */
char *espd_host_text(host_t *host, char *out, size_t len)
{
	chunk_t addr = host->get_address(host);
	int family = host->get_family(host);

	if (!inet_ntop(family, addr.ptr, out, len))
	{
		snprintf(out, len, "%s", family == AF_INET6 ? "::" : "0.0.0.0");
	}
	return out;
}

/*
 * Described in header
 */
void espd_buf_endpoint(espd_buf_t *this, host_t *host)
{
	char addr[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 16];

	espd_host_text(host, addr, sizeof(addr));
	snprintf(text, sizeof(text),
			 host->get_family(host) == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 addr, host->get_port(host));
	espd_buf_string(this, text);
}

/*
 * Described in header
 */
void espd_buf_address(espd_buf_t *this, host_t *host)
{
	char addr[INET6_ADDRSTRLEN];

	espd_buf_string(this, espd_host_text(host, addr, sizeof(addr)));
}

/*
 * Described in header
 */
void espd_buf_wipe(espd_buf_t *this)
{
	if (this->ptr)
	{
		memwipe(this->ptr, this->size);
		free(this->ptr);
	}
	*this = (espd_buf_t){};
}
