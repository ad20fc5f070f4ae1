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
 * Which of charon's ESP transforms espd can do, under espd's names.
 *
 * @defgroup kernel_espd_algs kernel_espd_algs
 * @{ @ingroup kernel_espd
 */

#ifndef KERNEL_ESPD_ALGS_H_
#define KERNEL_ESPD_ALGS_H_

#include <library.h>

/**
 * espd's name of an ESP transform (the "alg" of an SA), checking the key
 * lengths too.
 *
 * AEAD: AES-GCM with a 16-byte ICV (128/192/256-bit keys) and
 * ChaCha20-Poly1305, enc_key being key and 4-byte salt. AES-CBC (128 or 256)
 * with HMAC-SHA1-96, HMAC-SHA-256-128, HMAC-SHA-384-192 and (AES-256 only)
 * HMAC-SHA-512-256; NULL encryption with HMAC-SHA-256-128.
 *
 * @param enc_alg		charon's encryption algorithm
 * @param enc_key_len	length of its key (with salt)
 * @param int_alg		charon's integrity algorithm (AUTH_UNDEFINED for AEAD)
 * @param int_key_len	length of its key
 * @param why			set to a static description when NULL is returned
 * @return				espd's name, NULL if espd cannot do the transform
 */
const char *kernel_espd_alg_name(uint16_t enc_alg, size_t enc_key_len,
								 uint16_t int_alg, size_t int_key_len,
								 const char **why);

#endif /** KERNEL_ESPD_ALGS_H_ @}*/
