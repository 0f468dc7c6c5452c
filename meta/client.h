/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The master client: how a node daemon (or a tool) talks to the master,
 * over TCP to an mcfs-master or in-process to an embedded one. Both paths
 * encode and decode the same frames.
 *
 * Thread-safe: calls from several threads are serialised on one connection.
 */
#ifndef MCFS_CLIENT_H
#define MCFS_CLIENT_H

#include <stdint.h>

#include "common/buf.h"
#include "meta/master.h"
#include "meta/proto.h"

struct mcfs_mc;

/* How long a call waits for the master's answer before it fails with EIO. */
#define MCFS_RPC_TIMEOUT_MS 15000

/*
 * Connect to an mcfs-master at host:port. 0 or a negative errno.
 *
 * When the connection breaks (the master restarted, or a network fault), a
 * call reconnects and sends its request again, until MCFS_RPC_TIMEOUT_MS
 * after it started: callers see a pause, not an error. After each
 * reconnect the rejoin hook runs first (see mcfs_mc_set_rejoin). Answers
 * from an older epoch than one already seen (a master that lost its
 * leadership) are refused and the connection is dropped.
 */
int mcfs_mc_connect(const char *host, uint16_t port, struct mcfs_mc **out);
/*
 * The same, but the master's address comes from resolve() (e.g. the leader
 * elected in etcd), asked again before every reconnection. Nothing is
 * dialled yet: the first call (or mcfs_mc_rejoin) connects, retrying for up
 * to MCFS_RPC_TIMEOUT_MS. An answer -EREMCHG (a standby) also makes the
 * client look the master up again.
 */
int mcfs_mc_connect_resolve(int (*resolve)(void *arg, char *host, size_t hostsz, uint16_t *port),
			    void *arg, struct mcfs_mc **out);
/*
 * Break the current connection (from any thread, without waiting for a
 * call in flight): that call fails over to a new connection. For a leader
 * change seen in etcd.
 */
void mcfs_mc_kick(struct mcfs_mc *mc);

/*
 * After sending a request, look for the answer for us microseconds before
 * sleeping until it comes (0, the default: sleep at once). Trades a little
 * CPU for latency: a thread asleep on a virtual machine takes tens of
 * microseconds to wake.
 */
void mcfs_mc_set_poll(struct mcfs_mc *mc, unsigned int us);

/* A client for an in-process master; m stays owned by the caller. */
int mcfs_mc_embedded(struct mcfs_master *m, struct mcfs_mc **out);
void mcfs_mc_close(struct mcfs_mc *mc);

/*
 * Run the embedded master's timed work (mcfs_master_tick) under the client's
 * lock; a no-op for a remote master, which runs its own. Call every few
 * hundred ms.
 */
uint64_t mcfs_mc_tick(struct mcfs_mc *mc); /* ms until it wants to run again */

/*
 * One round trip: req (type and fields set; req_id is assigned here) is sent
 * and its response decoded into *resp, whose blobs point into rbuf (owned by
 * the caller, reused across calls; valid until rbuf is reused or freed).
 * Returns resp->status (0 or a negative errno from the master), or -EIO when
 * the master could not be reached, did not answer within MCFS_RPC_TIMEOUT_MS
 * or answered garbage.
 */
int mcfs_mc_call(struct mcfs_mc *mc, struct mcfs_msg *req, struct mcfs_msg *resp,
		 struct mcfs_buf *rbuf);

/*
 * The hook that (re)introduces this node to the master: run by
 * mcfs_mc_rejoin() and after every reconnect, with the client's lock held,
 * so it must talk through mcfs_mc_call_nested() only. 0 or a negative errno
 * (the connection is then dropped and tried again).
 */
void mcfs_mc_set_rejoin(struct mcfs_mc *mc, int (*fn)(struct mcfs_mc *mc, void *arg), void *arg);
/* Run the rejoin hook now (a first HELLO, or after the master forgot us). */
int mcfs_mc_rejoin(struct mcfs_mc *mc);
/* mcfs_mc_call from inside the rejoin hook: one attempt, no reconnect. */
int mcfs_mc_call_nested(struct mcfs_mc *mc, struct mcfs_msg *req, struct mcfs_msg *resp,
			struct mcfs_buf *rbuf);
/* The highest epoch the master has answered with (0 before any answer). */
uint64_t mcfs_mc_epoch(struct mcfs_mc *mc);

#endif
