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
 * espd's events: a subscription on a control connection of its own, kept
 * open (and opened again, after espd restarted) by a thread.
 *
 * @defgroup kernel_espd_events kernel_espd_events
 * @{ @ingroup kernel_espd
 */

#ifndef KERNEL_ESPD_EVENTS_H_
#define KERNEL_ESPD_EVENTS_H_

#include <espd_json.h>

typedef struct kernel_espd_events_t kernel_espd_events_t;
typedef struct kernel_espd_listener_t kernel_espd_listener_t;

/**
 * What the subscription reports, called on its thread.
 */
struct kernel_espd_listener_t {

	/**
	 * espd sent an event line (e.g. {"event":"expire",...}).
	 */
	void (*event)(void *data, espd_json_t *event);

	/**
	 * The subscription is in place.
	 *
	 * @param first		TRUE the first time, FALSE after the connection was
	 *					lost
	 * @param restarted	FALSE when espd named the same instance as before
	 *					(it did not restart, its tunnels are all there);
	 *					TRUE otherwise, also when it names none
	 */
	void (*subscribed)(void *data, bool first, bool restarted);

	/** passed to the functions */
	void *data;
};

/**
 * The subscription.
 */
struct kernel_espd_events_t {

	/**
	 * Stop the thread and close the connection.
	 */
	void (*destroy)(kernel_espd_events_t *this);
};

/**
 * Start the subscription thread.
 *
 * @param path			espd's control socket
 * @param timeout_ms	how long the subscribe request waits for its answer
 * @param retry_s		seconds between attempts while espd cannot be reached
 * @param listener		what to call
 */
kernel_espd_events_t *kernel_espd_events_create(const char *path,
								int timeout_ms, int retry_s,
								kernel_espd_listener_t listener);

#endif /** KERNEL_ESPD_EVENTS_H_ @}*/
