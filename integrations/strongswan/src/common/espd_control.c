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

#include "espd_control.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <threading/thread.h>
#include <utils/debug.h>

typedef struct private_espd_control_t private_espd_control_t;

struct private_espd_control_t {

	/** public interface */
	espd_control_t public;

	/** socket path */
	char *path;

	/** the connection, -1 if none */
	int fd;

	/** answer timeout */
	int timeout_ms;

	/** longest line accepted */
	size_t max_line;

	/** bytes received and not yet returned as lines */
	char *in;

	/** bytes in in */
	size_t in_len;

	/** size of in */
	size_t in_size;
};

METHOD(espd_control_t, disconnect, void,
	private_espd_control_t *this)
{
	if (this->fd != -1)
	{
		close(this->fd);
		this->fd = -1;
	}
	this->in_len = 0;
}

METHOD(espd_control_t, is_connected, bool,
	private_espd_control_t *this)
{
	return this->fd != -1;
}

METHOD(espd_control_t, connect_, bool,
	private_espd_control_t *this, const char **error)
{
	struct sockaddr_un addr = {
		.sun_family = AF_UNIX,
	};

	if (this->fd != -1)
	{
		return TRUE;
	}
	if (strlen(this->path) >= sizeof(addr.sun_path))
	{
		*error = "control socket path too long";
		return FALSE;
	}
	strncpy(addr.sun_path, this->path, sizeof(addr.sun_path) - 1);
	this->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (this->fd == -1)
	{
		*error = "cannot create a Unix socket";
		return FALSE;
	}
	if (connect(this->fd, (struct sockaddr*)&addr, sizeof(addr)) != 0)
	{
		*error = errno == ENOENT ? "no control socket (is espd running?)"
				 : errno == ECONNREFUSED ? "connection refused (is espd running?)"
				 : errno == EACCES ? "permission denied"
				 : "cannot connect";
		disconnect(this);
		return FALSE;
	}
	this->in_len = 0;
	return TRUE;
}

/** Monotonic milliseconds */
static int64_t now_ms()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** Writes all of data, FALSE (errno set) on failure */
static bool write_all(int fd, const char *data, size_t len)
{
	ssize_t n;

	while (len)
	{
		n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0)
		{
			if (errno == EINTR)
			{
				continue;
			}
			return FALSE;
		}
		data += n;
		len -= n;
	}
	return TRUE;
}

/** Writes the line and its newline on the current connection */
static bool write_line(private_espd_control_t *this, espd_buf_t *line)
{
	espd_buf_printf(line, "\n");
	if (write_all(this->fd, line->ptr, line->len))
	{
		line->ptr[--line->len] = '\0';
		return TRUE;
	}
	line->ptr[--line->len] = '\0';
	return FALSE;
}

METHOD(espd_control_t, send_, bool,
	private_espd_control_t *this, espd_buf_t *line, const char **error)
{
	if (!connect_(this, error))
	{
		return FALSE;
	}
	if (!write_line(this, line))
	{
		*error = "cannot write to the control socket";
		disconnect(this);
		return FALSE;
	}
	return TRUE;
}

/** Moves the received bytes to a new block, wiping the old one */
static void grow(private_espd_control_t *this)
{
	size_t size = max(this->in_size * 2, (size_t)4096);
	char *in = malloc(size);

	if (this->in)
	{
		memcpy(in, this->in, this->in_len);
		memwipe(this->in, this->in_size);
		free(this->in);
	}
	this->in = in;
	this->in_size = size;
}

/** Takes one complete line out of the buffer, if there is one */
static espd_json_t *take_line(private_espd_control_t *this, bool *found,
							  const char **error)
{
	espd_json_t *json;
	char *nl;
	size_t len;

	nl = this->in_len ? memchr(this->in, '\n', this->in_len) : NULL;
	*found = nl != NULL;
	if (!nl)
	{
		return NULL;
	}
	len = nl - this->in;
	json = espd_json_parse(this->in, len, error);
	memwipe(this->in, len + 1);
	memmove(this->in, nl + 1, this->in_len - len - 1);
	this->in_len -= len + 1;
	return json;
}

METHOD(espd_control_t, read_, espd_json_t*,
	private_espd_control_t *this, int timeout_ms, const char **error)
{
	struct pollfd pfd;
	espd_json_t *json;
	bool found, old;
	ssize_t n;
	int ready;
	int64_t deadline = 0;

	if (this->fd == -1)
	{
		*error = "not connected";
		return NULL;
	}
	if (timeout_ms >= 0)
	{
		deadline = now_ms() + timeout_ms;
	}
	while (TRUE)
	{
		json = take_line(this, &found, error);
		if (found)
		{
			if (!json)
			{
				*error = "espd sent a line that is not JSON";
			}
			return json;
		}
		if (this->in_len == this->in_size)
		{
			if (this->in_size >= this->max_line)
			{
				*error = "espd sent a line longer than the limit";
				disconnect(this);
				return NULL;
			}
			grow(this);
		}
		pfd = (struct pollfd){ .fd = this->fd, .events = POLLIN };
		if (timeout_ms < 0)
		{
			old = thread_cancelability(TRUE);
			ready = poll(&pfd, 1, -1);
			thread_cancelability(old);
		}
		else
		{
			ready = poll(&pfd, 1, (int)max(deadline - now_ms(), (int64_t)0));
		}
		if (ready < 0 && errno == EINTR)
		{
			continue;
		}
		if (ready == 0)
		{
			*error = "timeout";
			return NULL;
		}
		n = ready > 0 ? recv(this->fd, this->in + this->in_len,
							 this->in_size - this->in_len, 0) : -1;
		if (n < 0 && errno == EINTR)
		{
			continue;
		}
		if (n <= 0)
		{
			*error = n == 0 ? "espd closed the control connection"
							: "cannot read from the control socket";
			disconnect(this);
			return NULL;
		}
		this->in_len += n;
	}
}

METHOD(espd_control_t, request, espd_json_t*,
	private_espd_control_t *this, espd_buf_t *request, const char **error)
{
	espd_json_t *answer;
	bool fresh;
	int attempt;

	for (attempt = 0; attempt < 2; attempt++)
	{
		fresh = this->fd == -1;
		if (!connect_(this, error))
		{
			return NULL;
		}
		if (!write_line(this, request))
		{
			disconnect(this);
			if (fresh)
			{
				*error = "cannot write to the control socket";
				return NULL;
			}
			/* espd closed an idle connection (or restarted): nothing was
			 * applied, write it again on a new one */
			continue;
		}
		answer = read_(this, this->timeout_ms, error);
		if (!answer && this->fd != -1)
		{
			/* a timeout: the answer may still come, and would be taken for
			 * the next request's */
			disconnect(this);
		}
		return answer;
	}
	*error = "cannot write to the control socket";
	return NULL;
}

METHOD(espd_control_t, get_path, const char*,
	private_espd_control_t *this)
{
	return this->path;
}

METHOD(espd_control_t, destroy, void,
	private_espd_control_t *this)
{
	disconnect(this);
	if (this->in)
	{
		memwipe(this->in, this->in_size);
		free(this->in);
	}
	free(this->path);
	free(this);
}

/*
 * Described in header
 */
espd_control_t *espd_control_create(const char *path, int timeout_ms,
									size_t max_line)
{
	private_espd_control_t *this;

	INIT(this,
		.public = {
			.request = _request,
			.send = _send_,
			.read = _read_,
			.connect = _connect_,
			.is_connected = _is_connected,
			.disconnect = _disconnect,
			.get_path = _get_path,
			.destroy = _destroy,
		},
		.path = strdup(path),
		.fd = -1,
		.timeout_ms = timeout_ms,
		.max_line = max(max_line, (size_t)4096),
	);
	return &this->public;
}
