/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The master's HTTP endpoints (mcfs-master --http, port 7421):
 *
 *   GET /role     200, the role and a newline: "leader", "standby", ...
 *   GET /health   200 "ok" while serving, else 503 and the role
 *   GET /metrics  200, Prometheus text exposition format 0.0.4
 *
 * Any other path is 404, any method but GET and HEAD 405.
 *
 * libmicrohttpd serves them from a thread of its own. The master is not
 * thread-safe, so that thread never touches it: the master's loop publishes
 * a snapshot (mcfs_http_publish(), from its periodic hook and whenever the
 * role changes) and the endpoints answer from the last one published.
 */
#ifndef MCFS_HTTP_H
#define MCFS_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "meta/master.h"

#define MCFS_HTTP_ROLE_MAX 16

/* What the endpoints show. Plain data: fill it on the master's thread. */
struct mcfs_http_snapshot {
	/* "leader", "standby", "recovering": lowercase letters, NUL-terminated */
	char role[MCFS_HTTP_ROLE_MAX];
	bool serving;	       /* leader and accepting requests: /health is 200 */
	uint64_t epoch;	       /* mcfs_master_epoch() */
	int64_t start_time_ns; /* wall clock when the master started, 0: unknown */
	struct mcfs_master_stats stats;
	struct mcfs_master_serve_stats serve;
};

struct mcfs_http;

/*
 * Listen on host:port (a numeric address or a name; IPv4 or IPv6) and serve
 * the endpoints from a new thread. Until the first mcfs_http_publish() the
 * role is "starting", /health is 503 and the metrics are all zero.
 * 0 with *out set, or a negative errno, logged with the address:
 * -EADDRINUSE, -EACCES (a port below 1024), -EADDRNOTAVAIL (no such local
 * address, or a name that does not resolve), -ENOMEM, -EIO (libmicrohttpd
 * would not start).
 */
int mcfs_http_start(const char *host, uint16_t port, struct mcfs_http **out);

/* Stop serving: close the listener and every connection, join the thread. NULL is fine. */
void mcfs_http_stop(struct mcfs_http *h);

/*
 * Replace the snapshot the endpoints answer from; s is copied. Any thread,
 * but meant for the master's. 0, -EINVAL for a role that is empty, too long
 * or not lowercase letters (the snapshot stays as it was), or -ENOMEM.
 */
int mcfs_http_publish(struct mcfs_http *h, const struct mcfs_http_snapshot *s);

/*
 * Append the /metrics text of s to out. Pure: no I/O, no locks.
 * 0, or -ENOMEM (out->oom is then set and out incomplete).
 */
int mcfs_http_format_metrics(const struct mcfs_http_snapshot *s, struct mcfs_buf *out);

#endif
