/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Framing of messages on a byte stream. Every message, metadata RPC or
 * segment request, travels as a 24-byte little-endian header and a payload:
 *
 *   u32 magic    "MCFS" (0x5346434d)
 *   u8  version  MCFS_FRAME_VERSION
 *   u8  flags    MCFS_FRAME_RESP on responses
 *   u16 type     message type (meta/proto.h)
 *   u32 len      payload bytes that follow
 *   u32 reserved must be 0
 *   u64 req_id   chosen by the requester, echoed in the response
 *
 * Requests may be pipelined: a peer sends several before reading replies and
 * matches replies by req_id.
 */
#ifndef MCFS_FRAME_H
#define MCFS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MCFS_FRAME_MAGIC   0x5346434du
#define MCFS_FRAME_VERSION 1
#define MCFS_FRAME_HDR	   24
/* Largest payload accepted; anything bigger is a protocol error. */
#define MCFS_FRAME_MAX	(16u << 20)
#define MCFS_FRAME_RESP 0x01

struct mcfs_frame_hdr {
	uint8_t version;
	uint8_t flags;
	uint16_t type;
	uint32_t len;
	uint64_t req_id;
};

/*
 * Parse the header at the start of buf (len bytes available).
 * Returns 0 with *h filled, -EAGAIN when fewer than MCFS_FRAME_HDR bytes are
 * there, -EPROTO for a bad magic, version or reserved field, -EMSGSIZE for a
 * payload longer than MCFS_FRAME_MAX. The caller has a whole frame once
 * MCFS_FRAME_HDR + h->len bytes are buffered.
 */
int mcfs_frame_parse(const uint8_t *buf, size_t len, struct mcfs_frame_hdr *h);

/*
 * Append a header to b with len 0 and return its offset; after the payload
 * is appended, mcfs_frame_finish() writes the length.
 */
size_t mcfs_frame_begin(struct mcfs_buf *b, uint16_t type, uint8_t flags, uint64_t req_id);
/* 0, or -EMSGSIZE when the payload grew past MCFS_FRAME_MAX, -ENOMEM when b ran out. */
int mcfs_frame_finish(struct mcfs_buf *b, size_t hdr_off);

#endif
