/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The segment transport: every node serves one-sided reads and writes of
 * its registered segment to peers, and reads and writes peers' segments
 * through a client. Each request carries a grant the master signed
 * (grant.h); the server serves nothing a valid grant does not cover.
 *
 * Backends are ops tables: "tcp" (tcp.c; the wire format is seg.h) and
 * "rdma" (rdma.c, or rdma_stub.c when built with MCFS_RDMA=OFF). A server
 * or client remembers the backend that created it; every other call goes
 * through that backend.
 *
 *   server: create (bind + listen) -> addr -> start (serve) -> destroy
 *   client: create -> read / write from any number of threads -> destroy
 */
#ifndef MCFS_XPORT_H
#define MCFS_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/grant.h"

/* Connect and I/O timeout of a client, and I/O timeout of a server, by default. */
#define MCFS_XPORT_TIMEOUT_MS	     5000
#define MCFS_XPORT_SERVER_TIMEOUT_MS 10000

struct mcfs_xport_server; /* opaque; owns its socket, threads and copy of the secret */
struct mcfs_xport_client; /* opaque; a pool of connections per peer; thread-safe */

struct mcfs_xport_server_conf {
	const char *host; /* address to bind; NULL or "": 0.0.0.0 (every IPv4 interface) */
	uint16_t port;	  /* 0: an ephemeral port (tests) */
	void *seg_base;	  /* the segment, borrowed: must outlive the server */
	uint64_t seg_size;
	/* A peer silent this long in the middle of a request, or not reading a
	   response, is dropped. Idle connections are kept. 0: the default. */
	uint32_t io_timeout_ms;
	uint32_t sockbuf; /* SO_SNDBUF/SO_RCVBUF of connections; 0 leaves the kernel's autotuning */
	uint32_t poll_us; /* after a request, look for the next this long before sleeping (0) */
};

/* Tuning of a client; a NULL conf or 0 fields take the defaults. */
struct mcfs_xport_client_conf {
	uint32_t timeout_ms; /* connect, and each wait for a peer's bytes (MCFS_XPORT_TIMEOUT_MS) */
	uint32_t chunk;	     /* data bytes per request, at most 8 MiB (1 MiB) */
	uint32_t depth;	     /* requests in flight on one connection, 1-64 (8) */
	uint32_t max_idle;   /* idle connections kept per peer (16) */
	uint32_t sockbuf;    /* SO_SNDBUF/SO_RCVBUF bytes; 0 leaves the kernel's autotuning */
	uint32_t poll_us;    /* look for an answer this long before sleeping for it (0) */
};

/* What a server has done since it was created; plain counters. */
struct mcfs_xport_stats {
	uint64_t conns_accepted;
	uint64_t conns_open;
	uint64_t reads; /* requests served, whatever the status */
	uint64_t writes;
	uint64_t bytes_read; /* data bytes sent to peers */
	uint64_t bytes_written;
	uint64_t refused;      /* requests answered with an error status */
	uint64_t proto_errors; /* connections dropped for a malformed frame */
};

/*
 * A backend. The functions have the contracts of the mcfs_xport_* calls
 * below; probe() says, without logging, whether the backend can work on
 * this machine: 0, or the -errno create would fail with.
 */
struct mcfs_xport_ops {
	const char *name;
	int (*probe)(void);
	int (*server_create)(const struct mcfs_xport_server_conf *c,
			     struct mcfs_xport_server **out);
	const char *(*server_addr)(const struct mcfs_xport_server *s);
	int (*server_start)(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
			    const uint8_t *secret);
	void (*server_set_identity)(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
				    const uint8_t *secret);
	void (*server_stats)(const struct mcfs_xport_server *s, struct mcfs_xport_stats *st);
	void (*server_destroy)(struct mcfs_xport_server *s);
	int (*client_create)(const struct mcfs_xport_client_conf *c,
			     struct mcfs_xport_client **out);
	void (*client_destroy)(struct mcfs_xport_client *c);
	int (*read)(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		    uint64_t off, void *buf, size_t len);
	int (*write)(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		     uint64_t off, const void *buf, size_t len);
};

extern const struct mcfs_xport_ops mcfs_xport_tcp;
/*
 * Built against libibverbs when MCFS_RDMA=ON: it detects devices (-ENODEV
 * "No RDMA devices were detected", -ENOSYS without kernel support) but has
 * no data path yet, so creating a server or client fails with -ENOTSUP
 * even where devices exist. With MCFS_RDMA=OFF every call is -ENOTSUP.
 */
extern const struct mcfs_xport_ops mcfs_xport_rdma;

/*
 * The backend called name: "tcp", "rdma", or "auto" (rdma where its probe
 * succeeds, else tcp). 0, or -EINVAL for another name. The table is static.
 */
int mcfs_xport_lookup(const char *name, const struct mcfs_xport_ops **out);

/*
 * Bind and listen, but serve nothing yet, so that the bound address is
 * known before the node says HELLO; peers that connect meanwhile wait in
 * the backlog. 0, -EINVAL (no segment, or a host that does not resolve),
 * -EADDRINUSE and other socket errors, -ENOMEM; the backend's errors
 * (-ENODEV, -ENOSYS, -ENOTSUP for rdma).
 */
int mcfs_xport_server_create(const struct mcfs_xport_ops *ops,
			     const struct mcfs_xport_server_conf *c,
			     struct mcfs_xport_server **out);

/*
 * "HOST:PORT" actually bound ("[v6]:PORT" for IPv6). For a wildcard bind the
 * host is the wildcard ("0.0.0.0"): advertise a reachable name instead.
 * The string belongs to the server and lives as long as it does.
 */
const char *mcfs_xport_server_addr(const struct mcfs_xport_server *s);

/*
 * Start serving the segment as segment seg_id of node node_id (both
 * assigned by the master at HELLO), checking grants with secret
 * (MCFS_GRANT_SECRET_LEN bytes, copied). 0, -EINVAL (no secret), -EALREADY
 * when started, -errno when a thread cannot start.
 */
int mcfs_xport_server_start(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
			    const uint8_t *secret);

/*
 * A new identity (the master changed, or the node rejoined: new secret,
 * perhaps new ids), used from the next request on; safe while serving.
 * secret is copied.
 */
void mcfs_xport_server_set_identity(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
				    const uint8_t *secret);

void mcfs_xport_server_stats(const struct mcfs_xport_server *s, struct mcfs_xport_stats *st);

/* Stop serving: close every connection, join every thread. Accepts NULL. */
void mcfs_xport_server_destroy(struct mcfs_xport_server *s);

/* conf may be NULL (defaults). 0, -EINVAL (a field out of range), -ENOMEM, backend errors. */
int mcfs_xport_client_create(const struct mcfs_xport_ops *ops,
			     const struct mcfs_xport_client_conf *conf,
			     struct mcfs_xport_client **out);

/* Close every pooled connection. No call may be in flight. Accepts NULL. */
void mcfs_xport_client_destroy(struct mcfs_xport_client *c);

/*
 * Read len bytes at byte off of the segment that grant g covers (off is
 * absolute in the segment and [off, off + len) must lie in the grant) from
 * the segment server at addr ("HOST:PORT") into buf. The bytes land in buf
 * straight from the socket. A large transfer is split into pipelined
 * requests; len 0 still asks the server, which checks the grant.
 *
 * 0 when all len bytes are in buf. Transport trouble, after which the caller
 * tries another replica: -ECONNREFUSED (nothing listens at addr),
 * -ETIMEDOUT (no connection or no bytes within the timeout), -EIO
 * (anything else: reset, a malformed reply, an address that does not
 * resolve). Refusals by the server: -EACCES (bad grant: MAC, node,
 * segment or access), -ETIMEDOUT (the grant expired), -ERANGE (bytes
 * outside the grant or the segment). -EINVAL for a bad argument, -ENOMEM.
 * After an error buf may hold part of the data.
 */
int mcfs_xport_read(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		    uint64_t off, void *buf, size_t len);

/*
 * Write len bytes of buf to byte off of the segment at addr, under grant g
 * (MCFS_GRANT_WRITE). Errors as for mcfs_xport_read(); after an error the
 * range may hold part of the data. Writing the same bytes again is safe, so
 * a failed write may simply be retried.
 */
int mcfs_xport_write(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		     uint64_t off, const void *buf, size_t len);

/*
 * Streamed reads (TCP backend only): a connection held by one reader, on
 * which it asks for ranges of a peer's segment and takes each answer's data
 * straight from the socket (recv, or splice into a pipe), in the order
 * asked. It lets a reader ask for the next range before it has consumed
 * the current one, and move the bytes once.
 *
 *   open -> ask ... -> next -> (consume n bytes of fd) -> consumed ... -> close
 *
 * A stream is used by one thread at a time.
 */
struct mcfs_xport_stream; /* opaque */

/*
 * A stream to the segment server at addr. 0, -EOPNOTSUPP (a backend
 * without streams), -EBUSY (the client has as many streams open as it
 * allows), or a connect error as for mcfs_xport_read().
 */
int mcfs_xport_stream_open(struct mcfs_xport_client *c, const char *addr,
			   struct mcfs_xport_stream **out);

/*
 * Ask for len (1 .. MCFS_SEG_IO_MAX) bytes at off under grant g; the answer
 * follows those asked before. 0, -EINVAL (too many asks unanswered, a bad
 * length), or a transport error (the stream is then useless).
 */
int mcfs_xport_stream_ask(struct mcfs_xport_stream *s, const struct mcfs_grant *g, uint64_t off,
			  uint32_t len);

/*
 * Wait for data of the oldest answer: at most want bytes of it, all of them
 * already queued on the socket, so that reading or splicing them from *fd
 * does not wait. 0 with *fd and *avail (1 .. want; less where the answer
 * ends, where the socket's receive memory holds no more, or, for a want
 * over 128 KiB, where the first 128 KiB or more are in and the rest are
 * still on their way), after which the caller takes exactly *avail bytes from *fd
 * and calls mcfs_xport_stream_consumed(). The server's refusal of the ask
 * (-EACCES, -ETIMEDOUT, -ERANGE: the stream stays usable) or a transport
 * error (-ETIMEDOUT, -EIO, -EINVAL when nothing was asked).
 */
int mcfs_xport_stream_next(struct mcfs_xport_stream *s, uint32_t want, int *fd, uint32_t *avail);

/* The caller took n bytes from the fd that mcfs_xport_stream_next() gave. */
void mcfs_xport_stream_consumed(struct mcfs_xport_stream *s, uint32_t n);

/*
 * End a stream. Its connection goes back to the pool when reuse is set and
 * every answer was consumed, else it is closed. Accepts NULL.
 */
void mcfs_xport_stream_close(struct mcfs_xport_stream *s, bool reuse);

#endif
