/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leader election for mcfs-master through etcd (HA mode).
 *
 * Two threads, each with its own etcd handle: one holds an etcd lease (TTL
 * MCFS_HA_LEASE_TTL_S, kept alive every MCFS_HA_KEEPALIVE_MS); the other
 * campaigns in the election "/mcfs/<cluster>/election" with that lease and
 * the advertised RPC address as value. The master's loop polls the outcome
 * (mcfs_ha_poll). The election revision of the winning key is the leader's
 * epoch: etcd revisions only grow, so every new leader's epoch is larger
 * than any before it.
 *
 * Losing the lease (etcd says it is gone: the leader was paused or cut off
 * longer than the TTL) ends the leadership; the master then exits, and the
 * nodes refuse anything it might still say (older epoch). While etcd is
 * merely unreachable the leader goes on serving: its lease outlives short
 * etcd outages and restarts.
 */
#ifndef MCFS_HA_H
#define MCFS_HA_H

#include <stddef.h>
#include <stdint.h>

#define MCFS_HA_LEASE_TTL_S  2
#define MCFS_HA_KEEPALIVE_MS 500

struct mcfs_ha;
struct mcfs_etcd;

enum mcfs_ha_state {
	MCFS_HA_STANDBY = 0, /* campaigning */
	MCFS_HA_ELECTED = 1, /* won: the loop should take over (once) */
	MCFS_HA_LEADER = 2,  /* took over */
	MCFS_HA_LOST = 3,    /* the lease is gone: stop serving */
};

/*
 * Start campaigning. urls: etcd endpoints ("h:p,h:p" or http:// URLs);
 * cluster: the cluster name; advertise: the RPC address nodes should dial.
 * 0, -EINVAL (bad endpoint list), -ENOMEM.
 */
int mcfs_ha_start(const char *urls, const char *cluster, const char *advertise,
		  struct mcfs_ha **out);
/* Resign (when leader), revoke the lease, stop the threads. Accepts NULL. */
void mcfs_ha_stop(struct mcfs_ha *h);

/*
 * The state now. On MCFS_HA_ELECTED *rev gets the epoch and *key the leader
 * key (valid until mcfs_ha_stop); the caller calls mcfs_ha_took_over() once
 * it serves.
 */
enum mcfs_ha_state mcfs_ha_poll(struct mcfs_ha *h, int64_t *rev, const char **key);
void mcfs_ha_took_over(struct mcfs_ha *h);

/* A handle for the loop thread's own use (the store), opened on the same endpoints. */
struct mcfs_etcd *mcfs_ha_etcd(struct mcfs_ha *h);

/* "/mcfs/<cluster>/" + what: the keys of this cluster. */
int mcfs_ha_key(const char *cluster, const char *what, char *buf, size_t bufsz);

#endif
