/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The master: namespace, object table, segment allocation, leases and node
 * registry. It never touches object bytes.
 *
 * The core is transport-free: mcfs_master_handle() takes one request frame
 * and appends the response frame. meta/server.c drives it from an epoll loop
 * over TCP (mcfs-master); the node daemon drives it in-process when no
 * --master is given (the embedded master), through the same codec.
 *
 * Not thread-safe: one thread at a time (the server loop, or the embedded
 * client's lock).
 */
#ifndef MCFS_MASTER_H
#define MCFS_MASTER_H

#include <signal.h>
#include <stdint.h>

#include "common/buf.h"

struct mcfs_master_conf {
	uint64_t lease_ms;	   /* read lease granted by GET (default 10000) */
	uint64_t soft_pin_ttl_ms;  /* default soft pin (default 30 min) */
	uint64_t max_soft_pin_ttl_ms; /* cap (default 24 h) */
	uint64_t node_ttl_ms;	   /* node silent this long is dropped (default 10000) */
	double high_watermark;	   /* default 0.90 */
	double evict_ratio;	   /* default 0.05 */
	uint32_t default_replicas; /* replica_num of the root directory (default 1) */
};

/* Fill c with the defaults above. */
void mcfs_master_conf_default(struct mcfs_master_conf *c);

struct mcfs_master;
/* One peer connection (a node, a tool) or the embedded daemon. */
struct mcfs_master_sess;

int mcfs_master_create(const struct mcfs_master_conf *c, struct mcfs_master **out);
void mcfs_master_destroy(struct mcfs_master *m);

int mcfs_master_sess_open(struct mcfs_master *m, struct mcfs_master_sess **out);
/* The peer went away. Its node stays registered until BYE or the node TTL. */
void mcfs_master_sess_close(struct mcfs_master *m, struct mcfs_master_sess *s);

/*
 * Handle one request frame (header and payload, len bytes) from session s
 * and append exactly one response frame to out. Returns 0 when a response
 * was appended (whatever its status), or a negative errno when the frame
 * itself is malformed (-EPROTO, -EMSGSIZE, -EBADMSG, -ENOTSUP): the caller
 * logs the reason and closes the connection.
 */
int mcfs_master_handle(struct mcfs_master *m, struct mcfs_master_sess *s, const uint8_t *frame,
		       size_t len, struct mcfs_buf *out);

/*
 * Timed work: free retired objects whose leases ended, drop silent nodes.
 * Call every few hundred ms. Returns ms until it wants to run again.
 */
uint64_t mcfs_master_tick(struct mcfs_master *m, uint64_t now_ms);

/*
 * Run the TCP server on host:port until *stop becomes nonzero (set from a
 * signal handler). 0, or a negative errno when it cannot listen.
 */
int mcfs_master_serve(struct mcfs_master *m, const char *host, uint16_t port,
		      volatile sig_atomic_t *stop);

#endif
