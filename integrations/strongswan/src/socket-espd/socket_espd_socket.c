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

#include "socket_espd_socket.h"
#include "socket_espd_punt.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <daemon.h>
#include <threading/mutex.h>
#include <threading/thread.h>

/** The non-ESP marker (RFC 3948) */
static const uint8_t marker[] = { 0x00, 0x00, 0x00, 0x00 };

/** Default punt channel: espd's "ike": {"punt": "unix:/run/espd/ike.sock"} */
#define DEFAULT_PUNT "unix:/run/espd/ike.sock"

/** Default receive buffer of the punt socket */
#define DEFAULT_RECEIVE_BUFFER (4 * 1024 * 1024)

/** Malformed datagrams logged before the log goes quiet */
#define MALFORMED_LOGGED 10

typedef struct private_socket_espd_socket_t private_socket_espd_socket_t;

struct private_socket_espd_socket_t {

	/** public interface */
	socket_espd_socket_t public;

	/** the punt channel, bound to the address espd sends to */
	int fd;

	/** family of fd */
	int family;

	/** path bound, for a Unix channel (removed at destroy) */
	char *path;

	/** where replies go: espd's own address on the channel */
	struct sockaddr_storage espd;

	/** length of espd, 0 while unknown */
	socklen_t espd_len;

	/** TRUE if espd was configured, so datagrams from elsewhere are dropped */
	bool espd_fixed;

	/** protects espd/espd_len (receiver and sender threads) */
	mutex_t *mutex;

	/** IKE port (charon.port) */
	uint16_t port;

	/** NAT-T port (charon.port_nat_t) */
	uint16_t natt;

	/** largest IKE message accepted */
	size_t max_packet;

	/** malformed datagrams seen */
	u_int malformed;

	/** NAT-T keepalives charon sent (with the raw bit) */
	u_int keepalives;
};

/** Whether neither port is 500: there IKE travels behind the marker */
static bool uses_marker(host_t *src, host_t *dst)
{
	return src->get_port(src) != IKEV2_UDP_PORT &&
		   dst->get_port(dst) != IKEV2_UDP_PORT;
}

static bool same_address(struct sockaddr_storage *a, socklen_t alen,
						 struct sockaddr_storage *b, socklen_t blen)
{
	return espd_punt_same_address(a, alen, b, blen);
}

/** Remembers where espd sends from, for the replies (unless configured) */
static void learn_espd(private_socket_espd_socket_t *this,
					   struct sockaddr_storage *from, socklen_t fromlen)
{
	if (this->espd_fixed)
	{
		return;
	}
	this->mutex->lock(this->mutex);
	if (!same_address(from, fromlen, &this->espd, this->espd_len))
	{
		memcpy(&this->espd, from, fromlen);
		this->espd_len = fromlen;
		DBG1(DBG_NET, "socket-espd: replies go to espd's end of the punt "
			 "channel it last sent from");
	}
	this->mutex->unlock(this->mutex);
}

METHOD(socket_t, receiver, status_t,
	private_socket_espd_socket_t *this, packet_t **packet)
{
	uint8_t buffer[ESPD_PUNT_HEADER_LEN + this->max_packet];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	struct pollfd pfd = { .fd = this->fd, .events = POLLIN };
	host_t *src, *dst;
	chunk_t ike, data;
	const char *error;
	packet_t *pkt;
	ssize_t len;
	bool old;

	old = thread_cancelability(TRUE);
	if (poll(&pfd, 1, -1) <= 0)
	{
		thread_cancelability(old);
		return FAILED;
	}
	thread_cancelability(old);

	len = recvfrom(this->fd, buffer, sizeof(buffer), MSG_TRUNC,
				   (struct sockaddr*)&from, &fromlen);
	if (len < 0)
	{
		DBG1(DBG_NET, "socket-espd: error reading the punt channel: %s",
			 strerror(errno));
		return FAILED;
	}
	if ((size_t)len > sizeof(buffer))
	{
		DBG1(DBG_NET, "socket-espd: %zd-byte IKE datagram over max_packet "
			 "(%zu), dropped", len - ESPD_PUNT_HEADER_LEN, this->max_packet);
		return FAILED;
	}
	if (this->espd_fixed &&
		!same_address(&from, fromlen, &this->espd, this->espd_len))
	{
		DBG2(DBG_NET, "socket-espd: datagram from another sender than espd, "
			 "dropped");
		return FAILED;
	}
	if (espd_punt_is_hello(chunk_create(buffer, len)))
	{
		learn_espd(this, &from, fromlen);
		DBG2(DBG_NET, "socket-espd: hello from espd");
		return FAILED;
	}
	if (!espd_punt_decode(chunk_create(buffer, len), &src, &dst, &ike, &error))
	{
		if (++this->malformed <= MALFORMED_LOGGED)
		{
			DBG1(DBG_NET, "socket-espd: malformed punt datagram (%s), dropped%s",
				 error, this->malformed == MALFORMED_LOGGED ?
				 " (no more of these are logged)" : "");
		}
		return FAILED;
	}
	learn_espd(this, &from, fromlen);

	/* espd stripped the non-ESP marker; charon's receiver strips it itself
	 * whenever neither port is 500, so it gets it back there */
	if (uses_marker(src, dst))
	{
		data = chunk_cat("cc", chunk_from_thing(marker), ike);
	}
	else
	{
		data = chunk_clone(ike);
	}
	DBG2(DBG_NET, "socket-espd: received packet from %#H to %#H", src, dst);
	pkt = packet_create();
	pkt->set_source(pkt, src);
	pkt->set_destination(pkt, dst);
	pkt->set_data(pkt, data);
	*packet = pkt;
	return SUCCESS;
}

METHOD(socket_t, sender, status_t,
	private_socket_espd_socket_t *this, packet_t *packet)
{
	uint8_t header[ESPD_PUNT_HEADER_LEN];
	struct sockaddr_storage to;
	socklen_t tolen;
	host_t *src, *dst, *from = NULL;
	chunk_t data;
	struct iovec iov[2];
	struct msghdr msg = {};
	const char *error;
	ssize_t sent;
	bool raw = FALSE;

	src = packet->get_source(packet);
	dst = packet->get_destination(packet);
	data = packet->get_data(packet);

	if (src->get_port(src) == 0 || src->is_anyaddr(src))
	{
		/* charon names no local port (or address) before it knows one:
		 * espd's listen socket of the family and IKE port */
		from = src->is_anyaddr(src) ? host_create_any(dst->get_family(dst))
									: src->clone(src);
		from->set_port(from, src->get_port(src) ?: this->port);
		src = from;
	}
	if (uses_marker(src, dst))
	{
		if (data.len == 1 && data.ptr[0] == 0xff)
		{
			/* a NAT-T keepalive (sent by charon without a marker): espd sends
			 * it as it is when the header's raw bit asks for it */
			raw = TRUE;
			this->keepalives++;
		}
		else if (data.len < sizeof(marker) ||
			!memeq(data.ptr, marker, sizeof(marker)))
		{
			DBG1(DBG_NET, "socket-espd: packet to %#H without a non-ESP marker "
				 "not sent", dst);
			DESTROY_IF(from);
			return FAILED;
		}
		else
		{
			/* charon's sender put the marker in front; espd puts its own */
			data = chunk_skip(data, sizeof(marker));
		}
	}
	if (!espd_punt_encode(src, dst, header, &error))
	{
		DBG1(DBG_NET, "socket-espd: cannot send from %#H to %#H: %s", src, dst,
			 error);
		DESTROY_IF(from);
		return FAILED;
	}
	if (raw)
	{
		header[3] |= ESPD_PUNT_RAW;
	}
	DBG2(DBG_NET, "socket-espd: sending packet from %#H to %#H", src, dst);
	DESTROY_IF(from);

	this->mutex->lock(this->mutex);
	tolen = this->espd_len;
	memcpy(&to, &this->espd, sizeof(to));
	this->mutex->unlock(this->mutex);
	if (!tolen)
	{
		DBG1(DBG_NET, "socket-espd: espd has sent nothing on the punt channel "
			 "yet, so its address is unknown and the packet to %#H is not "
			 "sent (set charon.plugins.socket-espd.espd to initiate first)",
			 dst);
		return FAILED;
	}
	iov[0] = (struct iovec){ .iov_base = header, .iov_len = sizeof(header) };
	iov[1] = (struct iovec){ .iov_base = data.ptr, .iov_len = data.len };
	msg.msg_name = &to;
	msg.msg_namelen = tolen;
	msg.msg_iov = iov;
	msg.msg_iovlen = countof(iov);
	sent = sendmsg(this->fd, &msg, MSG_NOSIGNAL);
	if (sent != (ssize_t)(sizeof(header) + data.len))
	{
		DBG1(DBG_NET, "socket-espd: error writing to the punt channel: %s",
			 sent < 0 ? strerror(errno) : "short write");
		return FAILED;
	}
	return SUCCESS;
}

METHOD(socket_t, get_port, uint16_t,
	private_socket_espd_socket_t *this, bool nat_t)
{
	return nat_t ? this->natt : this->port;
}

METHOD(socket_t, supported_families, socket_family_t,
	private_socket_espd_socket_t *this)
{
	/* espd listens where its configuration says; IKE of either family
	 * comes through the one channel */
	return SOCKET_FAMILY_BOTH;
}

METHOD(socket_t, destroy, void,
	private_socket_espd_socket_t *this)
{
	if (this->fd != -1)
	{
		close(this->fd);
	}
	if (this->path)
	{
		unlink(this->path);
		free(this->path);
	}
	if (this->keepalives)
	{
		DBG2(DBG_NET, "socket-espd: %u NAT-T keepalives sent through espd",
			 this->keepalives);
	}
	this->mutex->destroy(this->mutex);
	free(this);
}

/** Removes a stale socket file left by an earlier charon (never another file) */
static bool remove_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
	{
		return errno == ENOENT;
	}
	if (!S_ISSOCK(st.st_mode))
	{
		return FALSE;
	}
	return unlink(path) == 0;
}

/** Opens and binds the punt channel */
static bool open_channel(private_socket_espd_socket_t *this, const char *spec)
{
	struct sockaddr_storage addr;
	socklen_t len;
	const char *error;
	mode_t old;
	int size;

	if (!espd_punt_address(spec, &addr, &len, &error))
	{
		DBG1(DBG_NET, "socket-espd: punt = %s: %s", spec, error);
		return FALSE;
	}
	this->family = addr.ss_family;
	this->fd = socket(this->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (this->fd == -1)
	{
		DBG1(DBG_NET, "socket-espd: cannot create the punt socket: %s",
			 strerror(errno));
		return FALSE;
	}
	if (this->family == AF_UNIX)
	{
		this->path = strdup(((struct sockaddr_un*)&addr)->sun_path);
		if (!remove_stale(this->path))
		{
			DBG1(DBG_NET, "socket-espd: %s exists and is not a socket that "
				 "could be removed", this->path);
			free(this->path);
			this->path = NULL;
			return FALSE;
		}
	}
	/* only charon's own user may send IKE into it */
	old = umask(0177);
	if (bind(this->fd, (struct sockaddr*)&addr, len) != 0)
	{
		umask(old);
		DBG1(DBG_NET, "socket-espd: cannot bind the punt channel %s: %s",
			 spec, strerror(errno));
		free(this->path);
		this->path = NULL;
		return FALSE;
	}
	umask(old);
	size = lib->settings->get_int(lib->settings,
						"%s.plugins.socket-espd.receive_buffer",
						DEFAULT_RECEIVE_BUFFER, lib->ns);
	if (setsockopt(this->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size,
				   sizeof(size)) != 0 &&
		setsockopt(this->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0)
	{
		DBG1(DBG_NET, "socket-espd: cannot set the punt channel's receive "
			 "buffer to %d bytes", size);
	}
	return TRUE;
}

/*
 * Described in header
 */
socket_espd_socket_t *socket_espd_socket_create()
{
	private_socket_espd_socket_t *this;
	const char *spec, *espd, *error;
	int port, natt;

	INIT(this,
		.public = {
			.socket = {
				.send = _sender,
				.receive = _receiver,
				.get_port = _get_port,
				.supported_families = _supported_families,
				.destroy = _destroy,
			},
		},
		.fd = -1,
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.max_packet = lib->settings->get_int(lib->settings,
							"%s.max_packet", PACKET_MAX_DEFAULT, lib->ns),
	);

	port = lib->settings->get_int(lib->settings, "%s.port", CHARON_UDP_PORT,
								  lib->ns);
	natt = lib->settings->get_int(lib->settings, "%s.port_nat_t",
								  CHARON_NATT_PORT, lib->ns);
	if (port <= 0 || port > 65535 || natt <= 0 || natt > 65535)
	{
		DBG1(DBG_NET, "socket-espd: charon.port (%d) and charon.port_nat_t "
			 "(%d) must be espd's listen ports (1-65535)", port, natt);
		destroy(this);
		return NULL;
	}
	this->port = port;
	this->natt = natt;

	spec = lib->settings->get_str(lib->settings, "%s.plugins.socket-espd.punt",
								  DEFAULT_PUNT, lib->ns);
	if (!open_channel(this, spec))
	{
		destroy(this);
		return NULL;
	}
	espd = lib->settings->get_str(lib->settings, "%s.plugins.socket-espd.espd",
								  NULL, lib->ns);
	if (espd)
	{
		if (!espd_punt_address(espd, &this->espd, &this->espd_len, &error) ||
			this->espd.ss_family != this->family)
		{
			DBG1(DBG_NET, "socket-espd: espd = %s: %s", espd,
				 this->espd_len ? "not of the punt channel's kind" : error);
			destroy(this);
			return NULL;
		}
		this->espd_fixed = TRUE;
	}
	DBG1(DBG_NET, "socket-espd: IKE through espd's punt channel %s (ports %u "
		 "and %u)", spec, this->port, this->natt);
	return &this->public;
}
