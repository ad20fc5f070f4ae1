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

#include "kernel_espd_algs.h"

#include <crypto/crypters/crypter.h>
#include <crypto/signers/signer.h>

/** The salt that follows the key of AES-GCM and ChaCha20-Poly1305 (RFC 4106, 7634) */
#define SALT_LEN 4

typedef struct {
	/** charon's encryption algorithm */
	uint16_t enc;
	/** its key length in bytes (with the salt of an AEAD) */
	size_t enc_len;
	/** charon's integrity algorithm, AUTH_UNDEFINED for an AEAD */
	uint16_t integ;
	/** its key length in bytes */
	size_t int_len;
	/** espd's name */
	const char *name;
} transform_t;

static const transform_t transforms[] = {
	{ ENCR_AES_GCM_ICV16,		16 + SALT_LEN,	AUTH_UNDEFINED,			0,	"aes128gcm16" },
	{ ENCR_AES_GCM_ICV16,		24 + SALT_LEN,	AUTH_UNDEFINED,			0,	"aes192gcm16" },
	{ ENCR_AES_GCM_ICV16,		32 + SALT_LEN,	AUTH_UNDEFINED,			0,	"aes256gcm16" },
	{ ENCR_CHACHA20_POLY1305,	32 + SALT_LEN,	AUTH_UNDEFINED,			0,	"chacha20poly1305" },
	{ ENCR_AES_CBC,				16,				AUTH_HMAC_SHA2_256_128,	32,	"aes128-sha256" },
	{ ENCR_AES_CBC,				32,				AUTH_HMAC_SHA2_256_128,	32,	"aes256-sha256" },
	{ ENCR_AES_CBC,				16,				AUTH_HMAC_SHA1_96,		20,	"aes128-sha1" },
	{ ENCR_AES_CBC,				32,				AUTH_HMAC_SHA1_96,		20,	"aes256-sha1" },
	{ ENCR_AES_CBC,				16,				AUTH_HMAC_SHA2_384_192,	48,	"aes128-sha384" },
	{ ENCR_AES_CBC,				32,				AUTH_HMAC_SHA2_384_192,	48,	"aes256-sha384" },
	{ ENCR_AES_CBC,				32,				AUTH_HMAC_SHA2_512_256,	64,	"aes256-sha512" },
	{ ENCR_NULL,				0,				AUTH_HMAC_SHA2_256_128,	32,	"null-sha256" },
};

/*
 * Described in header
 */
const char *kernel_espd_alg_name(uint16_t enc_alg, size_t enc_key_len,
								 uint16_t int_alg, size_t int_key_len,
								 const char **why)
{
	bool enc_known = FALSE, pair_known = FALSE;
	int i;

	for (i = 0; i < countof(transforms); i++)
	{
		if (transforms[i].enc != enc_alg)
		{
			continue;
		}
		enc_known = TRUE;
		if (transforms[i].integ != int_alg)
		{
			continue;
		}
		pair_known = TRUE;
		if (transforms[i].enc_len == enc_key_len &&
			transforms[i].int_len == int_key_len)
		{
			return transforms[i].name;
		}
	}
	*why = !enc_known ? "encryption algorithm not supported by espd"
		 : !pair_known ? "integrity algorithm not supported by espd with this "
						 "encryption algorithm"
		 : "key size not supported by espd";
	return NULL;
}
