// SPDX-License-Identifier: Apache-2.0
/*
 * Growable buffers and the bounds-checked reader (see buf.h).
 */
#include "common/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void mcfs_buf_init(struct mcfs_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void mcfs_buf_fini(struct mcfs_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int mcfs_buf_reserve(struct mcfs_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->cap - b->len >= n)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2)
			goto out_oom;
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (!p)
		goto out_oom;
	b->data = p;
	b->cap = cap;
	return 0;
out_oom:
	b->oom = true;
	return -ENOMEM;
}

void mcfs_buf_consume(struct mcfs_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void mcfs_buf_put(struct mcfs_buf *b, const void *p, size_t n)
{
	if (!n || mcfs_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void mcfs_buf_put_u8(struct mcfs_buf *b, uint8_t v)
{
	mcfs_buf_put(b, &v, 1);
}

void mcfs_buf_put_u16(struct mcfs_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	mcfs_buf_put(b, x, 2);
}

void mcfs_buf_put_u32(struct mcfs_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	mcfs_buf_put(b, x, 4);
}

void mcfs_buf_put_u64(struct mcfs_buf *b, uint64_t v)
{
	mcfs_buf_put_u32(b, (uint32_t)v);
	mcfs_buf_put_u32(b, (uint32_t)(v >> 32));
}

void mcfs_buf_set_u32(struct mcfs_buf *b, size_t off, uint32_t v)
{
	if (off + 4 > b->len)
		return;
	b->data[off] = (uint8_t)v;
	b->data[off + 1] = (uint8_t)(v >> 8);
	b->data[off + 2] = (uint8_t)(v >> 16);
	b->data[off + 3] = (uint8_t)(v >> 24);
}

const uint8_t *mcfs_rd_bytes(struct mcfs_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->off) {
		r->err = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t mcfs_rd_u8(struct mcfs_rd *r)
{
	const uint8_t *p = mcfs_rd_bytes(r, 1);

	return p ? p[0] : 0;
}

uint16_t mcfs_rd_u16(struct mcfs_rd *r)
{
	const uint8_t *p = mcfs_rd_bytes(r, 2);

	return p ? mcfs_get_u16le(p) : 0;
}

uint32_t mcfs_rd_u32(struct mcfs_rd *r)
{
	const uint8_t *p = mcfs_rd_bytes(r, 4);

	return p ? mcfs_get_u32le(p) : 0;
}

uint64_t mcfs_rd_u64(struct mcfs_rd *r)
{
	const uint8_t *p = mcfs_rd_bytes(r, 8);

	return p ? mcfs_get_u64le(p) : 0;
}
