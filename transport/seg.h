/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire format of segment requests: one-sided reads and writes of a
 * granted range of a peer's segment, over the frame format of frame.h.
 *
 * A request is one frame of type MCFS_SEG_READ or MCFS_SEG_WRITE whose
 * payload starts with a fixed 64-byte head:
 *
 *   u64 grant.node_id    the grant, as the master signed it (grant.h)
 *   u32 grant.seg_id
 *   u32 grant.access     MCFS_GRANT_READ / MCFS_GRANT_WRITE (< 256)
 *   u64 grant.offset
 *   u64 grant.len
 *   u64 grant.expiry_ms
 *   u64 grant.mac
 *   u64 off              first byte wanted, absolute in the segment
 *   u32 len              bytes wanted, at most MCFS_SEG_IO_MAX
 *   u32 flags            must be 0
 *
 * A WRITE carries exactly len data bytes after the head (frame length
 * 64 + len); a READ carries nothing else (frame length 64).
 *
 * The response is a frame of the same type with MCFS_FRAME_RESP set and the
 * request's req_id, whose payload is an 8-byte head
 *
 *   i32 status           0 or a negative Linux errno
 *   u32 reserved         must be 0
 *
 * followed, for a READ whose status is 0, by exactly len data bytes. Errors
 * carry no data: -EACCES (bad MAC, wrong node, segment or access), -ETIMEDOUT
 * (the grant expired), -ERANGE (bytes outside the grant or the segment),
 * -EINVAL (a malformed head), -EOPNOTSUPP (a frame type the server does not
 * know; its payload is skipped). Responses come in request order, so a peer
 * may pipeline requests on one connection.
 *
 * There is no epoch in the response: a segment server knows no master
 * epoch, and a grant of a previous master fails its MAC check (-EACCES)
 * since every master has its own secret.
 */
#ifndef MCFS_SEG_H
#define MCFS_SEG_H

#include <stddef.h>
#include <stdint.h>

#include "transport/frame.h"
#include "transport/grant.h"

enum mcfs_seg_type {
	MCFS_SEG_READ = 100,
	MCFS_SEG_WRITE = 101,
};

#define MCFS_SEG_REQ_HEAD  64 /* payload head of a request */
#define MCFS_SEG_RESP_HEAD 8  /* payload head of a response */
/* Frame header and head together, the bytes to buffer before any data. */
#define MCFS_SEG_REQ_BYTES  (MCFS_FRAME_HDR + MCFS_SEG_REQ_HEAD)
#define MCFS_SEG_RESP_BYTES (MCFS_FRAME_HDR + MCFS_SEG_RESP_HEAD)
/* Most data bytes in one request; larger transfers are split into several. */
#define MCFS_SEG_IO_MAX (8u << 20)

_Static_assert(MCFS_SEG_IO_MAX + MCFS_SEG_REQ_HEAD <= MCFS_FRAME_MAX,
	       "a whole segment request must fit in one frame");

struct mcfs_seg_req {
	struct mcfs_grant grant;
	uint64_t off; /* absolute in the segment */
	uint32_t len;
};

/*
 * Write the frame header and head of a request into out (MCFS_SEG_REQ_BYTES
 * bytes). For MCFS_SEG_WRITE the frame length counts r->len data bytes,
 * which the caller sends right after. r->len must not exceed MCFS_SEG_IO_MAX.
 */
void mcfs_seg_req_encode(uint8_t *out, uint16_t type, uint64_t req_id,
			 const struct mcfs_seg_req *r);

/*
 * Decode the head (MCFS_SEG_REQ_HEAD bytes) of a request whose frame header
 * h was parsed by mcfs_frame_parse(). 0, or -EINVAL when the frame is not a
 * request of a segment type, the frame length does not match len, len is
 * over MCFS_SEG_IO_MAX, or access or flags hold stray bits.
 */
int mcfs_seg_req_decode(const struct mcfs_frame_hdr *h, const uint8_t *head,
			struct mcfs_seg_req *r);

/*
 * Write the frame header and head of a response into out
 * (MCFS_SEG_RESP_BYTES bytes); data_len data bytes follow it (0 unless a
 * successful READ).
 */
void mcfs_seg_resp_encode(uint8_t *out, uint16_t type, uint64_t req_id, int32_t status,
			  uint32_t data_len);

/*
 * Check the MCFS_SEG_RESP_BYTES bytes at in: the response to a request of
 * type with req_id that asked for data_len bytes of data back (0 for a
 * WRITE). 0 with *status set (negative status: no data follows), or -EPROTO
 * for anything else: a bad header, a request, another type or req_id, a
 * positive status, a length that fits neither the status nor data_len.
 */
int mcfs_seg_resp_decode(const uint8_t *in, uint16_t type, uint64_t req_id, uint32_t data_len,
			 int32_t *status);

#endif
