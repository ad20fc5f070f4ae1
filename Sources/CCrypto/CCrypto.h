// SPDX-License-Identifier: Apache-2.0
// Shims over OpenSSL 3 libcrypto for the ESP module: only what Swift cannot import or type well.
#ifndef CCRYPTO_H
#define CCRYPTO_H

// No feature macro: glibc's structs (fd_set) differ with and without _GNU_SOURCE, and this module
// must see them as Swift's Glibc module does (CLinux.h says more).

// The low-level SHA256_* API is deprecated in OpenSSL 3 but is the only allocation-free way to
// restart an HMAC per packet: EVP_MAC_init(NULL key) duplicates a provider context (malloc) each time.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>

// EVP_CipherInit_ex2 takes `unsigned char *`; void * lets Swift pass raw packet pointers.
static inline int CCrypto_EVP_CipherInit(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher,
                                         const void *key, const void *iv, int enc) {
  return EVP_CipherInit_ex2(ctx, cipher, (const unsigned char *)key, (const unsigned char *)iv, enc, NULL);
}

// EVP_CipherUpdate takes `unsigned char *`; void * lets Swift pass raw packet pointers.
static inline int CCrypto_EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, void *out, int *outl,
                                           const void *in, int inl) {
  return EVP_CipherUpdate(ctx, (unsigned char *)out, outl, (const unsigned char *)in, inl);
}

// EVP_CipherFinal_ex takes `unsigned char *`; void * lets Swift pass raw packet pointers.
static inline int CCrypto_EVP_CipherFinal(EVP_CIPHER_CTX *ctx, void *out, int *outl) {
  return EVP_CipherFinal_ex(ctx, (unsigned char *)out, outl);
}

// EVP_CTRL_AEAD_* are macros of macros that Swift does not import as constants.
static inline int CCrypto_EVP_CTRL_AEAD_GET_TAG(void) { return EVP_CTRL_AEAD_GET_TAG; }
// EVP_CTRL_AEAD_* are macros of macros that Swift does not import as constants.
static inline int CCrypto_EVP_CTRL_AEAD_SET_TAG(void) { return EVP_CTRL_AEAD_SET_TAG; }

// SHA1_Update takes `const void *` already, but SHA1_Final takes `unsigned char *`.
static inline int CCrypto_SHA1_Final(void *md, SHA_CTX *c) { return SHA1_Final((unsigned char *)md, c); }

// SHA256_Update takes `const void *` already, but SHA256_Final takes `unsigned char *`.
static inline int CCrypto_SHA256_Final(void *md, SHA256_CTX *c) {
  return SHA256_Final((unsigned char *)md, c);
}

// SHA384_Update takes `const void *` already, but SHA384_Final takes `unsigned char *`.
static inline int CCrypto_SHA384_Final(void *md, SHA512_CTX *c) {
  return SHA384_Final((unsigned char *)md, c);
}

// SHA512_Update takes `const void *` already, but SHA512_Final takes `unsigned char *`.
static inline int CCrypto_SHA512_Final(void *md, SHA512_CTX *c) {
  return SHA512_Final((unsigned char *)md, c);
}

// EVP_MAC needs an OSSL_PARAM array naming the digest ("SHA1", "SHA256", ...), which Swift cannot
// build tidily.
static inline EVP_MAC_CTX *CCrypto_HMAC_new(const char *digest, const void *key, size_t keylen) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (mac == NULL) return NULL;
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);
  if (ctx == NULL) return NULL;
  OSSL_PARAM params[2] = {
    OSSL_PARAM_construct_utf8_string("digest", (char *)digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx, (const unsigned char *)key, keylen, params) != 1) {
    EVP_MAC_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

// EVP_MAC_update/final take `unsigned char *`; void * lets Swift pass raw pointers.
static inline int CCrypto_EVP_MAC_update(EVP_MAC_CTX *ctx, const void *data, size_t len) {
  return EVP_MAC_update(ctx, (const unsigned char *)data, len);
}
// EVP_MAC_update/final take `unsigned char *`; void * lets Swift pass raw pointers.
static inline int CCrypto_EVP_MAC_final(EVP_MAC_CTX *ctx, void *out, size_t *outl, size_t outsize) {
  return EVP_MAC_final(ctx, (unsigned char *)out, outl, outsize);
}

// RAND_bytes takes `unsigned char *`; void * lets Swift pass raw pointers.
static inline int CCrypto_RAND_bytes(void *buf, int num) { return RAND_bytes((unsigned char *)buf, num); }

#endif
