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
 * @defgroup kernel_espd kernel_espd
 * @ingroup cplugins
 *
 * @defgroup kernel_espd_plugin kernel_espd_plugin
 * @{ @ingroup kernel_espd
 */

#ifndef KERNEL_ESPD_PLUGIN_H_
#define KERNEL_ESPD_PLUGIN_H_

#include <library.h>
#include <plugins/plugin.h>

typedef struct kernel_espd_plugin_t kernel_espd_plugin_t;

/**
 * charon's IPsec backend on espd's control socket.
 */
struct kernel_espd_plugin_t {

	/**
	 * implements plugin interface
	 */
	plugin_t plugin;
};

#endif /** KERNEL_ESPD_PLUGIN_H_ @}*/
