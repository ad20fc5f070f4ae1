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
 * A small JSON reader for espd's control-socket answers and events: one
 * line of JSON parsed into a tree of values.
 *
 * @defgroup espd_json espd_json
 * @{ @ingroup espd_common
 */

#ifndef ESPD_JSON_H_
#define ESPD_JSON_H_

#include <library.h>

typedef struct espd_json_t espd_json_t;
typedef enum espd_json_type_t espd_json_type_t;

enum espd_json_type_t {
	ESPD_JSON_NULL,
	ESPD_JSON_BOOL,
	ESPD_JSON_NUMBER,
	ESPD_JSON_STRING,
	ESPD_JSON_ARRAY,
	ESPD_JSON_OBJECT,
};

/**
 * One JSON value. Arrays and objects hold their elements (members) as a
 * list through child/next; a member carries its name in key.
 */
struct espd_json_t {
	/** kind of value */
	espd_json_type_t type;
	/** member name, if this value is a member of an object */
	char *key;
	/** text of a string (unescaped) or of a number (as written) */
	char *text;
	/** value of a boolean */
	bool boolean;
	/** first element or member of an array or object */
	espd_json_t *child;
	/** next element or member of the enclosing array or object */
	espd_json_t *next;
};

/**
 * Parse one JSON document.
 *
 * @param text		the document (need not be NUL-terminated)
 * @param len		its length in bytes
 * @param error		set to a static description of the first problem
 * @return			the value, or NULL if the text is not one JSON value
 */
espd_json_t *espd_json_parse(const char *text, size_t len, const char **error);

/**
 * Free a value and everything in it.
 */
void espd_json_destroy(espd_json_t *value);

/**
 * Member of an object by name.
 *
 * @return			the member's value, or NULL if value is not an object
 *					or has no such member
 */
espd_json_t *espd_json_get(espd_json_t *object, const char *key);

/**
 * String member of an object.
 *
 * @return			its text, or NULL if absent or not a string
 */
const char *espd_json_get_str(espd_json_t *object, const char *key);

/**
 * Boolean member of an object.
 *
 * @param def		returned if absent or not a boolean
 */
bool espd_json_get_bool(espd_json_t *object, const char *key, bool def);

/**
 * An unsigned integer: a JSON number without sign, fraction or exponent, or
 * a string of hex digits with or without 0x (how espd writes SPIs).
 *
 * @param value		the value (NULL gives FALSE)
 * @param out		the integer
 * @return			TRUE if value is such an integer within 64 bits
 */
bool espd_json_u64(espd_json_t *value, uint64_t *out);

/**
 * Whether an answer says {"ok":true}.
 *
 * @param answer	the answer
 * @param error		set to the text of "error" (owned by answer) when not ok
 */
bool espd_json_ok(espd_json_t *answer, const char **error);

#endif /** ESPD_JSON_H_ @}*/
