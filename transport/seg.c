// SPDX-License-Identifier: Apache-2.0
/*
 * Segment request and response heads (see seg.h). They are fixed-size, so
 * both sides build and check them in small buffers of their own and move
 * the data bytes separately, straight between the socket and the memory
 * they belong in.
 */
#include "transport/seg.h"

#include <errno.h>

#include "common/buf.h"

/* A writer over a caller's fixed buffer: it is big enough, so never reallocated. */
static struct mcfs_buf fixed_buf(uint8_t *p, size_t cap)
{
	return (struct mcfs_buf){.data = p, .cap = cap};
}

void mcfs_seg_req_encode(uint8_t *out, uint16_t type, uint64_t req_id, const struct mcfs_seg_req *r)
{
	struct mcfs_buf b = fixed_buf(out, MCFS_SEG_REQ_BYTES);
	uint32_t flen = MCFS_SEG_REQ_HEAD + (type == MCFS_SEG_WRITE ? r->len : 0);

	mcfs_frame_begin(&b, type, 0, req_id);
	mcfs_buf_set_u32(&b, 8, flen);
	mcfs_buf_put_u64(&b, r->grant.node_id);
	mcfs_buf_put_u32(&b, r->grant.seg_id);
	mcfs_buf_put_u32(&b, r->grant.access);
	mcfs_buf_put_u64(&b, r->grant.offset);
	mcfs_buf_put_u64(&b, r->grant.len);
	mcfs_buf_put_u64(&b, r->grant.expiry_ms);
	mcfs_buf_put_u64(&b, r->grant.mac);
	mcfs_buf_put_u64(&b, r->off);
	mcfs_buf_put_u32(&b, r->len);
	mcfs_buf_put_u32(&b, 0);
}

int mcfs_seg_req_decode(const struct mcfs_frame_hdr *h, const uint8_t *head, struct mcfs_seg_req *r)
{
	struct mcfs_rd rd;
	uint32_t access, flags;

	if ((h->type != MCFS_SEG_READ && h->type != MCFS_SEG_WRITE) || (h->flags & MCFS_FRAME_RESP))
		return -EINVAL;
	mcfs_rd_init(&rd, head, MCFS_SEG_REQ_HEAD);
	r->grant.node_id = mcfs_rd_u64(&rd);
	r->grant.seg_id = mcfs_rd_u32(&rd);
	access = mcfs_rd_u32(&rd);
	r->grant.offset = mcfs_rd_u64(&rd);
	r->grant.len = mcfs_rd_u64(&rd);
	r->grant.expiry_ms = mcfs_rd_u64(&rd);
	r->grant.mac = mcfs_rd_u64(&rd);
	r->off = mcfs_rd_u64(&rd);
	r->len = mcfs_rd_u32(&rd);
	flags = mcfs_rd_u32(&rd);
	r->grant.access = (uint8_t)access;
	if (access > UINT8_MAX || flags || r->len > MCFS_SEG_IO_MAX)
		return -EINVAL;
	if (h->len != MCFS_SEG_REQ_HEAD + (h->type == MCFS_SEG_WRITE ? r->len : 0))
		return -EINVAL;
	return 0;
}

void mcfs_seg_resp_encode(uint8_t *out, uint16_t type, uint64_t req_id, int32_t status,
			  uint32_t data_len)
{
	struct mcfs_buf b = fixed_buf(out, MCFS_SEG_RESP_BYTES);

	mcfs_frame_begin(&b, type, MCFS_FRAME_RESP, req_id);
	mcfs_buf_set_u32(&b, 8, MCFS_SEG_RESP_HEAD + data_len);
	mcfs_buf_put_u32(&b, (uint32_t)status);
	mcfs_buf_put_u32(&b, 0);
}

int mcfs_seg_resp_decode(const uint8_t *in, uint16_t type, uint64_t req_id, uint32_t data_len,
			 int32_t *status)
{
	struct mcfs_frame_hdr h;
	int32_t st;

	if (mcfs_frame_parse(in, MCFS_SEG_RESP_BYTES, &h) || !(h.flags & MCFS_FRAME_RESP) ||
	    h.type != type || h.req_id != req_id)
		return -EPROTO;
	st = (int32_t)mcfs_get_u32le(in + MCFS_FRAME_HDR);
	if (st > 0 || mcfs_get_u32le(in + MCFS_FRAME_HDR + 4) != 0)
		return -EPROTO;
	if (h.len != MCFS_SEG_RESP_HEAD + (st == 0 ? data_len : 0))
		return -EPROTO;
	*status = st;
	return 0;
}
