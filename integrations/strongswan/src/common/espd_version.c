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

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "espd_version.h"

#include <utils/debug.h>

#ifndef ESPD_SWAN_BUILT_FOR
#define ESPD_SWAN_BUILT_FOR VERSION
#endif

#define DPKG_STATUS "/var/lib/dpkg/status"
#define DPKG_INFO "/var/lib/dpkg/info"

/** The upstream part of a Debian version: no epoch, no revision */
static void upstream_of(const char *version, char *out, size_t len)
{
	const char *colon = strchr(version, ':');
	char *dash;

	snprintf(out, len, "%s", colon ? colon + 1 : version);
	dash = strrchr(out, '-');
	if (dash)
	{
		*dash = '\0';
	}
}

/** Whether a dpkg file list names the path */
static bool list_has(const char *list, const char *path)
{
	char line[PATH_MAX + 2];
	bool found = FALSE;
	FILE *f;

	f = fopen(list, "r");
	if (!f)
	{
		return FALSE;
	}
	while (!found && fgets(line, sizeof(line), f))
	{
		line[strcspn(line, "\n")] = '\0';
		found = streq(line, path);
	}
	fclose(f);
	return found;
}

/**
 * The version of the installed package that owns the file path, if it is
 * the libstrongswan package (the only one that ships the library).
 */
static bool package_version(const char *path, const char *real,
							char *version, size_t len)
{
	static const char *lists[] = {
		DPKG_INFO "/libstrongswan.list",
		DPKG_INFO "/libstrongswan:amd64.list",
		DPKG_INFO "/libstrongswan:arm64.list",
		DPKG_INFO "/libstrongswan:i386.list",
		DPKG_INFO "/libstrongswan:armhf.list",
	};
	char *line = NULL;
	size_t size = 0;
	bool owned = FALSE, in_stanza = FALSE, installed = FALSE;
	FILE *f;
	int i;

	for (i = 0; i < countof(lists) && !owned; i++)
	{
		owned = list_has(lists[i], path) || list_has(lists[i], real);
	}
	if (!owned)
	{
		return FALSE;
	}
	f = fopen(DPKG_STATUS, "r");
	if (!f)
	{
		return FALSE;
	}
	version[0] = '\0';
	while (getline(&line, &size, f) >= 0)
	{
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
		{
			if (in_stanza && installed && version[0])
			{
				break;
			}
			in_stanza = installed = FALSE;
			version[0] = '\0';
		}
		else if (strpfx(line, "Package: "))
		{
			in_stanza = streq(line + strlen("Package: "), "libstrongswan");
		}
		else if (in_stanza && strpfx(line, "Status: "))
		{
			installed = strpfx(line + strlen("Status: "), "install ok installed");
		}
		else if (in_stanza && strpfx(line, "Version: "))
		{
			snprintf(version, len, "%.*s", (int)len - 1,
					 line + strlen("Version: "));
		}
	}
	free(line);
	fclose(f);
	return in_stanza && installed && version[0];
}

/*
 * Described in header
 */
bool espd_version_check(const char *plugin)
{
	char running[128], running_up[128], built_up[128];
	char real[PATH_MAX];
	const char *override;
	Dl_info info;

	if (!lib->settings->get_bool(lib->settings, "%s.plugins.%s.version_check",
								 TRUE, lib->ns, plugin))
	{
		DBG1(DBG_LIB, "%s: version check disabled (built for strongSwan %s)",
			 plugin, ESPD_SWAN_BUILT_FOR);
		return TRUE;
	}
	override = getenv("ESPD_SWAN_RUNNING_VERSION");
	if (override && *override)
	{
		snprintf(running, sizeof(running), "%s", override);
	}
	else
	{
		if (!dladdr((void*)library_init, &info) || !info.dli_fname)
		{
			DBG1(DBG_LIB, "%s: not loaded: cannot tell which libstrongswan is "
				 "running (built for strongSwan %s; set "
				 "%s.plugins.%s.version_check = no to load it anyway)",
				 plugin, ESPD_SWAN_BUILT_FOR, lib->ns, plugin);
			return FALSE;
		}
		if (!realpath(info.dli_fname, real))
		{
			snprintf(real, sizeof(real), "%s", info.dli_fname);
		}
		if (!package_version(info.dli_fname, real, running, sizeof(running)))
		{
			DBG1(DBG_LIB, "%s: not loaded: %s belongs to no installed Debian "
				 "libstrongswan package, so its version is unknown (built for "
				 "strongSwan %s; set %s.plugins.%s.version_check = no to load "
				 "it anyway)", plugin, info.dli_fname, ESPD_SWAN_BUILT_FOR,
				 lib->ns, plugin);
			return FALSE;
		}
	}
	upstream_of(running, running_up, sizeof(running_up));
	upstream_of(ESPD_SWAN_BUILT_FOR, built_up, sizeof(built_up));
	if (!streq(running_up, VERSION) || !streq(built_up, VERSION))
	{
		DBG1(DBG_LIB, "%s: not loaded: built for strongSwan %s (%s), but the "
			 "running strongSwan is %s: rebuild it with "
			 "integrations/strongswan/build.sh", plugin, VERSION,
			 ESPD_SWAN_BUILT_FOR, running);
		return FALSE;
	}
	if (!streq(running, ESPD_SWAN_BUILT_FOR))
	{
		DBG1(DBG_LIB, "%s: built for strongSwan %s, running %s (same upstream "
			 "version; rebuild with integrations/strongswan/build.sh to match "
			 "exactly)", plugin, ESPD_SWAN_BUILT_FOR, running);
	}
	else
	{
		DBG2(DBG_LIB, "%s: built for and running strongSwan %s", plugin,
			 running);
	}
	return TRUE;
}
