/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer with little-endian appenders, and a bounds-checked
 * reader. Every wire format in mcfs is written with mcfs_buf and read with
 * mcfs_rd: a read past the end sets a sticky error instead of touching
 * memory, so a decoder checks once at the end.
 */
#ifndef MCFS_BUF_H
#define MCFS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mcfs_buf {
	uint8_t *data; /* owned; realloc'ed as it grows */
	size_t len;
	size_t cap;
	bool oom; /* an append failed; the contents are incomplete */
};

void mcfs_buf_init(struct mcfs_buf *b);
void mcfs_buf_fini(struct mcfs_buf *b);
/* Make room for n more bytes. 0 or -ENOMEM. */
int mcfs_buf_reserve(struct mcfs_buf *b, size_t n);
/* Drop the first n bytes (consumed input). */
void mcfs_buf_consume(struct mcfs_buf *b, size_t n);
void mcfs_buf_put(struct mcfs_buf *b, const void *p, size_t n);
void mcfs_buf_put_u8(struct mcfs_buf *b, uint8_t v);
void mcfs_buf_put_u16(struct mcfs_buf *b, uint16_t v);
void mcfs_buf_put_u32(struct mcfs_buf *b, uint32_t v);
void mcfs_buf_put_u64(struct mcfs_buf *b, uint64_t v);
/* Overwrite 4 bytes at off (which must already exist). */
void mcfs_buf_set_u32(struct mcfs_buf *b, size_t off, uint32_t v);

/* A reader over borrowed bytes. */
struct mcfs_rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool err; /* a read went past the end */
};

static inline void mcfs_rd_init(struct mcfs_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = false;
}

static inline size_t mcfs_rd_left(const struct mcfs_rd *r)
{
	return r->len - r->off;
}

uint8_t mcfs_rd_u8(struct mcfs_rd *r);
uint16_t mcfs_rd_u16(struct mcfs_rd *r);
uint32_t mcfs_rd_u32(struct mcfs_rd *r);
uint64_t mcfs_rd_u64(struct mcfs_rd *r);
/* n bytes in place (borrowed from the reader's memory), or NULL with r->err set. */
const uint8_t *mcfs_rd_bytes(struct mcfs_rd *r, size_t n);

static inline uint32_t mcfs_get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint16_t mcfs_get_u16le(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint64_t mcfs_get_u64le(const uint8_t *p)
{
	return (uint64_t)mcfs_get_u32le(p) | (uint64_t)mcfs_get_u32le(p + 4) << 32;
}

#endif
