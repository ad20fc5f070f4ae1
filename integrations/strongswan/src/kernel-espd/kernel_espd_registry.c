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

#include "kernel_espd_registry.h"

#include <collections/hashtable.h>

typedef struct private_kernel_espd_registry_t private_kernel_espd_registry_t;

struct private_kernel_espd_registry_t {

	/** public interface */
	kernel_espd_registry_t public;

	/** kernel_espd_sa_t by SPI and destination address */
	hashtable_t *sas;

	/** inbound kernel_espd_sa_t (and reservations) by SPI */
	hashtable_t *spis;

	/** kernel_espd_tunnel_t by key */
	hashtable_t *tunnels;

	/** kernel_espd_tunnel_t by name */
	hashtable_t *names;
};

static u_int sa_hash(const void *key)
{
	const kernel_espd_sa_t *sa = key;

	return chunk_hash_inc(chunk_from_thing(sa->spi),
						  chunk_hash(sa->dst->get_address(sa->dst)));
}

static bool sa_equals(const void *a, const void *b)
{
	const kernel_espd_sa_t *x = a, *y = b;

	return x->spi == y->spi && x->dst->ip_equals(x->dst, y->dst);
}

/** Key of the SPI table (SPIs below 256 are reserved, so never NULL) */
static void *spi_key(uint32_t spi)
{
	return (void*)(uintptr_t)spi;
}

METHOD(kernel_espd_registry_t, find_sa, kernel_espd_sa_t*,
	private_kernel_espd_registry_t *this, uint32_t spi, host_t *dst)
{
	kernel_espd_sa_t key = {
		.spi = spi,
		.dst = dst,
	};

	return this->sas->get(this->sas, &key);
}

METHOD(kernel_espd_registry_t, find_inbound, kernel_espd_sa_t*,
	private_kernel_espd_registry_t *this, uint32_t spi)
{
	return this->spis->get(this->spis, spi_key(spi));
}

METHOD(kernel_espd_registry_t, spi_in_use, bool,
	private_kernel_espd_registry_t *this, uint32_t spi)
{
	return this->spis->get(this->spis, spi_key(spi)) != NULL;
}

METHOD(kernel_espd_registry_t, add_sa, kernel_espd_sa_t*,
	private_kernel_espd_registry_t *this, uint32_t spi, bool inbound,
	host_t *src, host_t *dst)
{
	kernel_espd_sa_t *sa;

	INIT(sa,
		.spi = spi,
		.inbound = inbound,
		.src = src->clone(src),
		.dst = dst->clone(dst),
	);
	if (this->sas->get(this->sas, sa) ||
		(inbound && this->spis->get(this->spis, spi_key(spi))))
	{
		sa->src->destroy(sa->src);
		sa->dst->destroy(sa->dst);
		free(sa);
		return NULL;
	}
	this->sas->put(this->sas, sa, sa);
	if (inbound)
	{
		this->spis->put(this->spis, spi_key(spi), sa);
	}
	return sa;
}

METHOD(kernel_espd_registry_t, attach_sa, void,
	private_kernel_espd_registry_t *this, kernel_espd_sa_t *sa,
	kernel_espd_tunnel_t *tunnel)
{
	sa->tunnel = tunnel;
	tunnel->sas->insert_last(tunnel->sas, sa);
}

METHOD(kernel_espd_registry_t, move_sa, void,
	private_kernel_espd_registry_t *this, kernel_espd_sa_t *sa, host_t *src,
	host_t *dst)
{
	if (this->sas->get(this->sas, sa) == sa)
	{
		this->sas->remove(this->sas, sa);
	}
	sa->src->destroy(sa->src);
	sa->dst->destroy(sa->dst);
	sa->src = src->clone(src);
	sa->dst = dst->clone(dst);
	if (!this->sas->get(this->sas, sa))
	{
		this->sas->put(this->sas, sa, sa);
	}
}

/** Wipes and frees an SA that is in no table */
static void sa_destroy(kernel_espd_sa_t *sa)
{
	espd_buf_wipe(&sa->json);
	sa->src->destroy(sa->src);
	sa->dst->destroy(sa->dst);
	free(sa);
}

METHOD(kernel_espd_registry_t, remove_sa, void,
	private_kernel_espd_registry_t *this, kernel_espd_sa_t *sa)
{
	if (this->sas->get(this->sas, sa) == sa)
	{
		this->sas->remove(this->sas, sa);
	}
	if (sa->inbound &&
		this->spis->get(this->spis, spi_key(sa->spi)) == sa)
	{
		this->spis->remove(this->spis, spi_key(sa->spi));
	}
	if (sa->tunnel)
	{
		sa->tunnel->sas->remove(sa->tunnel->sas, sa, NULL);
		if (sa->tunnel->outbound == sa)
		{
			sa->tunnel->outbound = NULL;
		}
	}
	sa_destroy(sa);
}

METHOD(kernel_espd_registry_t, find_tunnel, kernel_espd_tunnel_t*,
	private_kernel_espd_registry_t *this, const char *key)
{
	return this->tunnels->get(this->tunnels, key);
}

METHOD(kernel_espd_registry_t, find_tunnel_by_name, kernel_espd_tunnel_t*,
	private_kernel_espd_registry_t *this, const char *name)
{
	return this->names->get(this->names, name);
}

METHOD(kernel_espd_registry_t, add_tunnel, kernel_espd_tunnel_t*,
	private_kernel_espd_registry_t *this, const char *key, const char *name,
	uint32_t reqid, ipsec_mode_t mode, host_t *peer, host_t *local)
{
	kernel_espd_tunnel_t *tunnel;

	if (strlen(name) > KERNEL_ESPD_NAME_MAX ||
		this->tunnels->get(this->tunnels, key) ||
		this->names->get(this->names, name))
	{
		return NULL;
	}
	INIT(tunnel,
		.key = strdup(key),
		.reqid = reqid,
		.mode = mode,
		.peer = peer->clone(peer),
		.local = local->clone(local),
		.sas = linked_list_create(),
	);
	strncpy(tunnel->name, name, KERNEL_ESPD_NAME_MAX);
	this->tunnels->put(this->tunnels, tunnel->key, tunnel);
	this->names->put(this->names, tunnel->name, tunnel);
	return tunnel;
}

METHOD(kernel_espd_registry_t, rekey_tunnel, bool,
	private_kernel_espd_registry_t *this, kernel_espd_tunnel_t *tunnel,
	const char *key)
{
	kernel_espd_tunnel_t *other;

	if (streq(tunnel->key, key))
	{
		return TRUE;
	}
	other = this->tunnels->get(this->tunnels, key);
	if (other)
	{
		return FALSE;
	}
	this->tunnels->remove(this->tunnels, tunnel->key);
	free(tunnel->key);
	tunnel->key = strdup(key);
	this->tunnels->put(this->tunnels, tunnel->key, tunnel);
	return TRUE;
}

METHOD(kernel_espd_registry_t, remove_tunnel, void,
	private_kernel_espd_registry_t *this, kernel_espd_tunnel_t *tunnel)
{
	kernel_espd_sa_t *sa;

	while (tunnel->sas->get_first(tunnel->sas, (void**)&sa) == SUCCESS)
	{
		remove_sa(this, sa);
	}
	if (this->tunnels->get(this->tunnels, tunnel->key) == tunnel)
	{
		this->tunnels->remove(this->tunnels, tunnel->key);
	}
	if (this->names->get(this->names, tunnel->name) == tunnel)
	{
		this->names->remove(this->names, tunnel->name);
	}
	tunnel->sas->destroy(tunnel->sas);
	tunnel->peer->destroy(tunnel->peer);
	tunnel->local->destroy(tunnel->local);
	espd_buf_wipe(&tunnel->remote_ts);
	free(tunnel->key);
	free(tunnel);
}

METHOD(kernel_espd_registry_t, list_tunnels, linked_list_t*,
	private_kernel_espd_registry_t *this)
{
	enumerator_t *enumerator;
	kernel_espd_tunnel_t *tunnel;
	linked_list_t *list = linked_list_create();
	void *key;

	enumerator = this->tunnels->create_enumerator(this->tunnels);
	while (enumerator->enumerate(enumerator, &key, &tunnel))
	{
		list->insert_last(list, tunnel);
	}
	enumerator->destroy(enumerator);
	return list;
}

METHOD(kernel_espd_registry_t, list_reservations, linked_list_t*,
	private_kernel_espd_registry_t *this)
{
	enumerator_t *enumerator;
	kernel_espd_sa_t *sa;
	linked_list_t *list = linked_list_create();
	void *key;

	enumerator = this->spis->create_enumerator(this->spis);
	while (enumerator->enumerate(enumerator, &key, &sa))
	{
		if (!sa->tunnel)
		{
			list->insert_last(list, sa);
		}
	}
	enumerator->destroy(enumerator);
	return list;
}

METHOD(kernel_espd_registry_t, destroy, void,
	private_kernel_espd_registry_t *this)
{
	linked_list_t *list;
	kernel_espd_tunnel_t *tunnel;
	kernel_espd_sa_t *sa;

	list = list_tunnels(this);
	while (list->remove_first(list, (void**)&tunnel) == SUCCESS)
	{
		remove_tunnel(this, tunnel);
	}
	list->destroy(list);
	list = list_reservations(this);
	while (list->remove_first(list, (void**)&sa) == SUCCESS)
	{
		remove_sa(this, sa);
	}
	list->destroy(list);
	this->sas->destroy(this->sas);
	this->spis->destroy(this->spis);
	this->tunnels->destroy(this->tunnels);
	this->names->destroy(this->names);
	free(this);
}

/*
 * Described in header
 */
kernel_espd_registry_t *kernel_espd_registry_create()
{
	private_kernel_espd_registry_t *this;

	INIT(this,
		.public = {
			.find_sa = _find_sa,
			.find_inbound = _find_inbound,
			.spi_in_use = _spi_in_use,
			.add_sa = _add_sa,
			.attach_sa = _attach_sa,
			.move_sa = _move_sa,
			.remove_sa = _remove_sa,
			.find_tunnel = _find_tunnel,
			.find_tunnel_by_name = _find_tunnel_by_name,
			.add_tunnel = _add_tunnel,
			.rekey_tunnel = _rekey_tunnel,
			.remove_tunnel = _remove_tunnel,
			.list_tunnels = _list_tunnels,
			.list_reservations = _list_reservations,
			.destroy = _destroy,
		},
		.sas = hashtable_create(sa_hash, sa_equals, 64),
		.spis = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 64),
		.tunnels = hashtable_create(hashtable_hash_str, hashtable_equals_str, 32),
		.names = hashtable_create(hashtable_hash_str, hashtable_equals_str, 32),
	);
	return &this->public;
}
