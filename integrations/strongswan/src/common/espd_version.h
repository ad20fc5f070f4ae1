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
 * The check that keeps a plugin out of a charon it was not built for: the
 * plugins are compiled against the structures of one strongSwan version, so
 * loading them into another would read fields at the wrong offsets.
 *
 * @defgroup espd_version espd_version
 * @{ @ingroup espd_common
 */

#ifndef ESPD_VERSION_H_
#define ESPD_VERSION_H_

#include <library.h>

/**
 * Whether the running strongSwan is the version the plugin was built for.
 *
 * The running version is that of the Debian package the loaded
 * libstrongswan belongs to (the environment variable
 * ESPD_SWAN_RUNNING_VERSION overrides it, for tests). The upstream versions
 * must be equal; a different Debian revision of the same upstream version is
 * logged and accepted. charon.plugins.<plugin>.version_check = no skips the
 * check (for a strongSwan that is not Debian's package).
 *
 * @param plugin		plugin name, for the settings and the log line
 * @return				TRUE to load; FALSE after one log line saying why not
 */
bool espd_version_check(const char *plugin);

#endif /** ESPD_VERSION_H_ @}*/
