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
 * An SA as espd's control protocol writes it (INTERFACE.md "An SA").
 *
 * @defgroup kernel_espd_sa kernel_espd_sa
 * @{ @ingroup kernel_espd
 */

#ifndef KERNEL_ESPD_SA_H_
#define KERNEL_ESPD_SA_H_

#include <espd_buf.h>

#include <kernel/kernel_ipsec.h>

/** The largest replay window espd takes */
#define KERNEL_ESPD_MAX_REPLAY_WINDOW 65536

/**
 * Append the SA object of an SA charon adds: SPI, algorithm and keys, ESN,
 * replay window (inbound), and the lifetimes in seconds, bytes and packets
 * (charon leaves the timing of SAs to the kernel backend: its expire events
 * start rekeys).
 *
 * @param buf			where to append
 * @param spi			SPI in host order
 * @param data			what charon passed to add_sa
 * @param why			set to a static description when FALSE is returned
 * @return				FALSE if espd cannot do the transform (nothing appended)
 */
bool kernel_espd_sa_json(espd_buf_t *buf, uint32_t spi,
						 kernel_ipsec_add_sa_t *data, const char **why);

#endif /** KERNEL_ESPD_SA_H_ @}*/
