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

#include "espd_json.h"

#include <string.h>
#include <stdlib.h>

/** Deepest nesting accepted (espd's answers nest four levels) */
#define MAX_DEPTH 32

typedef struct {
	const char *pos;
	const char *end;
	const char *error;
} reader_t;

static espd_json_t *parse_value(reader_t *r, int depth);

static void skip_space(reader_t *r)
{
	while (r->pos < r->end &&
		   (*r->pos == ' ' || *r->pos == '\t' || *r->pos == '\n' ||
			*r->pos == '\r'))
	{
		r->pos++;
	}
}

static espd_json_t *fail(reader_t *r, const char *error)
{
	if (!r->error)
	{
		r->error = error;
	}
	return NULL;
}

static espd_json_t *new_value(espd_json_type_t type)
{
	espd_json_t *value;

	INIT(value,
		.type = type,
	);
	return value;
}

/** Appends the UTF-8 encoding of a code point */
static void put_utf8(char **out, uint32_t cp)
{
	char *o = *out;

	if (cp < 0x80)
	{
		*o++ = cp;
	}
	else if (cp < 0x800)
	{
		*o++ = 0xc0 | (cp >> 6);
		*o++ = 0x80 | (cp & 0x3f);
	}
	else if (cp < 0x10000)
	{
		*o++ = 0xe0 | (cp >> 12);
		*o++ = 0x80 | ((cp >> 6) & 0x3f);
		*o++ = 0x80 | (cp & 0x3f);
	}
	else
	{
		*o++ = 0xf0 | (cp >> 18);
		*o++ = 0x80 | ((cp >> 12) & 0x3f);
		*o++ = 0x80 | ((cp >> 6) & 0x3f);
		*o++ = 0x80 | (cp & 0x3f);
	}
	*out = o;
}

static bool hex4(reader_t *r, uint32_t *out)
{
	uint32_t v = 0;
	int i;
	char c;

	if (r->end - r->pos < 4)
	{
		return FALSE;
	}
	for (i = 0; i < 4; i++)
	{
		c = *r->pos++;
		v <<= 4;
		if (c >= '0' && c <= '9')
		{
			v |= c - '0';
		}
		else if (c >= 'a' && c <= 'f')
		{
			v |= c - 'a' + 10;
		}
		else if (c >= 'A' && c <= 'F')
		{
			v |= c - 'A' + 10;
		}
		else
		{
			return FALSE;
		}
	}
	*out = v;
	return TRUE;
}

/**
 * Parses a string at r->pos (on the opening quote) into a new NUL-terminated
 * buffer; escapes never make the text longer than the source.
 */
static char *parse_string(reader_t *r)
{
	const char *start;
	char *out, *o;
	uint32_t cp, low;

	r->pos++;
	start = r->pos;
	out = o = malloc(r->end - start + 1);
	while (r->pos < r->end && *r->pos != '"')
	{
		if ((unsigned char)*r->pos < 0x20)
		{
			free(out);
			fail(r, "control character in a string");
			return NULL;
		}
		if (*r->pos != '\\')
		{
			*o++ = *r->pos++;
			continue;
		}
		r->pos++;
		if (r->pos >= r->end)
		{
			break;
		}
		switch (*r->pos++)
		{
			case '"':
				*o++ = '"';
				break;
			case '\\':
				*o++ = '\\';
				break;
			case '/':
				*o++ = '/';
				break;
			case 'b':
				*o++ = '\b';
				break;
			case 'f':
				*o++ = '\f';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 'r':
				*o++ = '\r';
				break;
			case 't':
				*o++ = '\t';
				break;
			case 'u':
				if (!hex4(r, &cp))
				{
					free(out);
					fail(r, "bad \\u escape");
					return NULL;
				}
				if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->pos >= 6 &&
					r->pos[0] == '\\' && r->pos[1] == 'u')
				{
					r->pos += 2;
					if (!hex4(r, &low) || low < 0xdc00 || low > 0xdfff)
					{
						free(out);
						fail(r, "bad surrogate pair");
						return NULL;
					}
					cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
				}
				put_utf8(&o, cp);
				break;
			default:
				free(out);
				fail(r, "bad escape in a string");
				return NULL;
		}
	}
	if (r->pos >= r->end)
	{
		free(out);
		fail(r, "unterminated string");
		return NULL;
	}
	r->pos++;
	*o = '\0';
	return out;
}

static espd_json_t *parse_number(reader_t *r)
{
	const char *start = r->pos;
	espd_json_t *value;

	if (r->pos < r->end && *r->pos == '-')
	{
		r->pos++;
	}
	while (r->pos < r->end &&
		   ((*r->pos >= '0' && *r->pos <= '9') || *r->pos == '.' ||
			*r->pos == 'e' || *r->pos == 'E' || *r->pos == '+' ||
			*r->pos == '-'))
	{
		r->pos++;
	}
	if (r->pos == start || (r->pos == start + 1 && *start == '-'))
	{
		return fail(r, "unexpected character");
	}
	value = new_value(ESPD_JSON_NUMBER);
	value->text = strndup(start, r->pos - start);
	return value;
}

static bool literal(reader_t *r, const char *word)
{
	size_t len = strlen(word);

	if ((size_t)(r->end - r->pos) >= len && memeq(r->pos, word, len))
	{
		r->pos += len;
		return TRUE;
	}
	return FALSE;
}

/** Parses the elements (or members) of an array (object) after its bracket */
static espd_json_t *parse_container(reader_t *r, int depth, bool object)
{
	espd_json_t *value, *item, **tail;
	char close = object ? '}' : ']';
	char *key = NULL;

	if (depth > MAX_DEPTH)
	{
		return fail(r, "nested too deeply");
	}
	value = new_value(object ? ESPD_JSON_OBJECT : ESPD_JSON_ARRAY);
	tail = &value->child;
	r->pos++;
	skip_space(r);
	if (r->pos < r->end && *r->pos == close)
	{
		r->pos++;
		return value;
	}
	while (TRUE)
	{
		skip_space(r);
		if (object)
		{
			if (r->pos >= r->end || *r->pos != '"')
			{
				fail(r, "expected a member name");
				break;
			}
			key = parse_string(r);
			if (!key)
			{
				break;
			}
			skip_space(r);
			if (r->pos >= r->end || *r->pos != ':')
			{
				free(key);
				fail(r, "expected ':' after a member name");
				break;
			}
			r->pos++;
		}
		item = parse_value(r, depth + 1);
		if (!item)
		{
			free(key);
			break;
		}
		item->key = key;
		key = NULL;
		*tail = item;
		tail = &item->next;
		skip_space(r);
		if (r->pos < r->end && *r->pos == ',')
		{
			r->pos++;
			continue;
		}
		if (r->pos < r->end && *r->pos == close)
		{
			r->pos++;
			return value;
		}
		fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
		break;
	}
	espd_json_destroy(value);
	return NULL;
}

static espd_json_t *parse_value(reader_t *r, int depth)
{
	espd_json_t *value;
	char *text;

	skip_space(r);
	if (r->pos >= r->end)
	{
		return fail(r, "unexpected end");
	}
	switch (*r->pos)
	{
		case '{':
			return parse_container(r, depth, TRUE);
		case '[':
			return parse_container(r, depth, FALSE);
		case '"':
			text = parse_string(r);
			if (!text)
			{
				return NULL;
			}
			value = new_value(ESPD_JSON_STRING);
			value->text = text;
			return value;
		case 't':
		case 'f':
			if (literal(r, "true") || literal(r, "false"))
			{
				value = new_value(ESPD_JSON_BOOL);
				value->boolean = r->pos[-1] == 'e' && r->pos[-2] == 'u';
				return value;
			}
			return fail(r, "unexpected word");
		case 'n':
			if (literal(r, "null"))
			{
				return new_value(ESPD_JSON_NULL);
			}
			return fail(r, "unexpected word");
		default:
			return parse_number(r);
	}
}

/*
 * Described in header
 */
espd_json_t *espd_json_parse(const char *text, size_t len, const char **error)
{
	reader_t r = {
		.pos = text,
		.end = text + len,
	};
	espd_json_t *value;

	value = parse_value(&r, 0);
	if (value)
	{
		skip_space(&r);
		if (r.pos != r.end)
		{
			espd_json_destroy(value);
			value = fail(&r, "text after the value");
		}
	}
	if (!value && error)
	{
		*error = r.error ?: "not JSON";
	}
	return value;
}

/*
 * Described in header
 */
void espd_json_destroy(espd_json_t *value)
{
	espd_json_t *next;

	while (value)
	{
		next = value->next;
		espd_json_destroy(value->child);
		free(value->key);
		free(value->text);
		free(value);
		value = next;
	}
}

/*
 * Described in header
 */
espd_json_t *espd_json_get(espd_json_t *object, const char *key)
{
	espd_json_t *member;

	if (!object || object->type != ESPD_JSON_OBJECT)
	{
		return NULL;
	}
	for (member = object->child; member; member = member->next)
	{
		if (streq(member->key, key))
		{
			return member;
		}
	}
	return NULL;
}

/*
 * Described in header
 */
const char *espd_json_get_str(espd_json_t *object, const char *key)
{
	espd_json_t *member = espd_json_get(object, key);

	return member && member->type == ESPD_JSON_STRING ? member->text : NULL;
}

/*
 * Described in header
 */
bool espd_json_get_bool(espd_json_t *object, const char *key, bool def)
{
	espd_json_t *member = espd_json_get(object, key);

	return member && member->type == ESPD_JSON_BOOL ? member->boolean : def;
}

/*
 * Described in header
 */
bool espd_json_u64(espd_json_t *value, uint64_t *out)
{
	const char *p;
	uint64_t v = 0;
	int digit, base = 10;

	if (!value)
	{
		return FALSE;
	}
	if (value->type == ESPD_JSON_STRING)
	{
		base = 16;
	}
	else if (value->type != ESPD_JSON_NUMBER)
	{
		return FALSE;
	}
	p = value->text;
	if (base == 16 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
	{
		p += 2;
	}
	if (!*p)
	{
		return FALSE;
	}
	for (; *p; p++)
	{
		if (*p >= '0' && *p <= '9')
		{
			digit = *p - '0';
		}
		else if (base == 16 && *p >= 'a' && *p <= 'f')
		{
			digit = *p - 'a' + 10;
		}
		else if (base == 16 && *p >= 'A' && *p <= 'F')
		{
			digit = *p - 'A' + 10;
		}
		else
		{
			return FALSE;
		}
		if (v > (UINT64_MAX - digit) / base)
		{
			return FALSE;
		}
		v = v * base + digit;
	}
	*out = v;
	return TRUE;
}

/*
 * Described in header
 */
bool espd_json_ok(espd_json_t *answer, const char **error)
{
	if (espd_json_get_bool(answer, "ok", FALSE))
	{
		return TRUE;
	}
	if (error)
	{
		*error = espd_json_get_str(answer, "error") ?: "espd gave no reason";
	}
	return FALSE;
}
