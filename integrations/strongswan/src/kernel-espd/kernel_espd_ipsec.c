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

#include "kernel_espd_ipsec.h"
#include "kernel_espd_events.h"
#include "kernel_espd_registry.h"
#include "kernel_espd_sa.h"
#include "kernel_espd_ts.h"

#include <espd_control.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <daemon.h>
#include <threading/mutex.h>

/** Defaults of the settings (charon.plugins.kernel-espd.*) */
#define DEFAULT_CONTROL "/run/espd/control.sock"
#define DEFAULT_PREFIX "charon-"
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_RETRY_S 1
/** Longest answer read: a list of every tunnel */
#define DEFAULT_MAX_ANSWER (256 * 1024 * 1024)
/** Longest name prefix: the tag and the numbers must fit in 64 bytes */
#define MAX_PREFIX 32

typedef struct private_kernel_espd_ipsec_t private_kernel_espd_ipsec_t;

struct private_kernel_espd_ipsec_t {

	/** public interface */
	kernel_espd_ipsec_t public;

	/** protects everything below, and serializes the control connection */
	mutex_t *mutex;

	/** the request connection */
	espd_control_t *control;

	/** the events subscription (its own connection and thread) */
	kernel_espd_events_t *events;

	/** tunnels and SAs installed */
	kernel_espd_registry_t *registry;

	/** tunnel names begin with prefix and tag */
	char prefix[MAX_PREFIX + 1];

	/** random per charon start, so names never collide with a former run's */
	char tag[8];

	/** numbers transport tunnels (several may share a reqid) */
	u_int counter;

	/** SPI range (charon.spi_min, charon.spi_max) */
	uint32_t spi_min, spi_max;

	/** SPIs chosen here when espd cannot */
	rng_t *rng;

	/** whether add_tunnel names our address as "local" */
	bool set_local;
	/** whether espd sends NAT-T keepalives of its own for our tunnels */
	bool espd_keepalives;

	/** whether espd refused {"op":"list","names_only":true} */
	bool no_names_only;

	/** whether espd refused "nat_keepalive" in add_tunnel (an older espd) */
	bool no_nat_keepalive;

	/** whether to remove a former charon's tunnels from espd */
	bool flush_on_start;

	/** reqid whose inbound SA was refused last (its outbound SA follows) */
	uint32_t refused_reqid;

	/** extensions espd answered "unknown op" to (ESPD-EXTENSIONS.md) */
	bool no_alloc_spi, no_query_sa, no_update_tunnel;
};

/** How an answer came back */
typedef enum {
	ANSWER_OK,
	ANSWER_REFUSED,
	ANSWER_UNKNOWN_OP,
	ANSWER_NONE,
} answer_t;

/**
 * Sends a request (wiping it afterwards: it may hold keys) and classifies the
 * answer. Refusals and failures are logged with what, an unknown op is not.
 */
static answer_t call(private_kernel_espd_ipsec_t *this, espd_buf_t *req,
					 espd_json_t **out, const char *what)
{
	espd_json_t *answer;
	const char *error;
	answer_t result;

	answer = this->control->request(this->control, req, &error);
	espd_buf_wipe(req);
	if (!answer)
	{
		DBG1(DBG_KNL, "kernel-espd: %s: no answer from espd on %s (%s)", what,
			 this->control->get_path(this->control), error);
		return ANSWER_NONE;
	}
	if (espd_json_ok(answer, &error))
	{
		result = ANSWER_OK;
	}
	else if (strpfx(error, "op: unknown op"))
	{
		result = ANSWER_UNKNOWN_OP;
	}
	else
	{
		DBG1(DBG_KNL, "kernel-espd: %s: espd refused: %s", what, error);
		result = ANSWER_REFUSED;
	}
	if (out)
	{
		*out = answer;
	}
	else
	{
		espd_json_destroy(answer);
	}
	return result;
}

/** "ADDRESS:PORT" or "[ADDRESS]:PORT" as espd writes endpoints */
static host_t *parse_endpoint(const char *text)
{
	char buf[128], *colon, *name = buf;
	host_t *host;
	int port;

	if (!text || snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
	{
		return NULL;
	}
	colon = strrchr(buf, ':');
	if (!colon)
	{
		return NULL;
	}
	*colon = '\0';
	port = atoi(colon + 1);
	if (port <= 0 || port > 65535)
	{
		return NULL;
	}
	if (name[0] == '[' && name[strlen(name) - 1] == ']')
	{
		name[strlen(name) - 1] = '\0';
		name++;
	}
	host = host_create_from_string(name, port);
	if (host && host->is_anyaddr(host))
	{
		host->destroy(host);
		host = NULL;
	}
	return host;
}

/** Registry key of the tunnel of an SA */
static void tunnel_key(char *key, size_t len, ipsec_mode_t mode, uint32_t reqid,
					   host_t *peer)
{
	if (mode == MODE_TRANSPORT)
	{
		/* transport tunnels of several clients behind one NAT share a reqid
		 * (their selectors are the same addresses) */
		char addr[INET6_ADDRSTRLEN];

		snprintf(key, len, "%u|%s|%u", reqid,
				 espd_host_text(peer, addr, sizeof(addr)), peer->get_port(peer));
	}
	else
	{
		snprintf(key, len, "%u", reqid);
	}
}

/**
 * The SA charon names: by SPI and destination, else (our address changed
 * since) an inbound SA with that SPI from the same peer address
 */
static kernel_espd_sa_t *lookup(private_kernel_espd_ipsec_t *this,
								kernel_ipsec_sa_id_t *id)
{
	kernel_espd_sa_t *sa;

	sa = this->registry->find_sa(this->registry, ntohl(id->spi), id->dst);
	if (!sa)
	{
		sa = this->registry->find_inbound(this->registry, ntohl(id->spi));
		if (sa && !sa->src->ip_equals(sa->src, id->src))
		{
			sa = NULL;
		}
	}
	return sa;
}

METHOD(kernel_ipsec_t, get_features, kernel_feature_t,
	private_kernel_espd_ipsec_t *this)
{
	/* espd carries ESP in UDP only, so charon always encapsulates */
	return KERNEL_REQUIRE_UDP_ENCAPSULATION;
}

/** A random SPI in the range that no SA of ours has */
static bool random_spi(private_kernel_espd_ipsec_t *this, uint32_t *spi)
{
	uint32_t value, span = this->spi_max - this->spi_min;
	int i;

	for (i = 0; i < 100; i++)
	{
		if (!this->rng->get_bytes(this->rng, sizeof(value), (uint8_t*)&value))
		{
			return FALSE;
		}
		value = this->spi_min + (span == UINT32_MAX ? value : value % (span + 1));
		if (value >= 256 && !this->registry->spi_in_use(this->registry, value))
		{
			*spi = value;
			return TRUE;
		}
	}
	return FALSE;
}

/** Asks espd for an unused SPI (alloc_spi); FALSE if it cannot say */
static bool espd_spi(private_kernel_espd_ipsec_t *this, uint32_t *spi)
{
	espd_buf_t req = {};
	espd_json_t *answer = NULL;
	uint64_t value;
	answer_t result;

	if (this->no_alloc_spi)
	{
		return FALSE;
	}
	espd_buf_printf(&req, "{\"op\":\"alloc_spi\",\"min\":\"0x%08x\","
					"\"max\":\"0x%08x\"}", this->spi_min, this->spi_max);
	result = call(this, &req, &answer, "allocating an SPI");
	if (result == ANSWER_UNKNOWN_OP)
	{
		this->no_alloc_spi = TRUE;
		DBG1(DBG_KNL, "kernel-espd: espd has no alloc_spi: SPIs are chosen "
			 "here, and espd refuses one that is in use");
	}
	if (result == ANSWER_OK &&
		espd_json_u64(espd_json_get(answer, "spi"), &value) &&
		value >= 256 && value <= UINT32_MAX &&
		!this->registry->spi_in_use(this->registry, value))
	{
		*spi = value;
		espd_json_destroy(answer);
		return TRUE;
	}
	espd_json_destroy(answer);
	return FALSE;
}

METHOD(kernel_ipsec_t, get_spi, status_t,
	private_kernel_espd_ipsec_t *this, host_t *src, host_t *dst,
	uint8_t protocol, uint32_t *spi)
{
	kernel_espd_sa_t *sa;
	uint32_t value;
	bool from_espd;

	if (protocol != IPPROTO_ESP)
	{
		DBG1(DBG_KNL, "kernel-espd: no SPI for IP protocol %u: espd does ESP "
			 "only", protocol);
		return FAILED;
	}
	this->mutex->lock(this->mutex);
	from_espd = espd_spi(this, &value);
	if (!from_espd && !random_spi(this, &value))
	{
		this->mutex->unlock(this->mutex);
		DBG1(DBG_KNL, "kernel-espd: unable to get SPI");
		return FAILED;
	}
	sa = this->registry->add_sa(this->registry, value, TRUE, src, dst);
	if (sa)
	{
		sa->reserved_in_espd = from_espd;
	}
	this->mutex->unlock(this->mutex);
	if (!sa)
	{
		DBG1(DBG_KNL, "kernel-espd: unable to get SPI (%.8x in use)", value);
		return FAILED;
	}
	DBG2(DBG_KNL, "kernel-espd: got SPI %.8x", value);
	*spi = htonl(value);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, get_cpi, status_t,
	private_kernel_espd_ipsec_t *this, host_t *src, host_t *dst,
	uint16_t *cpi)
{
	return NOT_SUPPORTED;
}

/** The tunnel of a CHILD_SA, created (not in espd yet) if new */
static kernel_espd_tunnel_t *get_tunnel(private_kernel_espd_ipsec_t *this,
						kernel_ipsec_add_sa_t *data, host_t *remote,
						host_t *local, uint32_t spi)
{
	kernel_espd_tunnel_t *tunnel;
	char key[128], name[KERNEL_ESPD_NAME_MAX + 1];
	bool narrowed = FALSE;

	tunnel_key(key, sizeof(key), data->mode, data->reqid, remote);
	tunnel = this->registry->find_tunnel(this->registry, key);
	if (tunnel)
	{
		return tunnel;
	}
	if (data->mode == MODE_TRANSPORT)
	{
		snprintf(name, sizeof(name), "%s%s-%u-%u", this->prefix, this->tag,
				 data->reqid, ++this->counter);
	}
	else
	{
		snprintf(name, sizeof(name), "%s%s-%u", this->prefix, this->tag,
				 data->reqid);
	}
	tunnel = this->registry->add_tunnel(this->registry, key, name, data->reqid,
										data->mode, remote, local);
	if (!tunnel)
	{
		DBG1(DBG_KNL, "kernel-espd: cannot install SA %.8x: tunnel name %s "
			 "in use", spi, name);
		return NULL;
	}
	if (data->mode == MODE_TUNNEL &&
		!kernel_espd_ts_prefixes(&tunnel->remote_ts,
						data->inbound ? data->src_ts : data->dst_ts, &narrowed))
	{
		DBG1(DBG_KNL, "kernel-espd: cannot install SA %.8x: no IPv4 or IPv6 "
			 "remote traffic selector", spi);
		this->registry->remove_tunnel(this->registry, tunnel);
		return NULL;
	}
	if (narrowed)
	{
		DBG1(DBG_KNL, "kernel-espd: tunnel %s: espd selects by address only, "
			 "the protocols and ports of %#R are not enforced", name,
			 data->inbound ? data->src_ts : data->dst_ts);
	}
	return tunnel;
}

/** Whether any SA of the tunnel waits to be sent in the given direction */
static bool has_pending(kernel_espd_tunnel_t *tunnel, bool inbound)
{
	enumerator_t *enumerator;
	kernel_espd_sa_t *sa;
	bool found = FALSE;

	enumerator = tunnel->sas->create_enumerator(tunnel->sas);
	while (!found && enumerator->enumerate(enumerator, &sa))
	{
		found = sa->inbound == inbound && sa->json.len;
	}
	enumerator->destroy(enumerator);
	return found;
}

/** Sends a tunnel whose inbound and outbound SAs are both known */
static status_t add_tunnel(private_kernel_espd_ipsec_t *this,
						   kernel_espd_tunnel_t *tunnel)
{
	enumerator_t *enumerator;
	kernel_espd_sa_t *sa;
	espd_buf_t req = {};
	espd_json_t *answer = NULL;
	const char *alias, *refused;
	char what[128];
	bool first = TRUE;
	uint32_t spi_in = 0;

	espd_buf_printf(&req, "{\"op\":\"add_tunnel\",\"tunnel\":{\"name\":");
	espd_buf_string(&req, tunnel->name);
	espd_buf_printf(&req, ",\"mode\":\"%s\",\"peer\":",
				tunnel->mode == MODE_TRANSPORT ? "transport" : "tunnel");
	espd_buf_endpoint(&req, tunnel->peer);
	if (this->set_local && !tunnel->local->is_anyaddr(tunnel->local))
	{
		espd_buf_printf(&req, ",\"local\":");
		espd_buf_address(&req, tunnel->local);
	}
	if (tunnel->mode == MODE_TUNNEL)
	{
		espd_buf_printf(&req, ",\"remote_ts\":%s", tunnel->remote_ts.ptr);
	}
	if (!this->espd_keepalives && !this->no_nat_keepalive)
	{	/* charon sends them itself when it is the side behind a NAT, through
		 * socket-espd (RFC 3948 section 2.3) */
		espd_buf_printf(&req, ",\"nat_keepalive\":false");
	}
	espd_buf_printf(&req, ",\"inbound\":[");
	enumerator = tunnel->sas->create_enumerator(tunnel->sas);
	while (enumerator->enumerate(enumerator, &sa))
	{
		if (sa->inbound && sa->json.len)
		{
			espd_buf_printf(&req, "%s%s", first ? "" : ",", sa->json.ptr);
			first = FALSE;
			spi_in = sa->spi;
		}
	}
	enumerator->destroy(enumerator);
	espd_buf_printf(&req, "],\"outbound\":%s}}", tunnel->outbound->json.ptr);

	snprintf(what, sizeof(what), "adding tunnel %s", tunnel->name);
	if (call(this, &req, &answer, what) != ANSWER_OK)
	{
		refused = NULL;
		if (answer)
		{
			espd_json_ok(answer, &refused);
		}
		if (!this->espd_keepalives && !this->no_nat_keepalive && refused &&
			strstr(refused, "nat_keepalive"))
		{	/* an espd without per-tunnel keepalives: it sends its own */
			DBG1(DBG_KNL, "kernel-espd: espd takes no nat_keepalive; it sends "
				 "NAT-T keepalives of its own");
			this->no_nat_keepalive = TRUE;
			espd_json_destroy(answer);
			return add_tunnel(this, tunnel);
		}
		espd_json_destroy(answer);
		return FAILED;
	}
	enumerator = tunnel->sas->create_enumerator(tunnel->sas);
	while (enumerator->enumerate(enumerator, &sa))
	{
		if (sa->json.len)
		{
			espd_buf_wipe(&sa->json);
			sa->in_espd = TRUE;
		}
	}
	enumerator->destroy(enumerator);
	tunnel->in_espd = TRUE;
	/* in transport mode espd names the alias it took from its pool (the
	 * address the peer's packets come from on the TUN) */
	alias = espd_json_get_str(answer, "alias");
	DBG1(DBG_KNL, "kernel-espd: tunnel %s (reqid %u, %s mode, peer %#H) "
		 "added to espd with SPIs %.8x_i %.8x_o%s%s", tunnel->name,
		 tunnel->reqid, tunnel->mode == MODE_TRANSPORT ? "transport" : "tunnel",
		 tunnel->peer, spi_in, tunnel->outbound->spi, alias ? ", alias " : "",
		 alias ?: "");
	espd_json_destroy(answer);
	return SUCCESS;
}

/** Tells espd a tunnel's new peer (update_tunnel), where it can be told */
static void update_peer(private_kernel_espd_ipsec_t *this,
						kernel_espd_tunnel_t *tunnel, host_t *peer)
{
	espd_buf_t req = {};
	char what[128];

	if (tunnel->peer->equals(tunnel->peer, peer))
	{
		return;
	}
	tunnel->peer->destroy(tunnel->peer);
	tunnel->peer = peer->clone(peer);
	if (!tunnel->in_espd || this->no_update_tunnel)
	{
		return;
	}
	espd_buf_printf(&req, "{\"op\":\"update_tunnel\",\"name\":");
	espd_buf_string(&req, tunnel->name);
	espd_buf_printf(&req, ",\"peer\":");
	espd_buf_endpoint(&req, peer);
	espd_buf_printf(&req, "}");
	snprintf(what, sizeof(what), "moving tunnel %s", tunnel->name);
	if (call(this, &req, NULL, what) == ANSWER_UNKNOWN_OP)
	{
		this->no_update_tunnel = TRUE;
		DBG1(DBG_KNL, "kernel-espd: espd has no update_tunnel: it follows a "
			 "peer that moved from its first authenticated packet");
	}
}

/** Adds an SA to a tunnel espd has (rekey) */
static status_t rekey_sa(private_kernel_espd_ipsec_t *this,
						 kernel_espd_tunnel_t *tunnel, kernel_espd_sa_t *sa)
{
	espd_buf_t req = {};
	char what[128];

	espd_buf_printf(&req, "{\"op\":\"rekey\",\"name\":");
	espd_buf_string(&req, tunnel->name);
	espd_buf_printf(&req, ",\"%s\":%s}", sa->inbound ? "inbound" : "outbound",
					sa->json.ptr);
	espd_buf_wipe(&sa->json);
	snprintf(what, sizeof(what), "adding %s SA %.8x to tunnel %s",
			 sa->inbound ? "inbound" : "outbound", sa->spi, tunnel->name);
	if (call(this, &req, NULL, what) != ANSWER_OK)
	{
		return FAILED;
	}
	sa->in_espd = TRUE;
	if (!sa->inbound)
	{
		if (tunnel->outbound && tunnel->outbound != sa)
		{
			/* espd replaced it; charon deletes it later */
			tunnel->outbound->in_espd = FALSE;
		}
		tunnel->outbound = sa;
	}
	DBG1(DBG_KNL, "kernel-espd: %s SA %.8x added to tunnel %s",
		 sa->inbound ? "inbound" : "outbound", sa->spi, tunnel->name);
	return SUCCESS;
}

/** Logs why an SA cannot be installed; FALSE if it can */
static bool unsupported(kernel_ipsec_sa_id_t *id, kernel_ipsec_add_sa_t *data)
{
	const char *why = NULL;

	if (id->proto != IPPROTO_ESP)
	{
		why = "espd does ESP only";
	}
	else if (data->ipcomp != IPCOMP_NONE)
	{
		why = "espd does no IPComp";
	}
	else if (data->mode != MODE_TUNNEL && data->mode != MODE_TRANSPORT)
	{
		why = "espd does tunnel and transport mode only";
	}
	else if (!data->encap)
	{
		why = "espd carries ESP in UDP only (UDP encapsulation is off)";
	}
	if (why)
	{
		DBG1(DBG_KNL, "kernel-espd: cannot install %s SA %.8x (reqid %u): %s",
			 data->inbound ? "inbound" : "outbound", ntohl(id->spi),
			 data->reqid, why);
	}
	return why != NULL;
}

METHOD(kernel_ipsec_t, add_sa, status_t,
	private_kernel_espd_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_add_sa_t *data)
{
	kernel_espd_tunnel_t *tunnel;
	kernel_espd_sa_t *sa;
	espd_buf_t json = {};
	host_t *remote, *local;
	uint32_t spi = ntohl(id->spi);
	const char *why;
	status_t status;

	if (unsupported(id, data))
	{
		return FAILED;
	}
	if (!kernel_espd_sa_json(&json, spi, data, &why))
	{
		bool repeated;

		/* charon adds the outbound SA of a CHILD_SA even when its inbound SA
		 * failed: one line says why */
		this->mutex->lock(this->mutex);
		repeated = !data->inbound && data->reqid == this->refused_reqid;
		this->refused_reqid = data->inbound ? data->reqid : 0;
		this->mutex->unlock(this->mutex);
		if (!repeated)
		{
			DBG1(DBG_KNL, "kernel-espd: cannot install %s SA %.8x (reqid %u): "
				 "%N with a %zu-byte key and %N: %s",
				 data->inbound ? "inbound" : "outbound", spi, data->reqid,
				 encryption_algorithm_names, data->enc_alg, data->enc_key.len,
				 integrity_algorithm_names, data->int_alg, why);
		}
		else
		{
			DBG2(DBG_KNL, "kernel-espd: outbound SA %.8x (reqid %u) not "
				 "installed either", spi, data->reqid);
		}
		return FAILED;
	}
	remote = data->inbound ? id->src : id->dst;
	local = data->inbound ? id->dst : id->src;

	this->mutex->lock(this->mutex);
	tunnel = get_tunnel(this, data, remote, local, spi);
	if (!tunnel)
	{
		this->mutex->unlock(this->mutex);
		espd_buf_wipe(&json);
		return FAILED;
	}
	sa = data->inbound ? this->registry->find_inbound(this->registry, spi)
					   : this->registry->find_sa(this->registry, spi, id->dst);
	if (sa && (sa->tunnel || !data->inbound))
	{
		DBG1(DBG_KNL, "kernel-espd: cannot install %s SA %.8x: installed "
			 "already", data->inbound ? "inbound" : "outbound", spi);
		sa = NULL;
		status = FAILED;
	}
	else if (sa)
	{
		/* the SPI get_spi() reserved */
		if (!sa->dst->ip_equals(sa->dst, id->dst) ||
			!sa->src->ip_equals(sa->src, id->src))
		{
			this->registry->move_sa(this->registry, sa, id->src, id->dst);
		}
		status = SUCCESS;
	}
	else
	{
		sa = this->registry->add_sa(this->registry, spi, data->inbound,
									id->src, id->dst);
		status = sa ? SUCCESS : FAILED;
		if (!sa)
		{
			DBG1(DBG_KNL, "kernel-espd: cannot install %s SA %.8x: another SA "
				 "has that SPI", data->inbound ? "inbound" : "outbound", spi);
		}
	}
	if (status != SUCCESS)
	{
		if (!tunnel->sas->get_count(tunnel->sas) && !tunnel->in_espd)
		{
			this->registry->remove_tunnel(this->registry, tunnel);
		}
		this->mutex->unlock(this->mutex);
		espd_buf_wipe(&json);
		return FAILED;
	}
	this->registry->attach_sa(this->registry, sa, tunnel);
	sa->json = json;

	if (tunnel->in_espd)
	{
		if (data->mode == MODE_TUNNEL)
		{
			update_peer(this, tunnel, remote);
		}
		status = rekey_sa(this, tunnel, sa);
	}
	else
	{
		if (!sa->inbound)
		{
			if (tunnel->outbound)
			{
				espd_buf_wipe(&tunnel->outbound->json);
			}
			tunnel->outbound = sa;
		}
		if (tunnel->outbound && tunnel->outbound->json.len &&
			has_pending(tunnel, TRUE))
		{
			status = add_tunnel(this, tunnel);
		}
		else
		{
			DBG2(DBG_KNL, "kernel-espd: %s SA %.8x waits for the other "
				 "direction of tunnel %s", sa->inbound ? "inbound" : "outbound",
				 spi, tunnel->name);
		}
	}
	if (status != SUCCESS)
	{
		this->registry->remove_sa(this->registry, sa);
		if (!tunnel->sas->get_count(tunnel->sas) && !tunnel->in_espd)
		{
			this->registry->remove_tunnel(this->registry, tunnel);
		}
	}
	this->mutex->unlock(this->mutex);
	return status;
}

METHOD(kernel_ipsec_t, update_sa, status_t,
	private_kernel_espd_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_update_sa_t *data)
{
	kernel_espd_tunnel_t *tunnel;
	kernel_espd_sa_t *sa;
	host_t *remote, *local;
	char key[128];

	this->mutex->lock(this->mutex);
	sa = lookup(this, id);
	if (!sa || !sa->tunnel)
	{
		this->mutex->unlock(this->mutex);
		DBG2(DBG_KNL, "kernel-espd: SA %.8x to update not found",
			 ntohl(id->spi));
		return NOT_FOUND;
	}
	tunnel = sa->tunnel;
	remote = sa->inbound ? data->new_src : data->new_dst;
	local = sa->inbound ? data->new_dst : data->new_src;
	this->registry->move_sa(this->registry, sa, data->new_src, data->new_dst);
	if (data->new_reqid)
	{
		tunnel->reqid = data->new_reqid;
	}
	tunnel_key(key, sizeof(key), tunnel->mode, tunnel->reqid, remote);
	if (!this->registry->rekey_tunnel(this->registry, tunnel, key))
	{
		DBG1(DBG_KNL, "kernel-espd: tunnel %s: another tunnel has reqid %u "
			 "and peer %#H; later SAs of this CHILD_SA may not find it",
			 tunnel->name, tunnel->reqid, remote);
	}
	if (!local->ip_equals(local, tunnel->local))
	{
		tunnel->local->destroy(tunnel->local);
		tunnel->local = local->clone(local);
	}
	if (!remote->equals(remote, tunnel->peer))
	{
		DBG1(DBG_KNL, "kernel-espd: tunnel %s: peer %#H now %#H", tunnel->name,
			 tunnel->peer, remote);
		update_peer(this, tunnel, remote);
	}
	this->mutex->unlock(this->mutex);
	return SUCCESS;
}

/** Reads an SA's counters from espd's list answer */
static bool find_in_list(espd_json_t *answer, kernel_espd_sa_t *sa,
						 uint64_t *bytes, uint64_t *packets)
{
	espd_json_t *tunnel, *item;
	uint64_t spi;

	tunnel = espd_json_get(answer, "tunnels");
	for (tunnel = tunnel ? tunnel->child : NULL; tunnel; tunnel = tunnel->next)
	{
		if (streq(espd_json_get_str(tunnel, "name") ?: "", sa->tunnel->name))
		{
			break;
		}
	}
	if (!tunnel)
	{
		return FALSE;
	}
	if (sa->inbound)
	{
		item = espd_json_get(tunnel, "inbound");
		for (item = item ? item->child : NULL; item; item = item->next)
		{
			if (espd_json_u64(espd_json_get(item, "spi"), &spi) &&
				spi == sa->spi)
			{
				break;
			}
		}
	}
	else
	{
		item = espd_json_get(tunnel, "outbound");
		if (!espd_json_u64(espd_json_get(item, "spi"), &spi) || spi != sa->spi)
		{
			item = NULL;
		}
	}
	return item && espd_json_u64(espd_json_get(item, "bytes"), bytes) &&
		   espd_json_u64(espd_json_get(item, "packets"), packets);
}

/** Asks espd for an SA's counters: query_sa, or else the whole list */
static bool query_espd(private_kernel_espd_ipsec_t *this, kernel_espd_sa_t *sa,
					   uint64_t *bytes, uint64_t *packets, int64_t *idle_ms)
{
	espd_buf_t req = {};
	espd_json_t *answer = NULL;
	uint64_t idle;
	char what[128];
	answer_t result;
	bool found;

	snprintf(what, sizeof(what), "querying SA %.8x of tunnel %s", sa->spi,
			 sa->tunnel->name);
	if (!this->no_query_sa)
	{
		espd_buf_printf(&req, "{\"op\":\"query_sa\",\"name\":");
		espd_buf_string(&req, sa->tunnel->name);
		espd_buf_printf(&req, ",\"spi\":\"0x%08x\",\"direction\":\"%s\"}",
						sa->spi, sa->inbound ? "inbound" : "outbound");
		result = call(this, &req, &answer, what);
		if (result == ANSWER_OK)
		{
			found = espd_json_u64(espd_json_get(answer, "bytes"), bytes) &&
					espd_json_u64(espd_json_get(answer, "packets"), packets);
			if (found && espd_json_u64(espd_json_get(answer, "idle_ms"), &idle))
			{
				*idle_ms = idle;
			}
			espd_json_destroy(answer);
			return found;
		}
		espd_json_destroy(answer);
		answer = NULL;
		if (result != ANSWER_UNKNOWN_OP)
		{
			return FALSE;
		}
		this->no_query_sa = TRUE;
		DBG1(DBG_KNL, "kernel-espd: espd has no query_sa: SA counters come "
			 "from its list of every tunnel");
	}
	espd_buf_printf(&req, "{\"op\":\"list\"}");
	if (call(this, &req, &answer, what) != ANSWER_OK)
	{
		espd_json_destroy(answer);
		return FALSE;
	}
	found = find_in_list(answer, sa, bytes, packets);
	espd_json_destroy(answer);
	return found;
}

METHOD(kernel_ipsec_t, query_sa, status_t,
	private_kernel_espd_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_query_sa_t *data, uint64_t *bytes, uint64_t *packets,
	time_t *time)
{
	kernel_espd_sa_t *sa;
	uint64_t b, p;
	int64_t idle_ms = -1;
	time_t now = time_monotonic(NULL);

	this->mutex->lock(this->mutex);
	sa = lookup(this, id);
	if (!sa || !sa->tunnel)
	{
		this->mutex->unlock(this->mutex);
		return NOT_FOUND;
	}
	/* an SA espd no longer has (a replaced outbound SA) keeps the counters
	 * last read */
	b = sa->bytes;
	p = sa->packets;
	if (sa->in_espd && !query_espd(this, sa, &b, &p, &idle_ms))
	{
		this->mutex->unlock(this->mutex);
		return FAILED;
	}
	if (idle_ms >= 0)
	{
		sa->last_use = now - idle_ms / 1000;
	}
	else if (b > sa->bytes)
	{
		/* traffic since the last query: the last use is no later than now */
		sa->last_use = now;
	}
	sa->bytes = max(sa->bytes, b);
	sa->packets = max(sa->packets, p);
	if (bytes)
	{
		*bytes = sa->bytes;
	}
	if (packets)
	{
		*packets = sa->packets;
	}
	if (time)
	{
		*time = sa->last_use;
	}
	this->mutex->unlock(this->mutex);
	return SUCCESS;
}

/** Removes a tunnel from espd (a tunnel espd no longer has is fine) */
static void delete_tunnel(private_kernel_espd_ipsec_t *this,
						  kernel_espd_tunnel_t *tunnel)
{
	espd_buf_t req = {};
	char what[128];

	espd_buf_printf(&req, "{\"op\":\"delete_tunnel\",\"name\":");
	espd_buf_string(&req, tunnel->name);
	espd_buf_printf(&req, "}");
	snprintf(what, sizeof(what), "deleting tunnel %s", tunnel->name);
	if (call(this, &req, NULL, what) == ANSWER_OK)
	{
		DBG1(DBG_KNL, "kernel-espd: tunnel %s (reqid %u) deleted from espd",
			 tunnel->name, tunnel->reqid);
	}
	tunnel->in_espd = FALSE;
}

/** Releases an SPI espd reserved and no SA used */
static void release_spi(private_kernel_espd_ipsec_t *this, uint32_t spi)
{
	espd_buf_t req = {};

	espd_buf_printf(&req, "{\"op\":\"release_spi\",\"spi\":\"0x%08x\"}", spi);
	call(this, &req, NULL, "releasing an SPI");
}

/** Whether the tunnel has another inbound SA in espd */
static bool other_inbound(kernel_espd_tunnel_t *tunnel, kernel_espd_sa_t *sa)
{
	enumerator_t *enumerator;
	kernel_espd_sa_t *other;
	bool found = FALSE;

	enumerator = tunnel->sas->create_enumerator(tunnel->sas);
	while (!found && enumerator->enumerate(enumerator, &other))
	{
		found = other != sa && other->inbound && other->in_espd;
	}
	enumerator->destroy(enumerator);
	return found;
}

METHOD(kernel_ipsec_t, del_sa, status_t,
	private_kernel_espd_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_del_sa_t *data)
{
	kernel_espd_tunnel_t *tunnel;
	kernel_espd_sa_t *sa;
	espd_buf_t req = {};
	char what[128];

	this->mutex->lock(this->mutex);
	sa = lookup(this, id);
	if (!sa)
	{
		this->mutex->unlock(this->mutex);
		DBG2(DBG_KNL, "kernel-espd: SA %.8x to delete not found (gone with "
			 "its tunnel)", ntohl(id->spi));
		return NOT_FOUND;
	}
	tunnel = sa->tunnel;
	if (!tunnel)
	{
		if (sa->reserved_in_espd)
		{
			release_spi(this, sa->spi);
		}
		this->registry->remove_sa(this->registry, sa);
		this->mutex->unlock(this->mutex);
		return SUCCESS;
	}
	if (sa->inbound && sa->in_espd && tunnel->in_espd)
	{
		if (other_inbound(tunnel, sa))
		{
			espd_buf_printf(&req, "{\"op\":\"delete_sa\",\"spi\":\"0x%08x\"}",
							sa->spi);
			snprintf(what, sizeof(what), "deleting inbound SA %.8x of tunnel "
					 "%s", sa->spi, tunnel->name);
			if (call(this, &req, NULL, what) == ANSWER_OK)
			{
				DBG1(DBG_KNL, "kernel-espd: inbound SA %.8x deleted from "
					 "tunnel %s", sa->spi, tunnel->name);
			}
		}
		else
		{
			/* the last inbound SA: the CHILD_SA is gone (its outbound SA
			 * cannot stay alone in espd) */
			delete_tunnel(this, tunnel);
			this->registry->remove_tunnel(this->registry, tunnel);
			this->mutex->unlock(this->mutex);
			return SUCCESS;
		}
	}
	else if (!sa->inbound && sa == tunnel->outbound && tunnel->in_espd)
	{
		DBG2(DBG_KNL, "kernel-espd: outbound SA %.8x of tunnel %s stays in "
			 "espd until it is replaced or the tunnel goes", sa->spi,
			 tunnel->name);
	}
	this->registry->remove_sa(this->registry, sa);
	if (!tunnel->in_espd && !tunnel->sas->get_count(tunnel->sas))
	{
		this->registry->remove_tunnel(this->registry, tunnel);
	}
	this->mutex->unlock(this->mutex);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, flush_sas, status_t,
	private_kernel_espd_ipsec_t *this)
{
	linked_list_t *list;
	kernel_espd_tunnel_t *tunnel;
	kernel_espd_sa_t *sa;

	this->mutex->lock(this->mutex);
	list = this->registry->list_tunnels(this->registry);
	while (list->remove_first(list, (void**)&tunnel) == SUCCESS)
	{
		if (tunnel->in_espd)
		{
			delete_tunnel(this, tunnel);
		}
		this->registry->remove_tunnel(this->registry, tunnel);
	}
	list->destroy(list);
	list = this->registry->list_reservations(this->registry);
	while (list->remove_first(list, (void**)&sa) == SUCCESS)
	{
		if (sa->reserved_in_espd)
		{
			release_spi(this, sa->spi);
		}
		this->registry->remove_sa(this->registry, sa);
	}
	list->destroy(list);
	this->mutex->unlock(this->mutex);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, add_policy, status_t,
	private_kernel_espd_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_manage_policy_t *data)
{
	if (data->type == POLICY_IPSEC && data->prio == POLICY_PRIORITY_ROUTED)
	{
		/* a trap: it needs acquires, raised by the dataplane for traffic
		 * that has no SA yet, and espd raises none */
		DBG1(DBG_KNL, "kernel-espd: trap policy %R === %R %N not installed: "
			 "espd raises no acquires (use start_action=start or none)",
			 id->src_ts, id->dst_ts, policy_dir_names, id->dir);
		return FAILED;
	}
	/* espd routes by the tunnel's remote_ts (or alias) and drops what has
	 * no tunnel: IPsec policies are its tunnels, bypass and drop policies
	 * have nothing to do */
	DBG2(DBG_KNL, "kernel-espd: %s policy %R === %R %N kept by espd's "
		 "tunnel routes", data->type == POLICY_IPSEC ? "IPsec" :
		 data->type == POLICY_PASS ? "bypass" : "drop", id->src_ts, id->dst_ts,
		 policy_dir_names, id->dir);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, query_policy, status_t,
	private_kernel_espd_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_query_policy_t *data, time_t *use_time)
{
	/* charon falls back to query_sa, which knows each SA's last use */
	return NOT_SUPPORTED;
}

METHOD(kernel_ipsec_t, del_policy, status_t,
	private_kernel_espd_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_manage_policy_t *data)
{
	return SUCCESS;
}

METHOD(kernel_ipsec_t, flush_policies, status_t,
	private_kernel_espd_ipsec_t *this)
{
	return SUCCESS;
}

METHOD(kernel_ipsec_t, bypass_socket, bool,
	private_kernel_espd_ipsec_t *this, int fd, int family)
{
	/* espd's own sockets carry IKE; nothing of charon's passes its SAs */
	return TRUE;
}

METHOD(kernel_ipsec_t, enable_udp_decap, bool,
	private_kernel_espd_ipsec_t *this, int fd, int family, uint16_t port)
{
	/* espd decapsulates on its listen sockets */
	return TRUE;
}

/** An SA of a tunnel by SPI and direction, among those espd has */
static kernel_espd_sa_t *tunnel_sa(kernel_espd_tunnel_t *tunnel, uint32_t spi,
								   bool inbound)
{
	enumerator_t *enumerator;
	kernel_espd_sa_t *sa, *found = NULL;

	enumerator = tunnel->sas->create_enumerator(tunnel->sas);
	while (!found && enumerator->enumerate(enumerator, &sa))
	{
		if (sa->inbound == inbound && sa->in_espd &&
			(!spi || sa->spi == spi))
		{
			found = sa;
		}
	}
	enumerator->destroy(enumerator);
	return found;
}

/** The newest inbound SA espd has of a tunnel */
static kernel_espd_sa_t *newest_inbound(kernel_espd_tunnel_t *tunnel)
{
	enumerator_t *enumerator;
	kernel_espd_sa_t *sa, *found = NULL;

	enumerator = tunnel->sas->create_enumerator(tunnel->sas);
	while (enumerator->enumerate(enumerator, &sa))
	{
		if (sa->inbound && (sa->in_espd || !tunnel->in_espd))
		{
			found = sa;
		}
	}
	enumerator->destroy(enumerator);
	return found;
}

/** {"event":"expire","spi":..,"hard":..,"direction":..,"tunnel":..} */
static void on_expire(private_kernel_espd_ipsec_t *this, espd_json_t *event)
{
	kernel_espd_tunnel_t *tunnel;
	kernel_espd_sa_t *sa = NULL;
	const char *name, *direction, *reason;
	host_t *dst = NULL;
	uint64_t spi;
	bool hard, inbound;

	name = espd_json_get_str(event, "tunnel");
	direction = espd_json_get_str(event, "direction");
	reason = espd_json_get_str(event, "reason") ?: "a limit";
	hard = espd_json_get_bool(event, "hard", FALSE);
	if (!espd_json_u64(espd_json_get(event, "spi"), &spi) || !name)
	{
		DBG1(DBG_KNL, "kernel-espd: expire event without spi or tunnel, "
			 "ignored");
		return;
	}
	inbound = !direction || streq(direction, "inbound");
	this->mutex->lock(this->mutex);
	tunnel = this->registry->find_tunnel_by_name(this->registry, name);
	if (tunnel)
	{
		sa = tunnel_sa(tunnel, spi, inbound);
	}
	if (sa)
	{
		dst = sa->dst->clone(sa->dst);
	}
	this->mutex->unlock(this->mutex);
	if (!dst)
	{
		DBG2(DBG_KNL, "kernel-espd: expire event for SA %.8x of tunnel %s, "
			 "which is not charon's", (uint32_t)spi, name);
		return;
	}
	DBG1(DBG_KNL, "kernel-espd: %s SA %.8x of tunnel %s reached its %s %s "
		 "limit", inbound ? "inbound" : "outbound", (uint32_t)spi, name,
		 hard ? "hard" : "soft", reason);
	charon->kernel->expire(charon->kernel, IPPROTO_ESP, htonl(spi), dst, hard);
	dst->destroy(dst);
}

/** {"event":"peer","tunnel":..,"peer":"ADDRESS:PORT"}: espd saw the peer
 *  move (authenticated packets from a new address or port) */
static void on_peer(private_kernel_espd_ipsec_t *this, espd_json_t *event)
{
	kernel_espd_tunnel_t *tunnel;
	kernel_espd_sa_t *sa = NULL;
	const char *name;
	host_t *peer, *dst = NULL;
	uint32_t spi = 0;

	name = espd_json_get_str(event, "tunnel");
	peer = parse_endpoint(espd_json_get_str(event, "peer"));
	if (!name || !peer)
	{
		DBG1(DBG_KNL, "kernel-espd: peer event without tunnel or peer, "
			 "ignored");
		DESTROY_IF(peer);
		return;
	}
	this->mutex->lock(this->mutex);
	tunnel = this->registry->find_tunnel_by_name(this->registry, name);
	if (tunnel && !tunnel->peer->equals(tunnel->peer, peer))
	{
		sa = newest_inbound(tunnel);
	}
	if (sa)
	{
		spi = sa->spi;
		dst = sa->dst->clone(sa->dst);
	}
	this->mutex->unlock(this->mutex);
	if (dst)
	{
		/* charon updates the IKE_SA and calls update_sa, which moves the
		 * tunnel here */
		charon->kernel->mapping(charon->kernel, IPPROTO_ESP, htonl(spi), dst,
								peer);
		dst->destroy(dst);
	}
	peer->destroy(peer);
}

CALLBACK(on_event, void,
	private_kernel_espd_ipsec_t *this, espd_json_t *event)
{
	const char *kind = espd_json_get_str(event, "event");

	if (streq(kind ?: "", "expire"))
	{
		on_expire(this, event);
	}
	else if (streq(kind ?: "", "peer"))
	{
		on_peer(this, event);
	}
	else
	{
		DBG2(DBG_KNL, "kernel-espd: espd event %s ignored", kind ?: "(none)");
	}
}

/** The names of espd's tunnels, from a list answer */
static bool names_in_espd(private_kernel_espd_ipsec_t *this,
						  linked_list_t *names)
{
	espd_buf_t req = {};
	espd_json_t *answer = NULL, *tunnel;
	const char *name;

	if (!this->no_names_only)
	{	/* the names alone, of our prefix: a few bytes a tunnel */
		espd_buf_printf(&req, "{\"op\":\"list\",\"names_only\":true,"
						"\"prefix\":");
		espd_buf_string(&req, this->prefix);
		espd_buf_printf(&req, "}");
		switch (call(this, &req, &answer, "listing espd's tunnel names"))
		{
			case ANSWER_OK:
				tunnel = espd_json_get(answer, "names");
				for (tunnel = tunnel ? tunnel->child : NULL; tunnel;
					 tunnel = tunnel->next)
				{
					if (tunnel->type == ESPD_JSON_STRING)
					{
						names->insert_last(names, strdup(tunnel->text));
					}
				}
				espd_json_destroy(answer);
				return TRUE;
			case ANSWER_REFUSED:
				/* an espd without names_only refuses the member */
				DBG1(DBG_KNL, "kernel-espd: espd lists no names alone; "
					 "listing whole tunnels instead");
				this->no_names_only = TRUE;
				break;
			default:
				espd_json_destroy(answer);
				return FALSE;
		}
		espd_json_destroy(answer);
		answer = NULL;
	}
	espd_buf_printf(&req, "{\"op\":\"list\"}");
	if (call(this, &req, &answer, "listing espd's tunnels") != ANSWER_OK)
	{
		espd_json_destroy(answer);
		return FALSE;
	}
	tunnel = espd_json_get(answer, "tunnels");
	for (tunnel = tunnel ? tunnel->child : NULL; tunnel; tunnel = tunnel->next)
	{
		name = espd_json_get_str(tunnel, "name");
		if (name)
		{
			names->insert_last(names, strdup(name));
		}
	}
	espd_json_destroy(answer);
	return TRUE;
}

/** Removes the tunnels a former charon left in espd */
static void flush_former(private_kernel_espd_ipsec_t *this)
{
	linked_list_t *names = linked_list_create();
	char *name, ours[MAX_PREFIX + 16];
	espd_buf_t req = {};
	u_int removed = 0;

	snprintf(ours, sizeof(ours), "%s%s-", this->prefix, this->tag);
	this->mutex->lock(this->mutex);
	if (names_in_espd(this, names))
	{
		while (names->remove_first(names, (void**)&name) == SUCCESS)
		{
			if (strpfx(name, this->prefix) && !strpfx(name, ours))
			{
				espd_buf_printf(&req, "{\"op\":\"delete_tunnel\",\"name\":");
				espd_buf_string(&req, name);
				espd_buf_printf(&req, "}");
				if (call(this, &req, NULL, "deleting a former charon's "
						 "tunnel") == ANSWER_OK)
				{
					removed++;
				}
			}
			free(name);
		}
	}
	this->mutex->unlock(this->mutex);
	names->destroy_function(names, free);
	if (removed)
	{
		DBG1(DBG_KNL, "kernel-espd: deleted %u tunnels a former charon left "
			 "in espd", removed);
	}
}

typedef struct {
	uint32_t spi;
	host_t *dst;
} lost_t;

/**
 * After espd's events were lost: the tunnels espd no longer has (it
 * restarted) are marked lost and their CHILD_SAs rekeyed, which installs
 * them again with new SAs (never a reused sequence number).
 */
static void restore_lost(private_kernel_espd_ipsec_t *this)
{
	linked_list_t *names = linked_list_create(), *tunnels, *lost;
	kernel_espd_tunnel_t *tunnel;
	enumerator_t *enumerator, *sas;
	kernel_espd_sa_t *sa, *newest;
	lost_t *item;
	char *name;
	bool present;

	lost = linked_list_create();
	this->mutex->lock(this->mutex);
	if (!names_in_espd(this, names))
	{
		this->mutex->unlock(this->mutex);
		names->destroy_function(names, free);
		lost->destroy(lost);
		return;
	}
	tunnels = this->registry->list_tunnels(this->registry);
	while (tunnels->remove_first(tunnels, (void**)&tunnel) == SUCCESS)
	{
		if (!tunnel->in_espd)
		{
			continue;
		}
		present = FALSE;
		enumerator = names->create_enumerator(names);
		while (!present && enumerator->enumerate(enumerator, &name))
		{
			present = streq(name, tunnel->name);
		}
		enumerator->destroy(enumerator);
		if (present)
		{
			continue;
		}
		newest = newest_inbound(tunnel);
		tunnel->in_espd = FALSE;
		sas = tunnel->sas->create_enumerator(tunnel->sas);
		while (sas->enumerate(sas, &sa))
		{
			sa->in_espd = FALSE;
		}
		sas->destroy(sas);
		if (newest)
		{
			INIT(item,
				.spi = newest->spi,
				.dst = newest->dst->clone(newest->dst),
			);
			lost->insert_last(lost, item);
		}
		DBG1(DBG_KNL, "kernel-espd: espd lost tunnel %s (reqid %u): rekeying "
			 "its CHILD_SA to install it again", tunnel->name, tunnel->reqid);
	}
	tunnels->destroy(tunnels);
	this->mutex->unlock(this->mutex);
	names->destroy_function(names, free);

	while (lost->remove_first(lost, (void**)&item) == SUCCESS)
	{
		charon->kernel->expire(charon->kernel, IPPROTO_ESP, htonl(item->spi),
							   item->dst, FALSE);
		item->dst->destroy(item->dst);
		free(item);
	}
	lost->destroy(lost);
}

CALLBACK(on_subscribed, void,
	private_kernel_espd_ipsec_t *this, bool first, bool restarted)
{
	if (first)
	{
		if (this->flush_on_start)
		{
			flush_former(this);
		}
	}
	else if (restarted)
	{
		restore_lost(this);
	}
	else
	{	/* the same espd: every tunnel is still there */
		DBG2(DBG_KNL, "kernel-espd: espd did not restart, its tunnels stand");
	}
}

METHOD(kernel_ipsec_t, destroy, void,
	private_kernel_espd_ipsec_t *this)
{
	linked_list_t *list;
	kernel_espd_tunnel_t *tunnel;

	DESTROY_IF(this->events);
	this->mutex->lock(this->mutex);
	list = this->registry->list_tunnels(this->registry);
	while (list->remove_first(list, (void**)&tunnel) == SUCCESS)
	{
		if (tunnel->in_espd)
		{
			delete_tunnel(this, tunnel);
		}
	}
	list->destroy(list);
	this->mutex->unlock(this->mutex);
	this->registry->destroy(this->registry);
	this->control->destroy(this->control);
	DESTROY_IF(this->rng);
	this->mutex->destroy(this->mutex);
	free(this);
}

/** A prefix espd takes in names: [A-Za-z0-9._-] */
static bool valid_prefix(const char *prefix)
{
	const char *p;

	if (strlen(prefix) > MAX_PREFIX)
	{
		return FALSE;
	}
	for (p = prefix; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
		{
			return FALSE;
		}
	}
	return TRUE;
}

/*
 * Described in header
 */
kernel_espd_ipsec_t *kernel_espd_ipsec_create()
{
	private_kernel_espd_ipsec_t *this;
	const char *path, *prefix;
	uint16_t tag;
	uint32_t spi_min, spi_max;
	int timeout;

	INIT(this,
		.public = {
			.interface = {
				.get_features = _get_features,
				.get_spi = _get_spi,
				.get_cpi = _get_cpi,
				.add_sa = _add_sa,
				.update_sa = _update_sa,
				.query_sa = _query_sa,
				.del_sa = _del_sa,
				.flush_sas = _flush_sas,
				.add_policy = _add_policy,
				.query_policy = _query_policy,
				.del_policy = _del_policy,
				.flush_policies = _flush_policies,
				.bypass_socket = _bypass_socket,
				.enable_udp_decap = _enable_udp_decap,
				.destroy = _destroy,
			},
		},
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.registry = kernel_espd_registry_create(),
		.rng = lib->crypto->create_rng(lib->crypto, RNG_WEAK),
		.set_local = lib->settings->get_bool(lib->settings,
						"%s.plugins.kernel-espd.set_local", TRUE, lib->ns),
		.espd_keepalives = lib->settings->get_bool(lib->settings,
						"%s.plugins.kernel-espd.espd_keepalives", FALSE, lib->ns),
		.flush_on_start = lib->settings->get_bool(lib->settings,
						"%s.plugins.kernel-espd.flush_on_start", TRUE, lib->ns),
	);

	path = lib->settings->get_str(lib->settings,
						"%s.plugins.kernel-espd.control", DEFAULT_CONTROL,
						lib->ns);
	timeout = lib->settings->get_int(lib->settings,
						"%s.plugins.kernel-espd.timeout", DEFAULT_TIMEOUT_MS,
						lib->ns);
	this->control = espd_control_create(path, timeout,
						lib->settings->get_int(lib->settings,
						"%s.plugins.kernel-espd.max_answer", DEFAULT_MAX_ANSWER,
						lib->ns));

	prefix = lib->settings->get_str(lib->settings,
						"%s.plugins.kernel-espd.name_prefix", DEFAULT_PREFIX,
						lib->ns);
	if (!valid_prefix(prefix))
	{
		DBG1(DBG_KNL, "kernel-espd: name_prefix %s is not 0-%d of [A-Za-z0-9._-], "
			 "using %s", prefix, MAX_PREFIX, DEFAULT_PREFIX);
		prefix = DEFAULT_PREFIX;
	}
	snprintf(this->prefix, sizeof(this->prefix), "%s", prefix);

	spi_min = lib->settings->get_int(lib->settings, "%s.spi_min",
									 KERNEL_SPI_MIN, lib->ns);
	spi_max = lib->settings->get_int(lib->settings, "%s.spi_max",
									 KERNEL_SPI_MAX, lib->ns);
	this->spi_min = max(min(spi_min, spi_max), (uint32_t)256);
	this->spi_max = max(max(spi_min, spi_max), this->spi_min);

	if (!this->rng ||
		!this->rng->get_bytes(this->rng, sizeof(tag), (uint8_t*)&tag))
	{
		DBG1(DBG_KNL, "kernel-espd: no random number generator");
		destroy(this);
		return NULL;
	}
	snprintf(this->tag, sizeof(this->tag), "%04x", tag);

	this->events = kernel_espd_events_create(path, timeout,
						lib->settings->get_int(lib->settings,
						"%s.plugins.kernel-espd.retry_interval",
						DEFAULT_RETRY_S, lib->ns),
						(kernel_espd_listener_t){
							.event = (void*)on_event,
							.subscribed = (void*)on_subscribed,
							.data = this,
						});
	if (!this->events)
	{
		destroy(this);
		return NULL;
	}
	DBG1(DBG_KNL, "kernel-espd: SAs go to espd on %s as tunnels %s%s-<reqid>",
		 path, this->prefix, this->tag);
	return &this->public;
}
