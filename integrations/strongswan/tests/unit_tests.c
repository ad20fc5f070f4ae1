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

/*
 * Unit tests of the plugins' pure parts: the JSON reader and writer, and
 * traffic selectors as prefixes. Built and run by `build.sh --test`.
 */

#include <library.h>
#include <espd_buf.h>
#include <espd_json.h>
#include <kernel_espd_algs.h>
#include <kernel_espd_ts.h>
#include <socket_espd_punt.h>

#include <stddef.h>
#include <sys/un.h>

#include <stdio.h>

#include <crypto/crypters/crypter.h>
#include <crypto/signers/signer.h>

static int checks, failures;

#define CHECK(cond) do { checks++; if (!(cond)) { failures++; \
	printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)

/** The prefixes of one address range */
static void range(const char *from, const char *to, const char *want)
{
	host_t *f = host_create_from_string((char*)from, 0);
	host_t *t = host_create_from_string((char*)to, 0);
	traffic_selector_t *ts;
	linked_list_t *list;
	espd_buf_t buf = {};
	bool narrowed = FALSE;

	ts = traffic_selector_create_from_bytes(0, f->get_family(f) == AF_INET ?
						TS_IPV4_ADDR_RANGE : TS_IPV6_ADDR_RANGE,
						f->get_address(f), 0, t->get_address(t), 65535);
	list = linked_list_create_with_items(ts, NULL);
	CHECK(kernel_espd_ts_prefixes(&buf, list, &narrowed));
	CHECK(buf.ptr && streq(buf.ptr, want));
	if (buf.ptr && !streq(buf.ptr, want))
	{
		printf("     %s-%s gave %s, not %s\n", from, to, buf.ptr, want);
	}
	CHECK(!narrowed);
	espd_buf_wipe(&buf);
	list->destroy_offset(list, offsetof(traffic_selector_t, destroy));
	f->destroy(f);
	t->destroy(t);
}

static void test_json()
{
	const char *line = "{\"ok\":true,\"tunnels\":[{\"name\":\"a\\u00e9\\\"b\","
		"\"inbound\":[{\"spi\":\"0xc1a0b001\",\"bytes\":12345678901234}],"
		"\"x\":null,\"y\":[1,-2.5e3,false]}]}";
	const char *bad[] = { "{", "{\"a\":}", "[1,]", "{\"a\":1} x", "\"\\x\"",
						  "{\"a\" 1}", "tru", "", "{\"a\":\"\x01\"}" };
	const char *refusal = "{\"ok\":false,\"error\":\"op: unknown op \\\"x\\\"\"}";
	espd_json_t *json, *tunnel, *sa;
	const char *error = NULL;
	char deep[200];
	uint64_t v;
	int i;

	json = espd_json_parse(line, strlen(line), &error);
	CHECK(json && espd_json_ok(json, &error));
	tunnel = espd_json_get(json, "tunnels") ? espd_json_get(json, "tunnels")->child : NULL;
	CHECK(tunnel && streq(espd_json_get_str(tunnel, "name") ?: "", "a\xc3\xa9\"b"));
	sa = tunnel ? espd_json_get(tunnel, "inbound")->child : NULL;
	CHECK(espd_json_u64(espd_json_get(sa, "spi"), &v) && v == 0xc1a0b001);
	CHECK(espd_json_u64(espd_json_get(sa, "bytes"), &v) && v == 12345678901234ULL);
	CHECK(!espd_json_get_str(tunnel, "x"));
	espd_json_destroy(json);

	for (i = 0; i < countof(bad); i++)
	{
		error = NULL;
		json = espd_json_parse(bad[i], strlen(bad[i]), &error);
		CHECK(!json && error);
		espd_json_destroy(json);
	}
	json = espd_json_parse(refusal, strlen(refusal), &error);
	CHECK(json && !espd_json_ok(json, &error) && strpfx(error, "op: unknown op"));
	espd_json_destroy(json);

	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	json = espd_json_parse(deep, sizeof(deep), &error);
	CHECK(!json);
}

static void test_buf()
{
	espd_buf_t buf = {};
	host_t *host;
	int i;

	host = host_create_from_string("2001:db8::1", 4500);
	espd_buf_endpoint(&buf, host);
	host->destroy(host);
	host = host_create_from_string("192.0.2.1", 4500);
	espd_buf_printf(&buf, " ");
	espd_buf_endpoint(&buf, host);
	host->destroy(host);
	espd_buf_printf(&buf, " ");
	espd_buf_string(&buf, "q\"\\\n");
	espd_buf_printf(&buf, " ");
	espd_buf_hex(&buf, chunk_from_chars(0x00, 0xab, 0xff));
	CHECK(streq(buf.ptr, "\"[2001:db8::1]:4500\" \"192.0.2.1:4500\" "
				"\"q\\\"\\\\\\u000a\" \"00abff\""));
	espd_buf_wipe(&buf);
	for (i = 0; i < 10000; i++)
	{
		espd_buf_printf(&buf, "%d,", i);
	}
	CHECK(buf.len == strlen(buf.ptr) && strpfx(buf.ptr, "0,1,2,"));
	espd_buf_wipe(&buf);
	CHECK(!buf.ptr && !buf.len);
}

static void test_ts()
{
	range("10.0.0.1", "10.0.0.6",
		  "[\"10.0.0.1/32\",\"10.0.0.2/31\",\"10.0.0.4/31\",\"10.0.0.6/32\"]");
	range("0.0.0.0", "255.255.255.255", "[\"0.0.0.0/0\"]");
	range("198.51.100.10", "198.51.100.10", "[\"198.51.100.10/32\"]");
	range("198.51.100.0", "198.51.100.255", "[\"198.51.100.0/24\"]");
	range("255.255.255.254", "255.255.255.255", "[\"255.255.255.254/31\"]");
	range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "[\"::/0\"]");
	range("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
		  "[\"2001:db8::/32\"]");
}

static void test_algs()
{
	const char *why = NULL;

	CHECK(streq(kernel_espd_alg_name(ENCR_AES_GCM_ICV16, 20, AUTH_UNDEFINED, 0, &why), "aes128gcm16"));
	CHECK(streq(kernel_espd_alg_name(ENCR_AES_GCM_ICV16, 36, AUTH_UNDEFINED, 0, &why), "aes256gcm16"));
	CHECK(streq(kernel_espd_alg_name(ENCR_CHACHA20_POLY1305, 36, AUTH_UNDEFINED, 0, &why), "chacha20poly1305"));
	CHECK(streq(kernel_espd_alg_name(ENCR_AES_CBC, 16, AUTH_HMAC_SHA1_96, 20, &why), "aes128-sha1"));
	CHECK(streq(kernel_espd_alg_name(ENCR_AES_CBC, 32, AUTH_HMAC_SHA2_512_256, 64, &why), "aes256-sha512"));
	CHECK(!kernel_espd_alg_name(ENCR_AES_CBC, 16, AUTH_HMAC_SHA2_512_256, 64, &why));
	CHECK(!kernel_espd_alg_name(ENCR_AES_CBC, 24, AUTH_HMAC_SHA2_256_128, 32, &why) &&
		  strstr(why, "key size"));
	CHECK(!kernel_espd_alg_name(ENCR_3DES, 24, AUTH_HMAC_SHA1_96, 20, &why) &&
		  strstr(why, "encryption algorithm"));
	CHECK(!kernel_espd_alg_name(ENCR_AES_CBC, 16, AUTH_HMAC_SHA2_256_96, 32, &why) &&
		  strstr(why, "integrity algorithm"));
}

/** A Unix address as the kernel reports a sender: path length + NUL */
static socklen_t unix_sender(struct sockaddr_storage *s, const char *path)
{
	struct sockaddr_un *un = (struct sockaddr_un*)s;

	memset(s, 0, sizeof(*s));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, strlen(path));
	return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static void test_punt_address()
{
	struct sockaddr_storage conf, from, other;
	socklen_t conflen, fromlen, otherlen;
	const char *error = NULL;

	CHECK(espd_punt_address("unix:/run/espd/ike-espd.sock", &conf, &conflen, &error));
	fromlen = unix_sender(&from, "/run/espd/ike-espd.sock");
	CHECK(conflen != fromlen);
	CHECK(espd_punt_same_address(&conf, conflen, &from, fromlen));
	otherlen = unix_sender(&other, "/run/espd/ike-espd.sockx");
	CHECK(!espd_punt_same_address(&conf, conflen, &other, otherlen));
	otherlen = unix_sender(&other, "/run/espd/ike-esp");
	CHECK(!espd_punt_same_address(&conf, conflen, &other, otherlen));
	/* an autobound (abstract) sender is never the configured path */
	otherlen = unix_sender(&other, "");
	other.ss_family = AF_UNIX;
	((struct sockaddr_un*)&other)->sun_path[1] = 'a';
	otherlen = offsetof(struct sockaddr_un, sun_path) + 6;
	CHECK(!espd_punt_same_address(&conf, conflen, &other, otherlen));
	CHECK(espd_punt_same_address(&other, otherlen, &other, otherlen));
	CHECK(espd_punt_address("udp:127.0.0.1:4501", &from, &fromlen, &error));
	CHECK(espd_punt_address("udp:127.0.0.1:4501", &other, &otherlen, &error));
	CHECK(espd_punt_same_address(&from, fromlen, &other, otherlen));
	CHECK(espd_punt_address("udp:127.0.0.1:4502", &other, &otherlen, &error));
	CHECK(!espd_punt_same_address(&from, fromlen, &other, otherlen));
	CHECK(!espd_punt_same_address(&from, fromlen, &conf, conflen));
}

int main()
{
	if (!library_init(NULL, "espd-unit-tests"))
	{
		printf("library_init failed\n");
		return 1;
	}
	test_json();
	test_buf();
	test_ts();
	test_algs();
	test_punt_address();
	library_deinit();
	printf("%d passed, %d failed\n", checks - failures, failures);
	return failures != 0;
}
