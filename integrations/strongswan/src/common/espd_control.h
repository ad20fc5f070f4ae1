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
 * A connection to espd's control socket (a Unix stream socket, one JSON
 * object per line each way).
 *
 * @defgroup espd_control espd_control
 * @{ @ingroup espd_common
 */

#ifndef ESPD_CONTROL_H_
#define ESPD_CONTROL_H_

#include "espd_buf.h"
#include "espd_json.h"

typedef struct espd_control_t espd_control_t;

/**
 * A control-socket connection. Not thread-safe: the caller serializes.
 */
struct espd_control_t {

	/**
	 * Send one request and read its answer. Connects first if needed; a
	 * request that could not be written on a connection espd had closed is
	 * written once more on a new one (espd applied nothing then).
	 *
	 * @param request	the request object, without the newline
	 * @param error		set to a static description when NULL is returned
	 * @return			the answer (to destroy), NULL if espd could not be
	 *					reached or gave no answer in time
	 */
	espd_json_t *(*request)(espd_control_t *this, espd_buf_t *request,
							const char **error);

	/**
	 * Send one line without waiting for an answer (e.g. subscribe).
	 *
	 * @return			TRUE if written
	 */
	bool (*send)(espd_control_t *this, espd_buf_t *line, const char **error);

	/**
	 * Read the next line (an answer or an event).
	 *
	 * @param timeout_ms	-1 to wait for ever (a thread cancellation point)
	 * @param error		set when NULL is returned: "timeout", or why the
	 *					connection was lost (it is closed then)
	 * @return			the parsed line, NULL on timeout or loss
	 */
	espd_json_t *(*read)(espd_control_t *this, int timeout_ms,
						 const char **error);

	/**
	 * Connect, if not connected.
	 */
	bool (*connect)(espd_control_t *this, const char **error);

	/**
	 * Whether the connection is open.
	 */
	bool (*is_connected)(espd_control_t *this);

	/**
	 * Close the connection (the next request opens a new one).
	 */
	void (*disconnect)(espd_control_t *this);

	/**
	 * Path of the socket.
	 */
	const char *(*get_path)(espd_control_t *this);

	/**
	 * Close and free.
	 */
	void (*destroy)(espd_control_t *this);
};

/**
 * Create a connection (not connected yet).
 *
 * @param path			the control socket
 * @param timeout_ms	how long a request waits for its answer
 * @param max_line		longest answer accepted, in bytes
 */
espd_control_t *espd_control_create(const char *path, int timeout_ms,
									size_t max_line);

#endif /** ESPD_CONTROL_H_ @}*/
