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
 * charon's IKE socket over espd's punt channel.
 *
 * @defgroup socket_espd_socket socket_espd_socket
 * @{ @ingroup socket_espd
 */

#ifndef SOCKET_ESPD_SOCKET_H_
#define SOCKET_ESPD_SOCKET_H_

typedef struct socket_espd_socket_t socket_espd_socket_t;

#include <network/socket.h>

/**
 * socket_t that receives IKE from espd's punt channel and hands replies back
 * to it, for espd to send from its own listen sockets.
 */
struct socket_espd_socket_t {

	/**
	 * Implements the socket_t interface.
	 */
	socket_t socket;
};

/**
 * Create a socket_espd_socket_t: binds the punt channel's address.
 *
 * @return			the socket, NULL (logged) if the channel cannot be opened
 */
socket_espd_socket_t *socket_espd_socket_create();

#endif /** SOCKET_ESPD_SOCKET_H_ @}*/
