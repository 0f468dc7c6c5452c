/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Eviction at the master: which published objects leave the namespace when
 * the pool fills up. ARCHITECTURE.md "Cache semantics" is the contract:
 * oldest access first, never an object under a read lease, soft-pinned
 * ones only when the unpinned ones are not enough, hard-pinned ones never,
 * pending files never.
 *
 * Access times. Every published file carries a 32-bit last-access stamp
 * (struct mcfs_inode u.file.atime) on the LRU clock, the monotonic clock in
 * 64 ms steps: it fills padding, so it costs no memory per object, and it
 * is compared as an age (now - atime, wrap-safe), good for 8 years. Publish,
 * GET and LEASE set it; LOOKUP leases without counting as an access.
 *
 * Rounds (the background). A round sweeps the whole inode table, at most
 * MCFS_EVICT_STEP slots per mcfs_master_tick(), keeping the oldest
 * evictable objects in two bounded heaps: unpinned (no soft pin, or an
 * expired one) and soft-pinned. Its target is evict_ratio of the evictable
 * objects it met (at least one). Then it evicts, oldest first, again at
 * most MCFS_EVICT_STEP per tick, from the unpinned heap; from the
 * soft-pinned one only when the unpinned heap held every unpinned object
 * it met and ran out. Each candidate is checked again just before it goes
 * (it may have been read, leased, pinned or removed since). So the order
 * is exact LRU over the sweep's snapshot, with work per tick bounded: the
 * request loop never stalls, and a round over a large table spans ticks.
 * A round starts when the pool is over the high watermark, or for one node
 * when an allocation on it fails; what failed allocations evict while it
 * runs counts towards its share.
 *
 * Allocation failures (synchronous). When an allocation on a node finds no
 * room, mcfs_evict_alloc() scans a bounded span of the inode table (all of
 * it when it has at most MCFS_EVICT_SYNC_SPAN slots, else a window that
 * moves on at every call, a random sample since the table is hashed), for
 * objects with a replica holding space on that node, evicts the oldest
 * one at a time and retries the allocation after each. Soft-pinned ones go
 * only when the span held no unpinned one (exact for a whole-table span).
 * Bounded tries, then ENOSPC: with nothing evictable the answer comes at
 * once.
 *
 * Not thread-safe: the master's.
 */
#ifndef MCFS_EVICT_I_H
#define MCFS_EVICT_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mcfs_master;
struct mcfs_inode;

/* Inode table slots a tick's round inspects, or objects it evicts, at most. */
#define MCFS_EVICT_STEP 4096
/* A synchronous eviction scans this many slots per try, at most, */
#define MCFS_EVICT_SYNC_SPAN 65536
/* keeping this many candidates, */
#define MCFS_EVICT_SYNC_CAND 256
/* and tries this often before ENOSPC. */
#define MCFS_EVICT_SYNC_TRIES 4
/* After a round that found nothing, or less than its share, the next one waits this long. */
#define MCFS_EVICT_IDLE_MS 1000

/* The LRU clock's step: 64 ms. */
#define MCFS_LRU_SHIFT 6

static inline uint32_t mcfs_lru_clock(uint64_t now_ms)
{
	return (uint32_t)(now_ms >> MCFS_LRU_SHIFT);
}

struct mcfs_evict_cand {
	uint64_t ino;
	uint32_t atime; /* as seen: a different one when checked again means it was read since */
	uint32_t age;	/* LRU clock steps since that access, as of the scan */
};

/* The oldest candidates seen: a heap whose root is the youngest kept, until sorted. */
struct mcfs_evict_heap {
	struct mcfs_evict_cand *v; /* owned, cap entries */
	size_t n, cap;
};

enum { MCFS_EVICT_IDLE, MCFS_EVICT_SWEEP, MCFS_EVICT_EVICT };

/* The round in progress, and the synchronous scan's window. */
struct mcfs_evict {
	int phase;		     /* MCFS_EVICT_* */
	uint64_t node_id;	     /* objects with a replica on this node only; 0: all */
	uint32_t base;		     /* LRU clock at the round's start: ages are counted from it */
	size_t cursor;		     /* SWEEP: the next inode table slot */
	struct mcfs_evict_heap u, s; /* unpinned and soft-pinned candidates */
	uint64_t seen_u, seen_s;     /* evictable objects the sweep met */
	uint64_t target, done;	     /* EVICT: objects to evict, and evicted */
	uint64_t credit;	/* evicted meanwhile by failed allocations: part of the share */
	size_t iu, is;		/* EVICT: the next candidate of each heap */
	uint64_t idle_until_ms; /* no round starts before this */
	size_t sync_cursor;	/* where the next synchronous scan window starts */
};

void mcfs_evict_fini(struct mcfs_evict *ev);

/*
 * Start a round over the objects with a replica on node_id (0: all) unless
 * one is on, or the last one found too little less than
 * MCFS_EVICT_IDLE_MS ago. A round that cannot get memory for its heaps
 * does not start (logged); the next trigger tries again.
 */
void mcfs_evict_start(struct mcfs_master *m, uint64_t node_id, uint64_t now_ms);

/*
 * Do at most MCFS_EVICT_STEP units of the round's work (slots swept, or
 * candidates evicted or passed over). True while the round has work left.
 */
bool mcfs_evict_step(struct mcfs_master *m, uint64_t now_ms, int64_t now_ns);

/*
 * An allocation on node_id failed for want of room: evict objects with a
 * replica there (never inode skip_ino: the one the allocation is for) and
 * call try_alloc(arg) after each, until it returns anything but -ENOSPC,
 * which is returned, or the bounded tries run out: -ENOSPC. Starts a
 * round for node_id too, so that at least evict_ratio of its evictable
 * objects go in the next ticks.
 */
int mcfs_evict_alloc(struct mcfs_master *m, uint64_t node_id, uint64_t skip_ino, uint64_t now_ms,
		     int64_t now_ns, int (*try_alloc)(void *arg), void *arg);

/*
 * May in go now? pass 1: published, not pending, no lease, no hard pin,
 * no soft pin running. pass 2: a running soft pin is allowed too.
 */
bool mcfs_evict_allowed(const struct mcfs_inode *in, uint64_t now_ms, int pass);

#endif
