/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node daemon's shared state: its master client, its segment, the open
 * file handles whose leases it renews, and the FUSE operations table.
 */
#ifndef MCFS_NODE_H
#define MCFS_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include "meta/client.h"
#include "meta/master.h"
#include "tiers/dram.h"
#include "transport/xport.h"

struct mcfs_node_conf {
	char *mountpoint;
	char *master;	 /* HOST:PORT, or NULL for the embedded master */
	char *listen;	 /* segment server address (served from the cluster issue on) */
	char *node_name; /* default: host name */
	char *transport;
	char *ssd_dir;
	char *config;
	char *token_file;
	char *segment_size_str;
	char *ssd_size_str;
	char *lease_ttl_str; /* embedded master settings, as mcfs-master takes them */
	char *soft_pin_ttl_str;
	char *max_soft_pin_ttl_str;
	char *high_watermark_str;
	char *evict_ratio_str;
	char *put_timeout_str;
	int replicas;
	int foreground;
	int debug;
	int show_help;
	int show_version;
	uint64_t segment_size;
	double attr_timeout; /* seconds the kernel may cache attributes and entries */
	int poll_us;	     /* poll /dev/fuse this long after a request before sleeping */
	struct mcfs_master_conf mconf; /* for the embedded master */
};

struct mcfs_fh;
struct mcfs_dirh;
struct mcfs_ino;

struct mcfs_node {
	struct mcfs_node_conf *conf;
	struct mcfs_master *master; /* embedded master, or NULL */
	struct mcfs_mc *mc;
	struct mcfs_seg *seg;
	uint64_t node_id;
	struct fuse_session *se;

	pthread_mutex_t lock;	    /* protects the lists and table below */
	struct mcfs_fh *leased;	    /* handles holding a read lease, renewed by the lease thread */
	struct mcfs_ino *inodes;    /* uthash: per-inode state of this node, by ino */
	struct mcfs_ino *ino_names; /* the same, by the name the kernel knows (fs.c) */
	/*
	 * Names whose write open last failed with ESTALE (stale here, removed
	 * on another node), and the thread that opened them: the kernel's
	 * retry, from that thread, looks them up afresh, and if the file is
	 * gone again by its open, that is a race, not staleness. (Another
	 * thread's open of the same name must not take the note away.)
	 */
	struct {
		uint64_t parent, hash;
		pid_t pid;
	} estale[16];
	unsigned estale_next;
	pthread_t lease_thread;
	bool stopping;
	pthread_cond_t stop_cond;
	uint64_t lease_ms;	      /* what the master grants; renewals run at a third of it */
	struct mcfs_inval *invals;    /* kernel entries to drop, off the FUSE thread */
	struct mcfs_vhold *vholds;    /* uthash: versions our handles read (fs.c) */
	struct mcfs_vhold *release_q; /* their holds to give back (RELEASE) */
	uint64_t release_since_ms;    /* when release_q last became non-empty */
	/* Repairs (the lease thread's): the master's repair generation, and this node's round. */
	uint64_t repair_want, repair_seen; /* seen: the last round finished */
	struct mcfs_buf repair_page;	   /* SOLE_LIST entries fetched, from repair_off on */
	size_t repair_off;
	bool repair_eof; /* the page is the round's last */
	unsigned repair_done, repair_failed;
	/*
	 * Bumped when the master dropped this node while it was cut off: what
	 * the segment held then is no longer this node's to serve (the master
	 * hands its space out again), and handles reading it fail.
	 */
	uint64_t seg_epoch;
	/* Failed copies to peers: when the last was logged, and how many since (copy_warn()). */
	uint64_t copy_warn_ms;
	unsigned copy_warn_quiet;
	/* Open handles (FUSE thread only; what is left at unmount: mcfs_fs_close_all). */
	struct mcfs_fh *open_fhs;
	struct mcfs_dirh *open_dirs;

	const struct mcfs_xport_ops *xops;
	struct mcfs_xport_server *srv; /* serves our segment to peers, NULL without --listen */
	struct mcfs_xport_client *xc;  /* reads and writes peers' segments */
	struct mcfs_catalog *cat;   /* files we hold replicas of; NULL with the embedded master */
	uint64_t incarnation;	    /* this daemon run, random: HELLO says it */
	uint64_t put_gen;	    /* bumped when a master that does not know us takes over */
	struct mcfs_discover *disc; /* --master etcd://: finds and follows the leader */
};

extern const struct fuse_lowlevel_ops mcfs_fs_ops;

/* Start/stop the thread that renews the leases of open files. */
int mcfs_lease_start(struct mcfs_node *n);
void mcfs_lease_stop(struct mcfs_node *n);

/*
 * Before leaving the cluster: copy every object whose only complete replica
 * is on this node to another node with room, so a clean unmount loses
 * nothing that fits elsewhere. Returns how many could not be moved.
 */
unsigned mcfs_fs_drain(struct mcfs_node *n);

/*
 * After the FUSE loop ended: free the handles the kernel did not release
 * (its last releases can be lost in the unmount), giving back their
 * staging space and read holds as a release would.
 */
void mcfs_fs_close_all(struct mcfs_node *n);

/* Forget all per-inode and per-handle state (at unmount). */
void mcfs_fs_fini(struct mcfs_node *n);

#endif
