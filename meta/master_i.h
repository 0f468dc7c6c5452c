/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The master's insides, shared by meta/master.c (sessions, nodes, puts,
 * objects, message dispatch) and meta/master_xattr.c (extended attributes),
 * and the clock hook unit tests use to drive leases and pins.
 */
#ifndef MCFS_MASTER_I_H
#define MCFS_MASTER_I_H

#include <stdbool.h>
#include <stdint.h>

/* A failed uthash add leaves elt->hh.tbl NULL instead of exiting. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "common/buf.h"
#include "meta/alloc.h"
#include "meta/master.h"
#include "meta/ns_i.h"
#include "meta/proto.h"

/* A registered node and its segment. */
struct mcfs_node {
	uint64_t id;
	char *name;		  /* owned */
	char *addr;		  /* owned; "" for the embedded, local-only node */
	uint32_t seg_id;	  /* 0 when the node contributes no segment */
	struct mcfs_alloc *alloc; /* owned; NULL without a segment */
	uint64_t last_seen_ms;	  /* HELLO or HEARTBEAT, monotonic; for the node TTL */
};

/* A put in flight: a range reserved in its node's segment for a new version of ino. */
struct mcfs_put {
	uint64_t id;
	uint64_t ino;
	uint64_t node_id;
	bool has_range; /* false while the capacity is 0 */
	struct mcfs_extent ext;
	UT_hash_handle hh; /* in master->puts, by id */
};

/* A replaced or unlinked version still under a read lease: freed by the tick. */
struct mcfs_retired {
	struct {
		uint64_t ino;
		uint64_t version;
	} key;
	struct mcfs_obj obj;
	UT_hash_handle hh; /* in master->retired, by key */
};

struct mcfs_master_sess {
	uint64_t node_id; /* bound by HELLO; 0 before, and after BYE */
};

struct mcfs_master {
	struct mcfs_master_conf conf;
	struct mcfs_ns ns;
	struct mcfs_node **nodes; /* owned; indexed by node id, NULL for ids gone or unused */
	uint64_t nodes_cap;
	uint64_t last_node_id;
	uint32_t last_seg_id;
	struct mcfs_put *puts; /* owned, uthash by id */
	uint64_t last_put_id;
	struct mcfs_retired *retired; /* owned, uthash by (ino, version) */
	uint64_t last_version;
	struct mcfs_buf scratch; /* the value of the response being built */
	struct mcfs_buf batch;	 /* the sub-responses of the BATCH being handled */
	uint64_t (*clock_ms)(void *arg);
	void *clock_arg;
};

/* What one request sees: who asks, and when. */
struct mcfs_req {
	struct mcfs_master *m;
	struct mcfs_master_sess *s;
	struct mcfs_node *node; /* the caller's node, NULL without HELLO */
	uint64_t caller;	/* its id, 0 without HELLO */
	uint64_t now_ms;	/* monotonic, for leases and pins */
	int64_t now_ns;		/* wall clock, for inode times */
	const struct mcfs_msg *in;
	struct mcfs_msg *out;
};

/*
 * Test hook: leases, pins and last-seen times read clock(arg) instead of
 * mcfs_now_ms(). NULL restores the real clock. Inode times stay on the
 * wall clock.
 */
void mcfs_master_set_clock(struct mcfs_master *m, uint64_t (*clock)(void *arg), void *arg);

struct mcfs_node *mcfs_master_node(const struct mcfs_master *m, uint64_t id);

/* Can the caller see in? A pending file is its creator node's alone. */
static inline bool mcfs_master_visible(const struct mcfs_req *r, const struct mcfs_inode *in)
{
	return !(in->flags & MCFS_I_PENDING) || (r->caller && in->u.file.creator == r->caller);
}

/* Milliseconds from now to deadline, 0 when it has passed or is unset. */
static inline uint64_t mcfs_master_ms_left(const struct mcfs_req *r, uint64_t deadline)
{
	return deadline > r->now_ms ? deadline - r->now_ms : 0;
}

/* The soft pin a file gets now: the configured TTL, capped. */
uint64_t mcfs_master_pin_ttl(const struct mcfs_master *m);

/* Extended attribute requests (master_xattr.c); each fills r->out, returns 0 or -errno. */
int mcfs_master_setxattr(struct mcfs_req *r);
int mcfs_master_getxattr(struct mcfs_req *r);
int mcfs_master_listxattr(struct mcfs_req *r);
int mcfs_master_removexattr(struct mcfs_req *r);

#endif
