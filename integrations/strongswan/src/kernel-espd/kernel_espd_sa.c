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

#include "kernel_espd_sa.h"
#include "kernel_espd_algs.h"

#include <utils/debug.h>

/** Appends "name":value for a limit that is set (0 is none) */
static void limit(espd_buf_t *buf, bool *first, const char *name,
				  uint64_t value)
{
	if (value)
	{
		espd_buf_printf(buf, "%s\"%s\":%llu", *first ? "" : ",", name,
						(unsigned long long)value);
		*first = FALSE;
	}
}

/** Appends the soft and hard limits of one kind, soft never above hard */
static void limits(espd_buf_t *buf, bool *first, const char *kind,
				   uint64_t rekey, uint64_t life)
{
	char name[32];

	if (life && rekey > life)
	{
		rekey = life;
	}
	snprintf(name, sizeof(name), "%s_soft", kind);
	limit(buf, first, name, rekey);
	snprintf(name, sizeof(name), "%s_hard", kind);
	limit(buf, first, name, life);
}

/*
 * Described in header
 */
bool kernel_espd_sa_json(espd_buf_t *buf, uint32_t spi,
						 kernel_ipsec_add_sa_t *data, const char **why)
{
	lifetime_cfg_t *lt = data->lifetime;
	const char *alg;
	uint32_t window;
	bool first = TRUE;

	alg = kernel_espd_alg_name(data->enc_alg, data->enc_key.len, data->int_alg,
							   data->int_key.len, why);
	if (!alg)
	{
		return FALSE;
	}
	espd_buf_printf(buf, "{\"spi\":\"0x%08x\",\"alg\":\"%s\"", spi, alg);
	if (data->enc_key.len)
	{
		espd_buf_printf(buf, ",\"key\":");
		espd_buf_hex(buf, data->enc_key);
	}
	if (data->int_key.len)
	{
		espd_buf_printf(buf, ",\"auth_key\":");
		espd_buf_hex(buf, data->int_key);
	}
	espd_buf_printf(buf, ",\"esn\":%s", data->esn ? "true" : "false");
	if (data->inbound)
	{
		window = data->replay_window;
		if (window > KERNEL_ESPD_MAX_REPLAY_WINDOW)
		{
			DBG1(DBG_KNL, "kernel-espd: replay window of %u packets cut to "
				 "espd's %u", window, KERNEL_ESPD_MAX_REPLAY_WINDOW);
			window = KERNEL_ESPD_MAX_REPLAY_WINDOW;
		}
		espd_buf_printf(buf, ",\"replay_window\":%u", window);
	}
	if (lt && (lt->time.life || lt->time.rekey || lt->bytes.life ||
			   lt->bytes.rekey || lt->packets.life || lt->packets.rekey))
	{
		espd_buf_printf(buf, ",\"lifetime\":{");
		limits(buf, &first, "seconds", lt->time.rekey, lt->time.life);
		limits(buf, &first, "bytes", lt->bytes.rekey, lt->bytes.life);
		limits(buf, &first, "packets", lt->packets.rekey, lt->packets.life);
		espd_buf_printf(buf, "}");
	}
	espd_buf_printf(buf, "}");
	return TRUE;
}
