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
 * charon's traffic selectors as the prefixes of espd's remote_ts.
 *
 * @defgroup kernel_espd_ts kernel_espd_ts
 * @{ @ingroup kernel_espd
 */

#ifndef KERNEL_ESPD_TS_H_
#define KERNEL_ESPD_TS_H_

#include <espd_buf.h>

#include <collections/linked_list.h>
#include <selectors/traffic_selector.h>

/**
 * Append a JSON array of the prefixes that cover exactly the address ranges
 * of the traffic selectors (a range that is no prefix becomes several), each
 * prefix once. espd selects by address only: protocols and ports of the
 * selectors are not enforced by it, which narrowed reports.
 *
 * @param buf			where to append
 * @param list			traffic_selector_t*, IPv4 or IPv6 address ranges
 * @param narrowed		set to TRUE if a selector has a protocol or ports
 * @return				FALSE if the list has no address range (nothing
 *						appended)
 */
bool kernel_espd_ts_prefixes(espd_buf_t *buf, linked_list_t *list,
							 bool *narrowed);

#endif /** KERNEL_ESPD_TS_H_ @}*/
