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
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

struct mcfs_master_conf {
	uint64_t lease_ms;	      /* read lease granted by LOOKUP, GET, LEASE (default 10000) */
	uint64_t soft_pin_ttl_ms;     /* default soft pin (default 30 min) */
	uint64_t max_soft_pin_ttl_ms; /* cap (default 24 h) */
	uint64_t node_ttl_ms;	      /* node silent this long is dropped (default 10000) */
	double high_watermark;	      /* default 0.90 */
	double evict_ratio;	      /* default 0.05 */
	uint32_t default_replicas;    /* replica_num of the root directory (default 1) */
	/*
	 * A put (write or replication) its writer has not touched (PUT_START,
	 * PUT_GROW, PUT_PLACE) for this long is revoked by the tick: its space
	 * is freed, and a pending file it wrote that nothing else writes goes.
	 * Write grants last as long. 0: never (grants then last 60 s).
	 * Default 60000.
	 */
	uint64_t put_timeout_ms;
	/*
	 * mcfs_master_serve(): after handling requests, look for more for this
	 * many microseconds before sleeping in epoll_wait (0: sleep at once).
	 * Default 50.
	 */
	uint32_t poll_us;
};

/* Fill c with the defaults above. */
void mcfs_master_conf_default(struct mcfs_master_conf *c);

/* Counters since the master started, for /metrics. */
struct mcfs_master_stats {
	uint64_t evict_rounds; /* rounds started: pool over the watermark, or a failed allocation */
	uint64_t evicted_objects; /* objects evicted (their names left the namespace) */
	uint64_t evicted_bytes;	  /* segment bytes they held, every replica counted */
	uint64_t evict_inspected; /* inode table slots the eviction scans looked at */
	uint64_t alloc_evictions; /* allocations that found no room and evicted to make some */
	uint64_t alloc_enospc;	  /* ... and still failed: ENOSPC */
	uint64_t puts_expired;	  /* puts revoked after put_timeout_ms untouched */
};

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
 * Timed work: free retired objects whose leases ended, drop silent nodes,
 * revoke puts past the put timeout, and evict (a bounded share of a round
 * per call) while the pool is over the high watermark. Call every few
 * hundred ms. Returns ms until it wants to run again: 0 while an eviction
 * round has work left.
 */
uint64_t mcfs_master_tick(struct mcfs_master *m, uint64_t now_ms);

struct mcfs_persist;

/*
 * Keep directories, symlinks and the id counters in store (owned by the
 * caller, open until the master is destroyed), after loading what it holds:
 * a master restarted on the same store gets its directories back, and its
 * nodes report the files (HELLO with MCFS_HELLO_REPORT, REPORT). The epoch
 * becomes the stored one plus one. Call once, right after create. 0 or a
 * negative errno (a record that does not decode: -EBADMSG).
 */
int mcfs_master_attach_store(struct mcfs_master *m, struct mcfs_persist *store);

/*
 * HA: a standby answers every request with -EREMCHG ("ask the leader"),
 * which makes a node look the leader up again. A new master is not a
 * standby. The epoch of an elected leader is its election revision.
 */
void mcfs_master_set_standby(struct mcfs_master *m, bool standby);
bool mcfs_master_standby(const struct mcfs_master *m);
void mcfs_master_set_epoch(struct mcfs_master *m, uint64_t epoch);

/* Copy the counters into st. */
void mcfs_master_get_stats(const struct mcfs_master *m, struct mcfs_master_stats *st);
/* The settings m runs with. */
const struct mcfs_master_conf *mcfs_master_get_conf(const struct mcfs_master *m);

/*
 * The epoch every response carries: the leader election revision, 1 while
 * there is no high availability.
 */
uint64_t mcfs_master_epoch(const struct mcfs_master *m);

/* Requests are counted by message type below this; the others in slot 0. */
#define MCFS_MASTER_MSG_TYPES 64

/* What the server loop counts since it started, for /metrics. */
struct mcfs_master_serve_stats {
	uint64_t requests[MCFS_MASTER_MSG_TYPES]; /* frames handled, by message type */
	uint64_t conns_accepted;		  /* connections accepted */
	uint64_t conns_open;			  /* connections open now (a gauge) */
	uint64_t conns_failed;			  /* closed for a bad frame or an I/O error */
	uint64_t bytes_in;			  /* bytes received, frame headers included */
	uint64_t bytes_out;			  /* bytes sent */
};

/*
 * A function the server loop calls on its own thread: once when it listens,
 * before the first request, then every period_ms (0: every 200 ms) between
 * requests. It may read the master (it is the only thread touching it then)
 * and st, both borrowed for the call only: the place to copy state out for
 * other threads, such as the HTTP endpoints. A nonzero return (a negative
 * errno) stops the server, which returns it.
 */
struct mcfs_master_hook {
	int (*fn)(struct mcfs_master *m, const struct mcfs_master_serve_stats *st, void *arg);
	void *arg;
	uint64_t period_ms;
};

/*
 * Run the TCP server on host:port until *stop becomes nonzero (set from a
 * signal handler), calling hook (NULL: none) as it says above. 0, or a
 * negative errno when it cannot listen or the hook failed.
 */
int mcfs_master_serve(struct mcfs_master *m, const char *host, uint16_t port,
		      volatile sig_atomic_t *stop, const struct mcfs_master_hook *hook);

#endif
