/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the master keeps durable itself: the records nodes cannot report
 * (directories, symlinks, their attributes and xattrs) and a few counters
 * (inode and version high-water marks, the epoch). Everything else, every
 * published file, is rebuilt from the nodes' reports after a restart.
 *
 * The single-master store is one append-only log in --data-dir: each entry
 * is u32 length, u32 crc32c of the payload, and the payload (u8 op, u8 kind,
 * u64 key, value). Opening it replays the log (a torn or corrupt tail is cut
 * off, with a warning) and rewrites it compacted. Appends reach the kernel
 * at once (a killed master loses nothing); mcfs_persist_flush() makes them
 * durable against a machine crash, and the master calls it every tick.
 *
 * One master at a time: the directory is locked (flock) while open.
 *
 * The HA store (mcfs_persist_open_etcd) keeps the same entries in etcd, one
 * key each: prefix + kind (2 hex digits) + "/" + key (16 hex digits), the
 * value the raw bytes. Every write is a transaction fenced by the leader's
 * election key, so a deposed master cannot change the store; it is durable
 * when it returns 0. Calls block on etcd (a write to an unreachable etcd
 * retries for about 2 s); use the store from one thread.
 *
 * Both keep every live entry in memory: mcfs_persist_load() reads nothing
 * from disk or etcd, and deleting an absent key costs nothing.
 */
#ifndef MCFS_PERSIST_H
#define MCFS_PERSIST_H

#include <stddef.h>
#include <stdint.h>

struct mcfs_etcd;

#define MCFS_PERSIST_INODE 1 /* key: ino; value: an MCFS_REC_DIR/LINK record */
#define MCFS_PERSIST_META  2 /* key: MCFS_META_*; value: u64 */
#define MCFS_PERSIST_NODE  3 /* key: hash of the name; value: a node's name (it reports) */

#define MCFS_META_INO_HWM     1 /* no inode number at or above it was handed out */
#define MCFS_META_VERSION_HWM 2 /* likewise for object versions */
#define MCFS_META_EPOCH	      3 /* the last epoch a master of this store served */

struct mcfs_persist;

/* Open (creating) the store in dir. 0, -EBUSY when another master holds it, or -errno. */
int mcfs_persist_open(const char *dir, struct mcfs_persist **out);

/*
 * The store in etcd under prefix (e.g. "/mcfs/<cluster>/store/"), for HA.
 * Every write is fenced: it succeeds only while guard_key still exists with
 * create revision guard_rev (the leader's election key, struct
 * mcfs_etcd_leader's key and rev), so a master that lost its leadership
 * cannot change the store. guard_key must not lie under prefix.
 *
 * e is borrowed: the caller keeps it open until mcfs_persist_close() and
 * uses it only from the thread that uses the store (its timeout bounds each
 * request). prefix and guard_key are copied. Reads every key under prefix
 * (paginated, one snapshot), retrying an unreachable etcd for about 2 s;
 * keys under prefix that are not the store's are ignored with a warning.
 * 0, -EINVAL (bad arguments, logged), -ENOMEM, or the etcd error (logged;
 * meta/etcd.h).
 */
int mcfs_persist_open_etcd(struct mcfs_etcd *e, const char *prefix, const char *guard_key,
			   int64_t guard_rev, struct mcfs_persist **out);

/*
 * Accepts NULL. The etcd store does not close its borrowed handle; if a
 * write failed earlier it tries one last resync (see mcfs_persist_flush).
 */
void mcfs_persist_close(struct mcfs_persist *p);

/*
 * Call fn for every live record, in no particular order. value is valid
 * only during the call. A non-zero return from fn stops the walk and is
 * returned.
 */
int mcfs_persist_load(struct mcfs_persist *p,
		      int (*fn)(void *arg, uint8_t kind, uint64_t key, const uint8_t *val,
				size_t len),
		      void *arg);

/*
 * Record (replacing) or delete one entry. 0 or -errno. A change refused up
 * front (-EIO: the store is broken; -EMSGSIZE: a value over 1 MiB; -ENOMEM)
 * leaves the in-memory table as it was; once it is in the table, any later
 * failure keeps it there. mcfs_persist_del() of an absent key is 0 at once.
 *
 * The file store is broken after a failed append (-EIO from then on).
 * The etcd store: -ECANCELED when the guard failed (leadership lost, logged
 * once): the store refuses every later write with -EIO, at once. Any other
 * etcd error (after retrying an unreachable etcd for about 2 s; logged) may
 * or may not have reached etcd: the store remembers to resync (see
 * mcfs_persist_flush), and while it does, writes try etcd only once.
 */
int mcfs_persist_put(struct mcfs_persist *p, uint8_t kind, uint64_t key, const void *val,
		     size_t len);
int mcfs_persist_del(struct mcfs_persist *p, uint8_t kind, uint64_t key);
int mcfs_persist_put_u64(struct mcfs_persist *p, uint64_t key, uint64_t v);

/*
 * File: fdatasync what was appended since the last flush. 0 or -errno.
 * etcd: nothing to do (0) unless a write failed: then make etcd hold exactly
 * the in-memory table (read the prefix, put what differs, delete what is
 * gone), tried at most once a second; the last error until that succeeds.
 * -EIO once the leadership is lost.
 */
int mcfs_persist_flush(struct mcfs_persist *p);

#endif
