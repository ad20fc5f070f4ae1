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
 * @defgroup socket_espd socket_espd
 * @ingroup cplugins
 *
 * @defgroup socket_espd_plugin socket_espd_plugin
 * @{ @ingroup socket_espd
 */

#ifndef SOCKET_ESPD_PLUGIN_H_
#define SOCKET_ESPD_PLUGIN_H_

#include <library.h>
#include <plugins/plugin.h>

typedef struct socket_espd_plugin_t socket_espd_plugin_t;

/**
 * charon's IKE socket over espd's punt channel.
 */
struct socket_espd_plugin_t {

	/**
	 * implements plugin interface
	 */
	plugin_t plugin;
};

#endif /** SOCKET_ESPD_PLUGIN_H_ @}*/
