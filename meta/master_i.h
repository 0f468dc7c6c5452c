/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The master's insides, shared by meta/master.c (sessions, nodes, puts,
 * objects, message dispatch) and meta/master_xattr.c (extended attributes),
 * and the clock hook unit tests use to drive leases, pins and node TTLs.
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
#include "meta/evict_i.h"
#include "meta/master.h"
#include "meta/ns_i.h"
#include "meta/persist.h"
#include "meta/proto.h"
#include "transport/grant.h"

/* A registered node and its segment. */
struct mcfs_node {
	uint64_t id;
	char *name;		  /* owned */
	char *addr;		  /* owned; "" for the embedded, local-only node */
	uint32_t seg_id;	  /* 0 when the node contributes no segment */
	struct mcfs_alloc *alloc; /* owned; NULL without a segment */
	uint64_t last_seen_ms;	  /* its last request (HEARTBEAT included), monotonic */
	uint64_t incarnation;	  /* its daemon's run: HELLO with the same one resumes */
	uint64_t size;		  /* its segment's, as HELLO said */
	bool syncs;		  /* keeps a catalog of its replicas (SYNC): track changes */
	bool recovering;	  /* registered, report not finished: allocate nothing there */
	struct mcfs_dirty *dirty; /* uthash: inodes whose record it must fetch (SYNC) */
	uint64_t reported;	  /* records accepted from its REPORT */
	uint64_t report_dropped;  /* reported replicas that could not be placed */
	/*
	 * Files that may be short of their replica_num and whose first replica
	 * is here: this node copies them again (SOLE_LIST DEGRADED hands them
	 * out and forgets them). Owned; ndegraded of them.
	 */
	uint64_t *degraded;
	uint32_t ndegraded, degraded_cap;
};

/* Read holds on one version (master_hold.c). */
struct mcfs_hold_node {
	uint64_t node_id;
	uint64_t until_ms; /* monotonic: the hold ends then unless renewed */
	uint32_t count;	   /* acquisitions (GET, PUT_END) not yet released */
};

struct mcfs_hold {
	struct {
		uint64_t ino;
		uint64_t version;
	} key;
	uint32_t n, cap;
	struct mcfs_hold_node *v;
	UT_hash_handle hh;
};

/* A node the store says was registered, awaited after a restart. */
struct mcfs_expect {
	uint64_t key; /* mcfs_master_node_key() of its name */
	char *name;
	UT_hash_handle hh;
};

/* An inode whose catalog record changed for one node. */
struct mcfs_dirty {
	uint64_t ino;
	UT_hash_handle hh;
};

/* One range a put writes: the writer's staging, or a copy on another node. */
struct mcfs_put_rep {
	uint64_t node_id;
	uint32_t seg_id;
	bool has_range; /* false for 0 bytes, or once its node has left */
	bool lost;	/* its node left: the copy is gone, the end leaves it out */
	struct mcfs_extent ext;
};

#define MCFS_PUT_WRITE 1 /* PUT_START: a new version */
#define MCFS_PUT_REPL  2 /* REPL_START: more replicas of a published version */

/*
 * A put in flight, in put_id space. A write put's rep[0] is the staging
 * range in the writer's own segment (PUT_START, PUT_GROW); PUT_PLACE adds
 * the other replicas after it. A replication put's reps are the new copies.
 * The master owns every range until PUT_END/REPL_END hands them to the
 * object, or PUT_REVOKE frees them.
 */
struct mcfs_put {
	uint64_t id;
	uint64_t ino;
	uint64_t node_id;    /* who asked: only it may grow, place, end or revoke */
	uint64_t version;    /* REPL: the version copied; 0 for a write put */
	uint64_t size;	     /* the object size, once placed (always, for REPL) */
	uint64_t touched_ms; /* its writer's last PUT_START/GROW/PLACE on it, monotonic */
	uint8_t kind;	     /* MCFS_PUT_* */
	bool placed;	     /* PUT_PLACE done (REPL puts are placed from the start) */
	uint8_t nrep;
	struct mcfs_put_rep rep[MCFS_MAX_REPLICAS];
	UT_hash_handle hh; /* in master->puts, by id */
};

/* A replaced or unlinked version still under a read lease: freed by the tick. */
struct mcfs_retired {
	struct {
		uint64_t ino;
		uint64_t version;
	} key;
	struct mcfs_obj obj; /* owned (its replica list too) */
	UT_hash_handle hh;   /* in master->retired, by key */
};

/* A replica dropped from a live object (replica_num lowered), freed once its lease ends. */
struct mcfs_dropped {
	struct mcfs_dropped *next;
	uint64_t free_ms; /* monotonic */
	uint64_t node_id;
	uint32_t seg_id;
	uint32_t page, pages; /* its range, in allocator pages */
};

#define MCFS_DROPPED_INCS 256

struct mcfs_master_sess {
	uint64_t node_id; /* bound by HELLO; 0 before, and after BYE */
	bool lost;	  /* its node was dropped (TTL, restart): ENOTCONN until HELLO */
};

struct mcfs_master {
	struct mcfs_master_conf conf;
	struct mcfs_ns ns;
	struct mcfs_node **nodes; /* owned; indexed by node id, NULL for ids gone or unused */
	uint64_t nodes_cap;
	uint64_t last_node_id;
	uint32_t last_seg_id;
	/*
	 * Bumped whenever objects may have fewer replicas than their
	 * replica_num that another node could now take (a node left, one
	 * joined, a put left a copy out); HEARTBEAT answers it, and a node that
	 * sees it change looks for the objects it should copy again.
	 */
	uint64_t repair_gen;
	bool
	    repair_scan; /* the degraded lists need a walk of every file (mcfs_master_repair_mark) */
	/*
	 * Incarnations (daemon runs) of the nodes this master dropped, the
	 * latest MCFS_DROPPED_INCS: one that says HELLO again was cut off, and
	 * its catalog is stale (unlinks and renames since went past it), so it
	 * joins empty instead of reporting.
	 */
	uint64_t dropped_inc[MCFS_DROPPED_INCS];
	unsigned dropped_inc_next;
	struct mcfs_put *puts; /* owned, uthash by id */
	uint64_t last_put_id;
	struct mcfs_retired *retired; /* owned, uthash by (ino, version) */
	struct mcfs_hold *holds;      /* owned, uthash by (ino, version): who reads what */
	struct mcfs_dropped *dropped; /* owned list */
	uint64_t last_version;
	uint8_t grant_secret[MCFS_GRANT_SECRET_LEN]; /* signs every grant; HELLO hands it out */
	struct mcfs_buf scratch;		     /* the value of the response being built */
	struct mcfs_buf batch; /* the sub-responses of the BATCH being handled */
	struct mcfs_evict ev;
	struct mcfs_master_stats stats;
	uint64_t epoch;		       /* what every response carries */
	bool standby;		       /* HA: not the leader: every request gets -EREMCHG */
	struct mcfs_persist *store;    /* durable directories and counters; NULL: none */
	uint64_t ino_hwm, version_hwm; /* stored: no number at or above was handed out */
	struct mcfs_expect *expect;    /* nodes of the last run that have not reported yet */
	uint64_t recover_until_ms;     /* until then (or all reported), misses say EINPROGRESS */
	struct mcfs_buf rec;	       /* a record being built */
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
 * mcfs_now_ms(). NULL restores the real clock. Inode times and grant
 * deadlines stay on the wall clock.
 */
void mcfs_master_set_clock(struct mcfs_master *m, uint64_t (*clock)(void *arg), void *arg);

struct mcfs_node *mcfs_master_node(const struct mcfs_master *m, uint64_t id);

/*
 * Objects may now lack copies another node could take (a node left or
 * joined, a report ended): move the repair generation, and have the next
 * repair listing walk every file to find them.
 */
static inline void mcfs_master_repair_mark(struct mcfs_master *m)
{
	m->repair_gen++;
	m->repair_scan = true;
}

/* Can the caller see in? A pending file is its creator node's alone. */
static inline bool mcfs_master_visible(const struct mcfs_req *r, const struct mcfs_inode *in)
{
	return !(in->flags & MCFS_I_PENDING) || (r->caller && mcfs_file_creator(in) == r->caller);
}

/* Milliseconds from now to deadline, 0 when it has passed or is unset. */
static inline uint64_t mcfs_master_ms_left(const struct mcfs_req *r, uint64_t deadline)
{
	return deadline > r->now_ms ? deadline - r->now_ms : 0;
}

/* The soft pin a file gets now: the configured TTL, capped. */
uint64_t mcfs_master_pin_ttl(const struct mcfs_master *m);

/*
 * Keep the first keep replicas of ino's current object obj and drop the
 * others: their space is freed once the object's read lease ends, since
 * readers may be reading them.
 */
void mcfs_master_drop_reps(struct mcfs_req *r, struct mcfs_obj *obj, uint8_t keep);

/*
 * ino's object obj is replaced or its file goes: free its space now if no
 * lease holds it, else when the lease ends. obj is left zeroed.
 */
void mcfs_master_obj_retire(struct mcfs_master *m, uint64_t ino, struct mcfs_obj *obj,
			    uint64_t now_ms);

/* Recovery and node catalogs (master_recover.c). */
void mcfs_master_mark(struct mcfs_master *m, uint64_t node_id, uint64_t ino);
void mcfs_master_mark_obj(struct mcfs_master *m, uint64_t ino, const struct mcfs_obj *obj);
void mcfs_master_ns_changed(void *arg, struct mcfs_inode *in, bool gone);
void mcfs_master_dirty_free(struct mcfs_node *n);
/* Append ino's catalog record for node_id (FILE, or DROP when it holds no replica) to b. */
void mcfs_master_rec(struct mcfs_master *m, uint64_t ino, uint64_t node_id, uint64_t now_ms,
		     struct mcfs_buf *b);
int mcfs_master_do_sync(struct mcfs_req *r);
int mcfs_master_do_report(struct mcfs_req *r);
int mcfs_master_do_report_end(struct mcfs_req *r);
/* Read holds (master_hold.c). */
void mcfs_master_hold(struct mcfs_master *m, uint64_t ino, uint64_t version, uint64_t node_id,
		      uint64_t now_ms, bool acquire);
bool mcfs_master_held(struct mcfs_master *m, uint64_t ino, uint64_t version, uint64_t now_ms);
int mcfs_master_do_release(struct mcfs_req *r);
void mcfs_master_hold_strip(struct mcfs_master *m, uint64_t node_id);
void mcfs_master_hold_expire(struct mcfs_master *m, uint64_t now_ms);
void mcfs_master_holds_free(struct mcfs_master *m);
/* Free a retired version now (its space, its entry). */
void mcfs_master_retired_free(struct mcfs_master *m, struct mcfs_retired *rt);

/* Registered (with a catalog), or gone for good (BYE): the store's node list. */
void mcfs_master_node_stored(struct mcfs_master *m, const struct mcfs_node *n, bool present);
/* Still rebuilding: some node of the last run has not reported and the grace has not passed. */
static inline bool mcfs_master_rebuilding(const struct mcfs_master *m)
{
	return m->expect != NULL;
}
/* From the tick: the grace is over, stop waiting. */
void mcfs_master_rebuild_tick(struct mcfs_master *m, uint64_t now_ms);
void mcfs_master_expect_free(struct mcfs_master *m);
/* After each request and tick: store the high-water marks when passed, sync the store. */
void mcfs_master_store_check(struct mcfs_master *m, bool flush);
/* Give an inode its replica list back from a report (create or merge). */
void mcfs_master_inode_remove(struct mcfs_master *m, struct mcfs_inode *in, uint64_t now_ms,
			      int64_t now_ns);

/* Extended attribute requests (master_xattr.c); each fills r->out, returns 0 or -errno. */
int mcfs_master_setxattr(struct mcfs_req *r);
int mcfs_master_getxattr(struct mcfs_req *r);
int mcfs_master_listxattr(struct mcfs_req *r);
int mcfs_master_removexattr(struct mcfs_req *r);

#endif
