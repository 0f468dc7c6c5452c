// SPDX-License-Identifier: Apache-2.0
/*
 * Frame headers: parse with every field checked, write with a length patched
 * in once the payload is known.
 */
#include "transport/frame.h"

#include <errno.h>

int mcfs_frame_parse(const uint8_t *buf, size_t len, struct mcfs_frame_hdr *h)
{
	if (len < MCFS_FRAME_HDR)
		return -EAGAIN;
	if (mcfs_get_u32le(buf) != MCFS_FRAME_MAGIC)
		return -EPROTO;
	h->version = buf[4];
	h->flags = buf[5];
	h->type = mcfs_get_u16le(buf + 6);
	h->len = mcfs_get_u32le(buf + 8);
	h->req_id = mcfs_get_u64le(buf + 16);
	if (h->version != MCFS_FRAME_VERSION || mcfs_get_u32le(buf + 12) != 0 ||
	    (h->flags & ~MCFS_FRAME_RESP))
		return -EPROTO;
	if (h->len > MCFS_FRAME_MAX)
		return -EMSGSIZE;
	return 0;
}

size_t mcfs_frame_begin(struct mcfs_buf *b, uint16_t type, uint8_t flags, uint64_t req_id)
{
	size_t off = b->len;

	mcfs_buf_put_u32(b, MCFS_FRAME_MAGIC);
	mcfs_buf_put_u8(b, MCFS_FRAME_VERSION);
	mcfs_buf_put_u8(b, flags);
	mcfs_buf_put_u16(b, type);
	mcfs_buf_put_u32(b, 0);
	mcfs_buf_put_u32(b, 0);
	mcfs_buf_put_u64(b, req_id);
	return off;
}

int mcfs_frame_finish(struct mcfs_buf *b, size_t hdr_off)
{
	size_t len;

	if (b->oom)
		return -ENOMEM;
	len = b->len - hdr_off - MCFS_FRAME_HDR;
	if (len > MCFS_FRAME_MAX)
		return -EMSGSIZE;
	mcfs_buf_set_u32(b, hdr_off + 8, (uint32_t)len);
	return 0;
}
