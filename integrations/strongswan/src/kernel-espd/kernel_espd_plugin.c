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

#include "kernel_espd_plugin.h"
#include "kernel_espd_ipsec.h"

#include <espd_version.h>

#include <daemon.h>

typedef struct private_kernel_espd_plugin_t private_kernel_espd_plugin_t;

struct private_kernel_espd_plugin_t {

	/** implements plugin interface */
	kernel_espd_plugin_t public;
};

METHOD(plugin_t, get_name, char*,
	private_kernel_espd_plugin_t *this)
{
	return "kernel-espd";
}

METHOD(plugin_t, get_features, int,
	private_kernel_espd_plugin_t *this, plugin_feature_t *features[])
{
	static plugin_feature_t f[] = {
		PLUGIN_CALLBACK(kernel_ipsec_register, kernel_espd_ipsec_create),
			PLUGIN_PROVIDE(CUSTOM, "kernel-ipsec"),
	};
	*features = f;
	return countof(f);
}

METHOD(plugin_t, destroy, void,
	private_kernel_espd_plugin_t *this)
{
	free(this);
}

/*
 * The loader finds this by the plugin's name
 */
__attribute__((visibility("default")))
plugin_t *kernel_espd_plugin_create()
{
	private_kernel_espd_plugin_t *this;

	if (!espd_version_check("kernel-espd"))
	{
		return NULL;
	}
	INIT(this,
		.public = {
			.plugin = {
				.get_name = _get_name,
				.get_features = _get_features,
				.destroy = _destroy,
			},
		},
	);
	return &this->public.plugin;
}
