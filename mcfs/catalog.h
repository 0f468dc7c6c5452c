/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's catalog: a record (meta/proto.h, "Catalog records") of every
 * published file this node holds a replica of, kept current by the master
 * (SYNC, PUT_END) and sent back to a master that restarted or a new leader
 * (REPORT), which rebuilds its tables from the catalogs of all nodes.
 *
 * Thread-safe.
 */
#ifndef MCFS_CATALOG_H
#define MCFS_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct mcfs_catalog;

int mcfs_catalog_create(struct mcfs_catalog **out);
void mcfs_catalog_destroy(struct mcfs_catalog *c);

/*
 * Apply a list of records: FILE replaces what is held for its inode unless
 * that is newer; DROP forgets it unless it is newer. 0, -EBADMSG (the
 * records before the bad one are applied), -ENOMEM.
 */
int mcfs_catalog_apply(struct mcfs_catalog *c, const uint8_t *p, size_t len);

/*
 * Hand the whole catalog to send() in pieces of at most max bytes (whole
 * records, count of them). Stops at the first non-zero return of send and
 * returns it.
 */
int mcfs_catalog_report(struct mcfs_catalog *c,
			int (*send)(void *arg, const uint8_t *p, size_t len, uint32_t count),
			void *arg, size_t max);

/* Forget every record (what they describe is gone). */
void mcfs_catalog_clear(struct mcfs_catalog *c);

/* Records held. */
size_t mcfs_catalog_count(struct mcfs_catalog *c);

#endif
