// SPDX-License-Identifier: Apache-2.0
/*
 * The DRAM segment (see dram.h): mmap with MAP_POPULATE, transparent huge
 * pages where the kernel gives them, and a range check on every access.
 */
#include "tiers/dram.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"

struct mcfs_seg {
	uint8_t *base;
	uint64_t size;
};

int mcfs_seg_open(uint64_t size, struct mcfs_seg **out)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct mcfs_seg *s;

	if (!size)
		return -EINVAL;
	size = (size + page - 1) / page * page;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->base == MAP_FAILED)
		goto out_free;
	madvise(s->base, size, MADV_HUGEPAGE);
	/* Fault it in now: MAP_POPULATE after madvise so huge pages are used. */
	if (madvise(s->base, size, MADV_POPULATE_WRITE)) {
		for (uint64_t off = 0; off < size; off += page)
			s->base[off] = 0;
	}
	s->size = size;
	*out = s;
	return 0;
out_free:
	mcfs_err("cannot map a %llu-byte segment: %m", (unsigned long long)size);
	free(s);
	return -ENOMEM;
}

void mcfs_seg_close(struct mcfs_seg *s)
{
	if (!s)
		return;
	munmap(s->base, s->size);
	free(s);
}

uint64_t mcfs_seg_size(const struct mcfs_seg *s)
{
	return s->size;
}

void *mcfs_seg_ptr(struct mcfs_seg *s, uint64_t off, uint64_t len)
{
	if (off > s->size || len > s->size - off)
		return NULL;
	return s->base + off;
}
