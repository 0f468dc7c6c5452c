/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The segment allocator: hands out contiguous ranges of one node's segment.
 * O(1) allocation and free with segregated free lists indexed by a two-level
 * bitmap (TLSF / Mooncake's "offset allocator" family): sizes map to bins
 * on a floating-point-like scale so that the few fixed sizes of KV blocks
 * land in exact bins and freed blocks are reused without fragmentation.
 * Neighbouring free ranges coalesce on free.
 *
 * It keeps nothing per live range but one bit per page: the caller names a
 * range by its offset and length when it frees or resizes it (the master
 * keeps them in its replica records anyway). So a range must be freed
 * exactly once, as the extent it was handed out as (or resized to); a free
 * of space that is not live is refused, but freeing another owner's live
 * range cannot be told from freeing one's own.
 *
 * The allocator manages numbers only (offsets within [0, size)); it never
 * touches the segment's memory, so the master can run it for remote nodes.
 * Not thread-safe: the owner serialises calls.
 */
#ifndef MCFS_ALLOC_H
#define MCFS_ALLOC_H

#include <stdint.h>

/* Every range starts and ends on this boundary (sizes are rounded up). */
#define MCFS_ALLOC_ALIGN 4096u

struct mcfs_alloc;

struct mcfs_alloc_stats {
	uint64_t size;		 /* managed bytes (rounded down to MCFS_ALLOC_ALIGN) */
	uint64_t used;		 /* bytes in live ranges */
	uint64_t free;		 /* size - used */
	uint64_t largest_free;	 /* the largest single free range */
	uint32_t nr_allocs;	 /* live ranges */
	uint32_t nr_free_ranges; /* free ranges (fragmentation) */
};

/* A live range: offset and length in bytes. */
struct mcfs_extent {
	uint64_t offset;
	uint64_t len;
};

/*
 * Create an allocator over size bytes that can hold up to max_allocs live
 * ranges at once. 0, -EINVAL (size below MCFS_ALLOC_ALIGN, max_allocs 0),
 * -ENOMEM.
 */
int mcfs_alloc_create(uint64_t size, uint32_t max_allocs, struct mcfs_alloc **out);
void mcfs_alloc_destroy(struct mcfs_alloc *a);

/*
 * Allocate len bytes (len > 0, rounded up to MCFS_ALLOC_ALIGN) into *ext.
 * 0, -EINVAL for len 0, -ENOSPC when no free range is large enough or
 * max_allocs ranges are live, -ENOMEM.
 */
int mcfs_alloc_get(struct mcfs_alloc *a, uint64_t len, struct mcfs_extent *ext);

/*
 * Mark [offset, offset + len) allocated, as if mcfs_alloc_get() had returned
 * it: for rebuilding a segment's allocator from the ranges its node reports
 * live (master recovery) before any other range is handed out. offset and
 * len are multiples of MCFS_ALLOC_ALIGN, len > 0, and the range lies within
 * the managed size. *ext gets the range, to free or resize exactly as one
 * from mcfs_alloc_get(). Neighbouring free space stays free and coalesces as
 * usual.
 *
 * 0; else, checked in this order and with nothing changed: -EINVAL
 * (misaligned, zero, or past the end), -EEXIST (some part of the range is
 * already allocated), -ENOSPC (max_allocs ranges are live), -ENOMEM.
 *
 * Cost: finding the free range that holds the offset scans the page bitmap
 * back from it to the nearest live page: cheap when ranges are reserved in
 * offset order (each scan stops at the previous one) or the segment is
 * well used; at most 8 bytes read per 256 KiB of free space before it.
 */
int mcfs_alloc_reserve(struct mcfs_alloc *a, uint64_t offset, uint64_t len,
		       struct mcfs_extent *ext);

/*
 * Free a live range: *ext as mcfs_alloc_get(), mcfs_alloc_reserve() or
 * mcfs_alloc_resize() left it. 0; -EINVAL, with nothing changed, when some
 * part of it is not live (a double free) or it is not a valid range;
 * -ENOMEM when the free-range bookkeeping cannot grow (the range then
 * stays allocated).
 */
int mcfs_alloc_put(struct mcfs_alloc *a, const struct mcfs_extent *ext);

/*
 * Resize a live range in place to new_len (> 0, rounded up): shrinking
 * returns the tail to the free lists; growing succeeds only when the range
 * right after it is free and large enough. The offset never changes.
 * 0 with ext->len updated, -EAGAIN when it cannot grow in place, -EINVAL for
 * a range that is not live or new_len 0, -ENOMEM.
 */
int mcfs_alloc_resize(struct mcfs_alloc *a, struct mcfs_extent *ext, uint64_t new_len);

void mcfs_alloc_stats(const struct mcfs_alloc *a, struct mcfs_alloc_stats *st);

#endif
