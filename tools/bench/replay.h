/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mcfs-bench trace: replay of a KV-cache request trace (trace.h) as file
 * I/O. Every block id is a file <dir>/<id % 256 as 2 hex digits>/<id>.kv
 * of block_bytes; a request reads its blocks' files in order while they
 * exist (prefix reuse), then writes the rest, each through a temp name and
 * a rename, the way serving stacks commit a block. Requests start at the
 * trace's timestamps divided by speed, or as fast as the threads go, and
 * are spread round-robin over several directories (the mounts of prefill
 * nodes sharing one cache).
 */
#ifndef MCFS_BENCH_REPLAY_H
#define MCFS_BENCH_REPLAY_H

#include <stdint.h>

#include "tools/bench/blob.h"
#include "tools/bench/stats.h"
#include "tools/bench/trace.h"

struct bench_replay_conf {
	const char *const *dirs; /* ndirs directories prepared with bench_replay_prepare() */
	int ndirs;
	uint64_t block_bytes;	       /* at least BENCH_BLOB_HDR_LEN */
	int threads;		       /* requests in flight */
	double speed;		       /* > 0: start requests at timestamp / speed; 0: at once */
	uint64_t io;		       /* bytes per read()/write() call */
	const struct bench_pool *pool; /* bodies of block_bytes - BENCH_BLOB_HDR_LEN fit */
	int max_messages;	       /* errors printed to stderr before going quiet */
};

struct bench_replay_result {
	uint64_t requests;
	uint64_t blocks;
	uint64_t hits;		    /* blocks read and verified */
	uint64_t writes;	    /* blocks written */
	uint64_t errors;	    /* failed operations other than a missing block */
	uint64_t mismatches;	    /* blocks that read back wrong (counted as misses) */
	double seconds;		    /* wall time of the replay */
	struct bench_phase read;    /* open+read+close of a hit block */
	struct bench_phase write;   /* write+close+rename of a missed block */
	struct bench_phase ttfb;    /* request start to its first block read or written */
	struct bench_phase request; /* request start to its last block */
};

/* Makes the 256 block directories under dir (existing ones are fine). 0 or -errno. */
int bench_replay_prepare(const char *dir);

/*
 * The file of block id under dir: "<dir>/<xx>/<id>.kv". Returns what
 * snprintf returns.
 */
int bench_replay_block_path(char *out, size_t outsz, const char *dir, uint64_t id);

/*
 * Replays every request of t. Counts and latencies go to *r (initialized
 * here). Returns 0 when the replay ran to its end (errors and mismatches
 * are counted in *r, not returned), -EINTR when interrupted, or -errno
 * when it could not run (threads, memory).
 */
int bench_replay_run(const struct bench_replay_conf *c, const struct bench_trace *t,
		     struct bench_replay_result *r);

/* The subcommand; argv[0] is "trace". Returns a BENCH_EXIT_* code. */
int bench_replay_main(int argc, char **argv);

#endif
