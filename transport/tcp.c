// SPDX-License-Identifier: Apache-2.0
/*
 * The TCP segment transport: a segment server and its client, speaking the
 * requests of seg.h.
 *
 * Server: one thread accepts, and each connection gets a thread of its own.
 * Peers are few (one connection per peer per concurrent reader), so a
 * thread per connection costs little, keeps the code a straight line, and
 * guarantees that a slow or stuck peer holds up nobody but itself. Data
 * bytes move once: a read is one sendmsg() of the response head and the
 * segment memory itself; a write is received straight into the segment,
 * after the grant has been checked. A refused write's data is read into a
 * small scratch buffer and dropped, so the connection stays in step.
 *
 * A connection is waited on without a deadline between requests (pooled
 * connections idle), but once a request has begun, every wait for the peer
 * (its remaining bytes, room to send the response) is bounded by the I/O
 * timeout, after which the connection is dropped.
 *
 * Client: a pool of idle connections per peer address. A call takes one
 * connection for itself (so concurrent callers never share one), splits the
 * transfer into requests of conf.chunk bytes, and keeps up to conf.depth of
 * them in flight: a request goes out as soon as an earlier response is in,
 * so the server never waits for the next request. Read data is received
 * straight into the caller's buffer and write data sent straight from it.
 * A connection that fails is closed, never pooled; one taken from the pool
 * that turns out dead before it answered anything (the server restarted) is
 * replaced by a fresh one once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uthash.h>
#include <utlist.h>

#include "common/log.h"
#include "common/util.h"
#include "transport/seg.h"
#include "transport/xport_i.h"

/* Connections served at once; more are refused (closed at once). */
#define MAX_CONNS   256
#define CONN_STACK  (256u << 10)
#define DRAIN_CHUNK (64u << 10)
/* After running out of file descriptors, accept again this much later. */
#define ACCEPT_PAUSE_MS 100
/* At most WARN_BURST warnings about peers every WARN_WINDOW_MS. */
#define WARN_BURST     10
#define WARN_WINDOW_MS 10000

#define DEF_CHUNK    (1u << 20)
#define DEF_DEPTH    8
#define MAX_DEPTH    64
#define DEF_MAX_IDLE 16
#define ADDR_MAX     (INET6_ADDRSTRLEN + 16)

/* ---- helpers shared by both sides ---- */

struct ratelimit {
	pthread_mutex_t lock; /* protects the fields below */
	uint64_t start_ms;
	unsigned n;
	unsigned long dropped;
};

static void rl_warn(struct ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rl_warn(struct ratelimit *rl, const char *fmt, ...)
{
	uint64_t now = mcfs_now_ms();
	unsigned long dropped = 0;
	char msg[256];
	va_list ap;
	bool ok;

	pthread_mutex_lock(&rl->lock);
	if (!rl->start_ms || now - rl->start_ms >= WARN_WINDOW_MS) {
		dropped = rl->dropped;
		rl->dropped = 0;
		rl->n = 0;
		rl->start_ms = now;
	}
	ok = rl->n < WARN_BURST;
	if (ok)
		rl->n++;
	else
		rl->dropped++;
	pthread_mutex_unlock(&rl->lock);
	if (dropped)
		mcfs_warn("segment server: %lu more warnings suppressed", dropped);
	if (!ok)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mcfs_warn("segment server: %s", msg);
}

static void set_timeouts(int fd, uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void tune_socket(int fd, uint32_t timeout_ms, uint32_t sockbuf)
{
	int one = 1, sz = (int)sockbuf;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (sockbuf) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	set_timeouts(fd, timeout_ms);
}

/*
 * Receive exactly len bytes. 0; -ENOTCONN when the peer closed before the
 * first byte, -ECONNRESET when it closed after some; -EAGAIN when the
 * receive timeout passed; another -errno.
 */
static int recv_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = recv(fd, (uint8_t *)buf + got, len - got, MSG_WAITALL);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return got ? -ECONNRESET : -ENOTCONN;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	return 0;
}

/* Send all of iov[0..n). iov is consumed. 0, -EAGAIN on timeout, -errno. */
static int send_iov(int fd, struct iovec *iov, int n)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	ssize_t sent;

	while (mh.msg_iovlen) {
		sent = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		while (mh.msg_iovlen && (size_t)sent >= mh.msg_iov->iov_len) {
			sent -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + sent;
			mh.msg_iov->iov_len -= (size_t)sent;
		}
	}
	return 0;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, outsz, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, outsz, "%s:%u", host, ntohs(s4->sin_port));
	}
}

/* ---- server ---- */

struct tcp_server;

struct conn {
	struct tcp_server *srv;
	int fd; /* closed by whoever joins the thread */
	pthread_t thread;
	atomic_bool done; /* the thread has returned: join it */
	uint8_t *scratch; /* DRAIN_CHUNK bytes for refused payloads; allocated on first use */
	char peer[ADDR_MAX];
	struct conn *prev, *next;
};

struct tcp_server {
	struct mcfs_xport_server base;
	int lfd;
	int wake[2]; /* pipe to the acceptor: stop, or a connection finished */
	uint8_t *seg;
	uint64_t seg_size;
	uint32_t io_timeout_ms;
	uint32_t sockbuf;
	uint64_t poll_ns;
	char addr[ADDR_MAX];
	bool started;
	atomic_bool stopping;
	pthread_t acceptor;

	/* The connections; touched only by the acceptor, or by destroy once it is joined. */
	struct conn *conns;
	unsigned nconns;

	pthread_mutex_t id_lock; /* protects node_id, seg_id and secret */
	uint64_t node_id;
	uint32_t seg_id;
	uint8_t secret[MCFS_GRANT_SECRET_LEN];

	struct ratelimit rl;
	atomic_uint_fast64_t st_accepted, st_open, st_reads, st_writes, st_bytes_read,
	    st_bytes_written, st_refused, st_proto;
};

static void count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void wake_acceptor(struct tcp_server *s)
{
	ssize_t n = write(s->wake[1], "w", 1);

	(void)n; /* a full pipe already wakes it */
}

/* May the request be served? 0 or the status to answer with. */
static int check_req(struct tcp_server *s, const struct mcfs_seg_req *r, uint8_t access)
{
	uint64_t now = mcfs_grant_now_ms();
	int ret;

	pthread_mutex_lock(&s->id_lock);
	ret = mcfs_grant_check(&r->grant, s->secret, s->node_id, s->seg_id, access, r->off, r->len,
			       now);
	pthread_mutex_unlock(&s->id_lock);
	/* A grant is the master's word, but the segment's bounds are ours to keep. */
	if (!ret && (r->off > s->seg_size || r->len > s->seg_size - r->off))
		ret = -ERANGE;
	return ret;
}

/* Read and drop len payload bytes that will not be used. 0 or -errno. */
static int drain(struct conn *c, uint64_t len)
{
	size_t n;
	int ret;

	if (!c->scratch) {
		c->scratch = malloc(DRAIN_CHUNK);
		if (!c->scratch)
			return -ENOMEM;
	}
	while (len) {
		n = len < DRAIN_CHUNK ? (size_t)len : DRAIN_CHUNK;
		ret = recv_full(c->fd, c->scratch, n);
		if (ret)
			return ret;
		len -= n;
	}
	return 0;
}

static int respond(struct conn *c, uint16_t type, uint64_t req_id, int32_t status, const void *data,
		   uint32_t len)
{
	uint8_t head[MCFS_SEG_RESP_BYTES];
	struct iovec iov[2] = {{head, sizeof(head)}, {(void *)data, len}};

	mcfs_seg_resp_encode(head, type, req_id, status, len);
	if (status)
		count(&c->srv->st_refused, 1);
	return send_iov(c->fd, iov, len ? 2 : 1);
}

/*
 * Receive the next frame header. Between requests a connection may idle for
 * as long as it likes (it is pooled), so a timeout before its first byte
 * only means "still idle"; destroy's shutdown() ends the wait.
 */
static int recv_header(struct conn *c, uint8_t *hdr)
{
	size_t got = 0;
	ssize_t n;

	while (got < MCFS_FRAME_HDR) {
		n = recv(c->fd, hdr + got, MCFS_FRAME_HDR - got, MSG_WAITALL);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return got ? -ECONNRESET : -ENOTCONN;
		if (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) && !got))
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	return 0;
}

/*
 * Serve one request. 0 to go on with the next, or -errno to close the
 * connection (the peer left, broke the protocol, or timed out).
 */
static int serve_one(struct conn *c)
{
	struct tcp_server *s = c->srv;
	uint8_t in[MCFS_SEG_REQ_BYTES];
	struct mcfs_frame_hdr h;
	struct mcfs_seg_req r;
	uint8_t access;
	int ret, st;

	mcfs_spin_readable(c->fd, s->poll_ns); /* the peer's next request comes soon, often */
	ret = recv_header(c, in);
	if (ret)
		return ret;
	ret = mcfs_frame_parse(in, MCFS_FRAME_HDR, &h);
	if (ret) {
		rl_warn(&s->rl, "%s: bad frame header (%s), closing", c->peer,
			ret == -EMSGSIZE ? "payload too long" : "magic, version or flags");
		goto out_proto;
	}
	if (h.flags & MCFS_FRAME_RESP) {
		rl_warn(&s->rl, "%s: sent a response frame, closing", c->peer);
		ret = -EPROTO;
		goto out_proto;
	}
	if (h.type != MCFS_SEG_READ && h.type != MCFS_SEG_WRITE) {
		/* Perhaps a newer peer: skip it and say so. The length is bounded by the frame limit. */
		ret = drain(c, h.len);
		return ret ? ret : respond(c, h.type, h.req_id, -EOPNOTSUPP, NULL, 0);
	}
	if (h.len < MCFS_SEG_REQ_HEAD) {
		rl_warn(&s->rl, "%s: request of %u bytes, shorter than its head, closing", c->peer,
			h.len);
		ret = -EPROTO;
		goto out_proto;
	}
	ret = recv_full(c->fd, in + MCFS_FRAME_HDR, MCFS_SEG_REQ_HEAD);
	if (ret)
		return ret;
	if (mcfs_seg_req_decode(&h, in + MCFS_FRAME_HDR, &r)) {
		mcfs_debug("segment server: %s: malformed request head", c->peer);
		ret = drain(c, h.len - MCFS_SEG_REQ_HEAD);
		return ret ? ret : respond(c, h.type, h.req_id, -EINVAL, NULL, 0);
	}

	access = h.type == MCFS_SEG_READ ? MCFS_GRANT_READ : MCFS_GRANT_WRITE;
	st = check_req(s, &r, access);
	if (st)
		mcfs_debug("segment server: %s: %s of %u bytes at %llu refused: %s", c->peer,
			   h.type == MCFS_SEG_READ ? "read" : "write", r.len,
			   (unsigned long long)r.off, strerror(-st));
	if (h.type == MCFS_SEG_READ) {
		count(&s->st_reads, 1);
		if (st)
			return respond(c, h.type, h.req_id, st, NULL, 0);
		count(&s->st_bytes_read, r.len);
		return respond(c, h.type, h.req_id, 0, s->seg + r.off, r.len);
	}
	count(&s->st_writes, 1);
	ret = st ? drain(c, r.len) : recv_full(c->fd, s->seg + r.off, r.len);
	if (ret)
		return ret;
	if (!st)
		count(&s->st_bytes_written, r.len);
	return respond(c, h.type, h.req_id, st, NULL, 0);

out_proto:
	count(&s->st_proto, 1);
	return ret;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct tcp_server *s = c->srv;
	int ret;

	do {
		ret = serve_one(c);
	} while (!ret);
	if (ret == -EAGAIN)
		rl_warn(&s->rl, "%s: no progress for %u ms, closing", c->peer, s->io_timeout_ms);
	else if (ret != -ENOTCONN && !atomic_load(&s->stopping))
		mcfs_debug("segment server: %s: closing: %s", c->peer, strerror(-ret));
	/* The peer sees the close now; the fd itself goes when the thread is joined. */
	shutdown(c->fd, SHUT_RDWR);
	atomic_store(&c->done, true);
	wake_acceptor(s);
	return NULL;
}

static void conn_free(struct tcp_server *s, struct conn *c)
{
	pthread_join(c->thread, NULL);
	DL_DELETE(s->conns, c);
	s->nconns--;
	count(&s->st_open, (uint64_t)-1);
	close(c->fd);
	free(c->scratch);
	free(c);
}

static void reap(struct tcp_server *s)
{
	struct conn *c, *tmp;

	DL_FOREACH_SAFE(s->conns, c, tmp)
	{
		if (atomic_load(&c->done))
			conn_free(s, c);
	}
}

static void conn_add(struct tcp_server *s, int fd, const struct sockaddr *sa)
{
	pthread_attr_t attr;
	struct conn *c;
	char peer[ADDR_MAX];
	int ret;

	format_addr(sa, peer, sizeof(peer));
	if (s->nconns >= MAX_CONNS) {
		rl_warn(&s->rl, "%s: already %u connections, refusing", peer, s->nconns);
		goto out_close;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out_close;
	c->srv = s;
	c->fd = fd;
	memcpy(c->peer, peer, sizeof(peer));
	tune_socket(fd, s->io_timeout_ms, s->sockbuf);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CONN_STACK);
	ret = pthread_create(&c->thread, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (ret) {
		rl_warn(&s->rl, "%s: cannot start a thread: %s", peer, strerror(ret));
		free(c);
		goto out_close;
	}
	DL_APPEND(s->conns, c);
	s->nconns++;
	count(&s->st_accepted, 1);
	count(&s->st_open, 1);
	return;

out_close:
	close(fd);
}

/* Accept every pending connection. false when out of descriptors (pause a while). */
static bool accept_all(struct tcp_server *s)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	for (;;) {
		sl = sizeof(ss);
		fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_add(s, fd, (struct sockaddr *)&ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return true;
		rl_warn(&s->rl, "accept: %s", strerror(errno));
		return false;
	}
}

static void *acceptor_main(void *arg)
{
	struct tcp_server *s = arg;
	bool paused = false;
	char sink[64];

	while (!atomic_load(&s->stopping)) {
		struct pollfd p[2] = {{.fd = s->wake[0], .events = POLLIN},
				      {.fd = s->lfd, .events = POLLIN}};
		int n = poll(p, paused ? 1 : 2, paused ? ACCEPT_PAUSE_MS : -1);

		if (n < 0 && errno != EINTR)
			break;
		paused = false;
		if (p[0].revents) {
			while (read(s->wake[0], sink, sizeof(sink)) > 0)
				;
			reap(s);
		}
		if (!atomic_load(&s->stopping) && (p[1].revents & POLLIN))
			paused = !accept_all(s);
	}
	return NULL;
}

static int listen_on(const struct mcfs_xport_server_conf *c, int *out)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	const char *host = c->host && *c->host ? c->host : "0.0.0.0";
	struct addrinfo *res, *ai;
	char port[8];
	int fd = -1, one = 1, ret;

	snprintf(port, sizeof(port), "%u", c->port);
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret) {
		mcfs_err("segment server: cannot resolve %s: %s", host, gai_strerror(ret));
		return -EINVAL;
	}
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 128))
			break;
		ret = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		mcfs_err("segment server: cannot listen on %s:%u: %s", host, c->port,
			 strerror(-ret));
		return ret;
	}
	*out = fd;
	return 0;
}

static int tcp_server_create(const struct mcfs_xport_server_conf *c, struct mcfs_xport_server **out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct tcp_server *s;
	int ret;

	if (!c->seg_base || !c->seg_size)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->seg = c->seg_base;
	s->seg_size = c->seg_size;
	s->io_timeout_ms = c->io_timeout_ms ? c->io_timeout_ms : MCFS_XPORT_SERVER_TIMEOUT_MS;
	s->sockbuf = c->sockbuf;
	s->poll_ns = (uint64_t)c->poll_us * 1000;
	pthread_mutex_init(&s->id_lock, NULL);
	pthread_mutex_init(&s->rl.lock, NULL);
	ret = listen_on(c, &s->lfd);
	if (ret)
		goto out_free;
	if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl)) {
		ret = -errno;
		goto out_close_listen;
	}
	format_addr((struct sockaddr *)&ss, s->addr, sizeof(s->addr));
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK)) {
		ret = -errno;
		goto out_close_listen;
	}
	mcfs_debug("segment server: listening on %s", s->addr);
	*out = &s->base;
	return 0;

out_close_listen:
	close(s->lfd);
out_free:
	pthread_mutex_destroy(&s->rl.lock);
	pthread_mutex_destroy(&s->id_lock);
	free(s);
	return ret;
}

static const char *tcp_server_addr(const struct mcfs_xport_server *base)
{
	return ((const struct tcp_server *)base)->addr;
}

static void tcp_server_set_identity(struct mcfs_xport_server *base, uint64_t node_id,
				    uint32_t seg_id, const uint8_t *secret)
{
	struct tcp_server *s = (struct tcp_server *)base;

	pthread_mutex_lock(&s->id_lock);
	s->node_id = node_id;
	s->seg_id = seg_id;
	memcpy(s->secret, secret, MCFS_GRANT_SECRET_LEN);
	pthread_mutex_unlock(&s->id_lock);
}

static int tcp_server_start(struct mcfs_xport_server *base, uint64_t node_id, uint32_t seg_id,
			    const uint8_t *secret)
{
	struct tcp_server *s = (struct tcp_server *)base;
	int ret;

	if (s->started)
		return -EALREADY;
	tcp_server_set_identity(base, node_id, seg_id, secret);
	ret = pthread_create(&s->acceptor, NULL, acceptor_main, s);
	if (ret) {
		mcfs_err("segment server: cannot start the accept thread: %s", strerror(ret));
		return -ret;
	}
	s->started = true;
	mcfs_info("segment server: serving %llu bytes as segment %u of node %llu on %s",
		  (unsigned long long)s->seg_size, seg_id, (unsigned long long)node_id, s->addr);
	return 0;
}

static void tcp_server_stats(const struct mcfs_xport_server *base, struct mcfs_xport_stats *st)
{
	const struct tcp_server *s = (const struct tcp_server *)base;

	st->conns_accepted = atomic_load(&s->st_accepted);
	st->conns_open = atomic_load(&s->st_open);
	st->reads = atomic_load(&s->st_reads);
	st->writes = atomic_load(&s->st_writes);
	st->bytes_read = atomic_load(&s->st_bytes_read);
	st->bytes_written = atomic_load(&s->st_bytes_written);
	st->refused = atomic_load(&s->st_refused);
	st->proto_errors = atomic_load(&s->st_proto);
}

static void tcp_server_destroy(struct mcfs_xport_server *base)
{
	struct tcp_server *s = (struct tcp_server *)base;
	struct conn *c, *tmp;

	if (s->started) {
		atomic_store(&s->stopping, true);
		wake_acceptor(s);
		pthread_join(s->acceptor, NULL);
		/* Wakes every connection thread, whatever it waits for. */
		DL_FOREACH(s->conns, c)
		{
			shutdown(c->fd, SHUT_RDWR);
		}
		DL_FOREACH_SAFE(s->conns, c, tmp)
		{
			conn_free(s, c);
		}
	}
	close(s->wake[0]);
	close(s->wake[1]);
	close(s->lfd);
	pthread_mutex_destroy(&s->rl.lock);
	pthread_mutex_destroy(&s->id_lock);
	free(s);
}

/* ---- client ---- */

struct cconn {
	int fd;
	uint64_t next_id;
	struct cconn *next;
};

struct peer {
	UT_hash_handle hh;
	struct cconn *idle; /* a stack: the most recently used first */
	unsigned nidle;
	char addr[]; /* the key */
};

struct tcp_client {
	struct mcfs_xport_client base;
	uint32_t timeout_ms, chunk, depth, max_idle, sockbuf;
	uint64_t poll_ns;
	pthread_mutex_t lock; /* protects peers and everything in them */
	struct peer *peers;
	atomic_uint nstreams; /* streams open (mcfs_xport_stream_open) */
};

static int tcp_client_create(const struct mcfs_xport_client_conf *conf,
			     struct mcfs_xport_client **out)
{
	struct mcfs_xport_client_conf d = {0};
	struct tcp_client *cl;

	if (conf)
		d = *conf;
	if (d.chunk > MCFS_SEG_IO_MAX || d.depth > MAX_DEPTH)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->timeout_ms = d.timeout_ms ? d.timeout_ms : MCFS_XPORT_TIMEOUT_MS;
	cl->chunk = d.chunk ? d.chunk : DEF_CHUNK;
	cl->depth = d.depth ? d.depth : DEF_DEPTH;
	cl->max_idle = d.max_idle ? d.max_idle : DEF_MAX_IDLE;
	cl->sockbuf = d.sockbuf;
	cl->poll_ns = (uint64_t)d.poll_us * 1000;
	pthread_mutex_init(&cl->lock, NULL);
	*out = &cl->base;
	return 0;
}

static void cconn_close(struct cconn *cn)
{
	close(cn->fd);
	free(cn);
}

static void tcp_client_destroy(struct mcfs_xport_client *base)
{
	struct tcp_client *cl = (struct tcp_client *)base;
	struct peer *p, *ptmp;
	struct cconn *cn;

	HASH_ITER(hh, cl->peers, p, ptmp)
	{
		while ((cn = p->idle)) {
			p->idle = cn->next;
			cconn_close(cn);
		}
		HASH_DEL(cl->peers, p);
		free(p);
	}
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

/* Transport errors as the caller sees them: refused, timed out, or anything else. */
static int xport_err(int err)
{
	switch (err) {
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -ENOMEM:
	case -EINVAL:
		return err;
	case -EAGAIN:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/* Connect with a deadline. 0 with *out, or -errno (-ECONNREFUSED, -ETIMEDOUT, -EINVAL, -EIO). */
static int dial(struct tcp_client *cl, const char *addr, int *out)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	char host[256], port[8];
	uint16_t portnum;
	int fd = -1, ret, err;
	socklen_t el;

	if (mcfs_parse_hostport(addr, "", host, sizeof(host), &portnum) || !*host)
		return -EINVAL;
	snprintf(port, sizeof(port), "%u", portnum);
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret) {
		mcfs_debug("segment client: cannot resolve %s: %s", host, gai_strerror(ret));
		return -EIO;
	}
	ret = -EIO;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
			ret = -errno;
			goto next;
		}
		p = (struct pollfd){.fd = fd, .events = POLLOUT};
		do {
			ret = poll(&p, 1, (int)cl->timeout_ms);
		} while (ret < 0 && errno == EINTR);
		if (ret == 0) {
			ret = -ETIMEDOUT;
			goto next;
		}
		err = 0;
		el = sizeof(err);
		if (ret < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
			ret = err ? -err : -EIO;
			goto next;
		}
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
			ret = -errno;
			goto next;
		}
		break;
	next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		mcfs_debug("segment client: cannot connect to %s: %s", addr, strerror(-ret));
		return xport_err(ret);
	}
	tune_socket(fd, cl->timeout_ms, cl->sockbuf);
	*out = fd;
	return 0;
}

/* An idle connection whose peer closed it, or sent what nobody asked for, is useless. */
static bool cconn_alive(struct cconn *cn)
{
	char b;
	ssize_t n = recv(cn->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/*
 * A connection to addr for the caller alone: an idle one from the pool
 * (*reused set) unless fresh, else a new one.
 */
static int cconn_get(struct tcp_client *cl, const char *addr, bool fresh, struct cconn **out,
		     bool *reused)
{
	struct cconn *cn = NULL;
	struct peer *p;
	int fd, ret;

	while (!fresh) {
		pthread_mutex_lock(&cl->lock);
		HASH_FIND_STR(cl->peers, addr, p);
		if (p && (cn = p->idle)) {
			p->idle = cn->next;
			p->nidle--;
		}
		pthread_mutex_unlock(&cl->lock);
		if (!cn)
			break;
		if (cconn_alive(cn)) {
			*reused = true;
			*out = cn;
			return 0;
		}
		cconn_close(cn);
		cn = NULL;
	}
	ret = dial(cl, addr, &fd);
	if (ret)
		return ret;
	cn = calloc(1, sizeof(*cn));
	if (!cn) {
		close(fd);
		return -ENOMEM;
	}
	cn->fd = fd;
	cn->next_id = 1;
	*reused = false;
	*out = cn;
	return 0;
}

/* Give a healthy connection back to the pool, or close it when the pool is full. */
static void cconn_put(struct tcp_client *cl, const char *addr, struct cconn *cn)
{
	size_t alen = strlen(addr);
	struct peer *p;

	pthread_mutex_lock(&cl->lock);
	HASH_FIND_STR(cl->peers, addr, p);
	if (!p) {
		p = calloc(1, sizeof(*p) + alen + 1);
		if (p) {
			memcpy(p->addr, addr, alen + 1);
			HASH_ADD_KEYPTR(hh, cl->peers, p->addr, alen, p);
		}
	}
	if (p && p->nidle < cl->max_idle) {
		cn->next = p->idle;
		p->idle = cn;
		p->nidle++;
		cn = NULL;
	}
	pthread_mutex_unlock(&cl->lock);
	if (cn)
		cconn_close(cn);
}

/*
 * The requests of one transfer on one connection. Returns 0 with *status
 * the server's answer (the first error of any request, 0 when all were
 * served) and the connection in step for the next call, or a transport
 * error (-errno of the socket, -EPROTO) after which the connection is
 * useless. *answered tells whether any response came at all.
 */
static int xfer(struct tcp_client *cl, struct cconn *cn, uint16_t type, const struct mcfs_grant *g,
		uint64_t off, uint8_t *buf, size_t len, int *status, bool *answered)
{
	size_t chunk = cl->chunk;
	size_t nreq = len ? (len + chunk - 1) / chunk : 1;
	uint64_t first_id = cn->next_id;
	uint8_t head[MCFS_SEG_REQ_BYTES], resp[MCFS_SEG_RESP_BYTES];
	size_t sent = 0, done = 0, pos, clen;
	struct mcfs_seg_req r = {.grant = *g};
	int32_t st;
	int ret;

	cn->next_id += nreq;
	*status = 0;
	while (done < nreq) {
		/* Keep depth requests in flight; after a refusal, send no more. */
		while (sent < nreq && !*status && sent - done < cl->depth) {
			struct iovec iov[2];

			pos = sent * chunk;
			clen = len - pos < chunk ? len - pos : chunk;
			r.off = off + pos;
			r.len = (uint32_t)clen;
			mcfs_seg_req_encode(head, type, first_id + sent, &r);
			iov[0] = (struct iovec){head, sizeof(head)};
			iov[1] = (struct iovec){buf + pos, clen};
			ret = send_iov(cn->fd, iov, type == MCFS_SEG_WRITE && clen ? 2 : 1);
			if (ret)
				return ret;
			sent++;
		}
		if (done == sent)
			break;
		pos = done * chunk;
		clen = len - pos < chunk ? len - pos : chunk;
		mcfs_spin_readable(cn->fd, cl->poll_ns);
		ret = recv_full(cn->fd, resp, sizeof(resp));
		if (ret)
			return ret;
		*answered = true;
		if (mcfs_seg_resp_decode(resp, type, first_id + done,
					 type == MCFS_SEG_READ ? (uint32_t)clen : 0, &st)) {
			mcfs_debug("segment client: malformed response");
			return -EPROTO;
		}
		if (!st && type == MCFS_SEG_READ) {
			ret = recv_full(cn->fd, buf + pos, clen);
			if (ret)
				return ret;
		}
		if (st && !*status)
			*status = st;
		done++;
	}
	return 0;
}

static int tcp_xfer(struct tcp_client *cl, const char *addr, uint16_t type,
		    const struct mcfs_grant *g, uint64_t off, uint8_t *buf, size_t len)
{
	bool reused, answered, fresh = false;
	struct cconn *cn;
	int ret, status;

	if (len > UINT64_MAX - off)
		return -ERANGE;
	for (;;) {
		ret = cconn_get(cl, addr, fresh, &cn, &reused);
		if (ret)
			return ret;
		answered = false;
		ret = xfer(cl, cn, type, g, off, buf, len, &status, &answered);
		if (!ret) {
			cconn_put(cl, addr, cn);
			return status;
		}
		cconn_close(cn);
		/* A pooled connection the server dropped meanwhile: once more on a new one. */
		if (reused && !answered && ret != -EAGAIN) {
			fresh = true;
			continue;
		}
		mcfs_debug("segment client: %s: %s", addr, strerror(-ret));
		return xport_err(ret);
	}
}

static int tcp_read(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		    uint64_t off, void *buf, size_t len)
{
	return tcp_xfer((struct tcp_client *)c, addr, MCFS_SEG_READ, g, off, buf, len);
}

static int tcp_write(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		     uint64_t off, const void *buf, size_t len)
{
	/* xfer only sends from buf for a write; the cast spares a second copy of it. */
	return tcp_xfer((struct tcp_client *)c, addr, MCFS_SEG_WRITE, g, off, (uint8_t *)buf, len);
}

/* ---- streams ---- */

/* Answers a stream may have outstanding; a reader asks one or two ahead. */
#define STREAM_ASKS 8
#define STREAM_PART (128u << 10) /* the least mcfs_xport_stream_next() waits for */

struct mcfs_xport_stream {
	struct tcp_client *cl;
	struct cconn *cn;
	bool broken; /* a transport error: never pooled */
	uint32_t nq, qhead;
	uint64_t qid[STREAM_ASKS];
	uint32_t qlen[STREAM_ASKS];
	uint32_t left;	/* data bytes of the current answer still on the socket */
	uint32_t lowat; /* SO_RCVLOWAT set on the socket, 1 by default */
	char addr[];
};

int mcfs_xport_stream_open(struct mcfs_xport_client *c, const char *addr,
			   struct mcfs_xport_stream **out)
{
	struct tcp_client *cl = (struct tcp_client *)c;
	struct mcfs_xport_stream *s;
	bool reused;
	int ret;

	if (!c || !addr || !out)
		return -EINVAL;
	if (c->ops != &mcfs_xport_tcp)
		return -EOPNOTSUPP;
	/* Each holds a connection and up to a few answers in its socket buffer. */
	if (atomic_fetch_add(&cl->nstreams, 1) >= cl->max_idle) {
		atomic_fetch_sub(&cl->nstreams, 1);
		return -EBUSY;
	}
	s = calloc(1, sizeof(*s) + strlen(addr) + 1);
	if (!s) {
		ret = -ENOMEM;
		goto out_count;
	}
	ret = cconn_get(cl, addr, false, &s->cn, &reused);
	if (ret)
		goto out_free;
	s->cl = cl;
	s->lowat = 1;
	strcpy(s->addr, addr);
	*out = s;
	return 0;

out_free:
	free(s);
out_count:
	atomic_fetch_sub(&cl->nstreams, 1);
	return ret;
}

int mcfs_xport_stream_ask(struct mcfs_xport_stream *s, const struct mcfs_grant *g, uint64_t off,
			  uint32_t len)
{
	uint8_t head[MCFS_SEG_REQ_BYTES];
	struct mcfs_seg_req r = {.grant = *g, .off = off, .len = len};
	struct iovec iov = {head, sizeof(head)};
	uint32_t slot;
	int ret;

	if (s->broken)
		return -EIO;
	if (s->nq >= STREAM_ASKS || !len || len > MCFS_SEG_IO_MAX || len > UINT64_MAX - off)
		return -EINVAL;
	slot = (s->qhead + s->nq) % STREAM_ASKS;
	s->qid[slot] = s->cn->next_id++;
	s->qlen[slot] = len;
	mcfs_seg_req_encode(head, MCFS_SEG_READ, s->qid[slot], &r);
	ret = send_iov(s->cn->fd, &iov, 1);
	if (ret) {
		s->broken = true;
		mcfs_debug("segment client: %s: %s", s->addr, strerror(-ret));
		return xport_err(ret);
	}
	s->nq++;
	return 0;
}

/*
 * Wait until at least n bytes are queued on the socket, or fewer where the
 * kernel will queue no more before some are read (its receive memory is
 * full). The number queued, at most max (>= n), or -errno; the receive
 * timeout bounds each wait.
 */
static int stream_wait_queued(struct mcfs_xport_stream *s, uint32_t n, uint32_t max)
{
	int fd = s->cn->fd, q = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	int ret;

	if (s->lowat != n) {
		int v = (int)n;

		/* poll() says POLLIN only once n bytes are in (or no more can come). */
		if (!setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)))
			s->lowat = n;
	}
	for (;;) {
		if (ioctl(fd, FIONREAD, &q))
			return -errno;
		if ((uint32_t)q >= n)
			return (int)((uint32_t)q < max ? (uint32_t)q : max);
		if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
			return -ECONNRESET;
		if ((p.revents & POLLIN) && q > 0)
			return q; /* readable short of n: receive memory is full */
		ret = poll(&p, 1, (int)s->cl->timeout_ms);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (!ret)
			return -EAGAIN;
	}
}

int mcfs_xport_stream_next(struct mcfs_xport_stream *s, uint32_t want, int *fd, uint32_t *avail)
{
	uint8_t resp[MCFS_SEG_RESP_BYTES];
	uint32_t n;
	int32_t st;
	int ret;

	if (s->broken)
		return -EIO;
	if (!s->left) {
		if (!s->nq)
			return -EINVAL;
		if (s->lowat != 1) {
			int one = 1;

			/* The next header is 16 bytes: let poll() see it (and the spin). */
			if (!setsockopt(s->cn->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one)))
				s->lowat = 1;
		}
		mcfs_spin_readable(s->cn->fd, s->cl->poll_ns);
		ret = recv_full(s->cn->fd, resp, sizeof(resp));
		if (!ret && mcfs_seg_resp_decode(resp, MCFS_SEG_READ, s->qid[s->qhead],
						 s->qlen[s->qhead], &st))
			ret = -EPROTO;
		if (ret)
			goto out_broken;
		s->left = st ? 0 : s->qlen[s->qhead];
		s->qhead = (s->qhead + 1) % STREAM_ASKS;
		s->nq--;
		if (st)
			return st;
	}
	n = want < s->left ? want : s->left;
	/*
	 * A large answer is taken in parts: the caller copies the first while
	 * the rest is still on its way, instead of after the last byte.
	 */
	ret = stream_wait_queued(s, n < STREAM_PART ? n : STREAM_PART, n);
	if (ret < 0)
		goto out_broken;
	*fd = s->cn->fd;
	*avail = (uint32_t)ret < n ? (uint32_t)ret : n;
	return 0;

out_broken:
	s->broken = true;
	mcfs_debug("segment client: %s: %s", s->addr, strerror(-ret));
	return xport_err(ret);
}

void mcfs_xport_stream_consumed(struct mcfs_xport_stream *s, uint32_t n)
{
	s->left -= n < s->left ? n : s->left;
}

void mcfs_xport_stream_close(struct mcfs_xport_stream *s, bool reuse)
{
	int one = 1;

	if (!s)
		return;
	if (reuse && !s->broken && !s->nq && !s->left &&
	    (s->lowat == 1 || !setsockopt(s->cn->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one))))
		cconn_put(s->cl, s->addr, s->cn);
	else
		cconn_close(s->cn);
	atomic_fetch_sub(&s->cl->nstreams, 1);
	free(s);
}

static int tcp_probe(void)
{
	return 0;
}

const struct mcfs_xport_ops mcfs_xport_tcp = {
    .name = "tcp",
    .probe = tcp_probe,
    .server_create = tcp_server_create,
    .server_addr = tcp_server_addr,
    .server_start = tcp_server_start,
    .server_set_identity = tcp_server_set_identity,
    .server_stats = tcp_server_stats,
    .server_destroy = tcp_server_destroy,
    .client_create = tcp_client_create,
    .client_destroy = tcp_client_destroy,
    .read = tcp_read,
    .write = tcp_write,
};
