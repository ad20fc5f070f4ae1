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

#include "kernel_espd_events.h"

#include <espd_control.h>

#include <unistd.h>

#include <threading/thread.h>
#include <utils/debug.h>

/** Longest event line accepted */
#define MAX_EVENT_LINE (1024 * 1024)

typedef struct private_kernel_espd_events_t private_kernel_espd_events_t;

struct private_kernel_espd_events_t {

	/** public interface */
	kernel_espd_events_t public;

	/** the subscription's connection */
	espd_control_t *control;

	/** the thread reading it */
	thread_t *thread;

	/** what to tell */
	kernel_espd_listener_t listener;

	/** seconds between connection attempts */
	int retry_s;

	/** subscribe answer timeout */
	int timeout_ms;

	/** the espd instance of the last subscription ("" if none was named) */
	char instance[64];

	/** whether the current subscription names another instance than the last */
	bool restarted;
};

/** Sleeps, a cancellation point */
static void pause_retry(private_kernel_espd_events_t *this)
{
	bool old;

	old = thread_cancelability(TRUE);
	sleep(this->retry_s);
	thread_cancelability(old);
}

/** Connects and subscribes; TRUE once espd said ok */
static bool subscribe(private_kernel_espd_events_t *this, const char **error)
{
	espd_buf_t line = {};
	espd_json_t *answer;
	const char *refused;
	bool ok;

	espd_buf_printf(&line, "{\"op\":\"subscribe\"}");
	ok = this->control->send(this->control, &line, error);
	espd_buf_wipe(&line);
	if (!ok)
	{
		return FALSE;
	}
	/* events may already come before the answer: none are, as espd answers
	 * the request first, but read until the answer all the same */
	while (TRUE)
	{
		answer = this->control->read(this->control, this->timeout_ms, error);
		if (!answer)
		{
			this->control->disconnect(this->control);
			return FALSE;
		}
		if (espd_json_get(answer, "event"))
		{
			this->listener.event(this->listener.data, answer);
			espd_json_destroy(answer);
			continue;
		}
		ok = espd_json_ok(answer, &refused);
		if (ok)
		{
			const char *instance = espd_json_get_str(answer, "instance");

			this->restarted = !instance || !this->instance[0] ||
							  !streq(instance, this->instance);
			snprintf(this->instance, sizeof(this->instance), "%s",
					 instance ?: "");
		}
		if (!ok)
		{
			DBG1(DBG_KNL, "kernel-espd: espd refused the subscription: %s",
				 refused);
			*error = "subscription refused";
			this->control->disconnect(this->control);
		}
		espd_json_destroy(answer);
		return ok;
	}
}

static void *run(private_kernel_espd_events_t *this)
{
	espd_json_t *event;
	const char *error = NULL, *last_error = NULL;
	bool first = TRUE;

	thread_cancelability(FALSE);
	while (TRUE)
	{
		if (!subscribe(this, &error))
		{
			if (error != last_error)
			{
				DBG1(DBG_KNL, "kernel-espd: cannot subscribe to espd's events "
					 "on %s: %s; trying every %d s",
					 this->control->get_path(this->control), error,
					 this->retry_s);
				last_error = error;
			}
			pause_retry(this);
			continue;
		}
		DBG1(DBG_KNL, "kernel-espd: subscribed to espd's events on %s "
			 "(espd instance %s%s)", this->control->get_path(this->control),
			 this->instance[0] ? this->instance : "not named",
			 first ? "" : this->restarted ? ", a new one" : ", the same");
		last_error = NULL;
		this->listener.subscribed(this->listener.data, first,
								  this->restarted);
		first = FALSE;
		while (TRUE)
		{
			event = this->control->read(this->control, -1, &error);
			if (!event)
			{
				break;
			}
			this->listener.event(this->listener.data, event);
			espd_json_destroy(event);
		}
		DBG1(DBG_KNL, "kernel-espd: lost espd's events (%s); reconnecting",
			 error);
		this->control->disconnect(this->control);
		pause_retry(this);
	}
	return NULL;
}

METHOD(kernel_espd_events_t, destroy, void,
	private_kernel_espd_events_t *this)
{
	if (this->thread)
	{
		this->thread->cancel(this->thread);
		this->thread->join(this->thread);
	}
	this->control->destroy(this->control);
	free(this);
}

/*
 * Described in header
 */
kernel_espd_events_t *kernel_espd_events_create(const char *path,
								int timeout_ms, int retry_s,
								kernel_espd_listener_t listener)
{
	private_kernel_espd_events_t *this;

	INIT(this,
		.public = {
			.destroy = _destroy,
		},
		.control = espd_control_create(path, timeout_ms, MAX_EVENT_LINE),
		.listener = listener,
		.retry_s = max(retry_s, 1),
		.timeout_ms = timeout_ms,
	);
	this->thread = thread_create((thread_main_t)run, this);
	if (!this->thread)
	{
		DBG1(DBG_KNL, "kernel-espd: cannot start the events thread");
		destroy(this);
		return NULL;
	}
	return &this->public;
}
