/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DRAM tier: one anonymous mapping that a node contributes to the pool
 * as its segment. The memory is faulted in when the segment is opened, since
 * first-touch page faults on these machines cost more than the copy itself.
 */
#ifndef MCFS_DRAM_H
#define MCFS_DRAM_H

#include <stddef.h>
#include <stdint.h>

struct mcfs_seg;

/*
 * Map and pre-fault size bytes (a multiple of the page size; rounded up).
 * 0, -EINVAL (size 0), -ENOMEM.
 */
int mcfs_seg_open(uint64_t size, struct mcfs_seg **out);
void mcfs_seg_close(struct mcfs_seg *s);

uint64_t mcfs_seg_size(const struct mcfs_seg *s);

/*
 * The bytes [off, off + len) of the segment, or NULL when the range is not
 * inside it. The memory belongs to the segment and stays valid until
 * mcfs_seg_close(); what may be read or written there is what the master
 * granted.
 */
void *mcfs_seg_ptr(struct mcfs_seg *s, uint64_t off, uint64_t len);

#endif
