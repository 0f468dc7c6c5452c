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
 */
#ifndef MCFS_PERSIST_H
#define MCFS_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#define MCFS_PERSIST_INODE 1 /* key: ino; value: an MCFS_REC_DIR/LINK record */
#define MCFS_PERSIST_META  2 /* key: MCFS_META_*; value: u64 */
#define MCFS_PERSIST_NODE  3 /* key: hash of the name; value: a node's name (it reports) */

#define MCFS_META_INO_HWM     1 /* no inode number at or above it was handed out */
#define MCFS_META_VERSION_HWM 2 /* likewise for object versions */
#define MCFS_META_EPOCH	      3 /* the last epoch a master of this store served */

struct mcfs_persist;

/* Open (creating) the store in dir. 0, -EBUSY when another master holds it, or -errno. */
int mcfs_persist_open(const char *dir, struct mcfs_persist **out);
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

/* Record (replacing) or delete one entry. 0 or -errno (the store is then unusable). */
int mcfs_persist_put(struct mcfs_persist *p, uint8_t kind, uint64_t key, const void *val,
		     size_t len);
int mcfs_persist_del(struct mcfs_persist *p, uint8_t kind, uint64_t key);
int mcfs_persist_put_u64(struct mcfs_persist *p, uint64_t key, uint64_t v);

/* fdatasync what was appended since the last flush. 0 or -errno. */
int mcfs_persist_flush(struct mcfs_persist *p);

#endif
