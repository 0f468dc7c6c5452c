// SPDX-License-Identifier: Apache-2.0
/*
 * The master's TCP server: one thread, one epoll loop, in the manner of
 * Redis's ae. Each connection is a master session with an input buffer that
 * is cut into frames and an output buffer of responses.
 *
 * Peers pipeline: one read may bring many requests, and every complete frame
 * is handled before the responses go out together in one send. A frame
 * header is checked as soon as it arrives, so a peer announcing a huge or
 * malformed frame is dropped before anything is buffered for it. A peer
 * that sends requests without reading the responses stops being read once
 * OUT_HIGH bytes wait for it, which bounds the memory any one peer can take.
 *
 * The loop never waits longer than TICK_MAX_MS so that the master's timed
 * work (leases, node liveness) runs and a stop request is seen promptly.
 * It counts requests, connections and bytes, and hands those counts to the
 * caller's hook (struct mcfs_master_hook) every hook period.
 */
#include "meta/master.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <utlist.h>

#include "common/log.h"
#include "common/util.h"
#include "transport/frame.h"

#define TICK_MAX_MS 200
#define TICK_MIN_MS 5
#define READ_CHUNK  (64u << 10)
/* Reads per wake-up before other connections get their turn. */
#define READS_PER_EVENT 16
/* Stop reading a peer while this much output waits for it. */
#define OUT_HIGH (8u << 20)
/* An idle connection gives back buffers grown past this. */
#define BUF_KEEP   (256u << 10)
#define MAX_EVENTS 64
/* After running out of file descriptors, accept again this much later. */
#define ACCEPT_PAUSE_MS 100

struct conn {
	int fd;
	struct mcfs_master_sess *sess; /* owned; closed with the connection */
	struct mcfs_buf in;	       /* received bytes; in.data[in_off..] not yet handled */
	size_t in_off;
	struct mcfs_buf out; /* responses; out.data[out_off..] not yet sent */
	size_t out_off;
	uint32_t events; /* the epoll mask registered now */
	bool eof;	 /* the peer will send no more */
	bool stalled;	 /* complete frames wait because of OUT_HIGH */
	char peer[INET6_ADDRSTRLEN + 16];
	struct conn *prev, *next; /* in srv->conns */
};

struct server {
	struct mcfs_master *m;
	int epfd;
	int lfd;
	bool accept_paused;
	uint64_t accept_resume_ms;
	struct conn *conns; /* every open connection, for shutdown */
	struct mcfs_master_serve_stats st;
};

static size_t out_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}

static void format_peer(const struct sockaddr *sa, socklen_t salen, char *buf, size_t bufsz)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, salen, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, bufsz, "?");
		return;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(buf, bufsz, "[%.46s]:%.5s", host, port);
	else
		snprintf(buf, bufsz, "%.46s:%.5s", host, port);
}

static int listen_on(const char *host, uint16_t port)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char portstr[8];
	int fd = -1, ret, one = 1;

	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
	if (ret) {
		mcfs_err("cannot listen on %s:%u: %s", host, port, gai_strerror(ret));
		return -EADDRNOTAVAIL;
	}
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
			ret = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		mcfs_err("cannot listen on %s:%u: %s", host, port, strerror(-ret));
		return ret;
	}
	return fd;
}

static int conn_set_events(struct server *srv, struct conn *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (!c->eof && out_pending(c) < OUT_HIGH)
		want |= EPOLLIN;
	/* Frames held back by OUT_HIGH are handled on the next writable event. */
	if (out_pending(c) || c->stalled)
		want |= EPOLLOUT;
	if (want == c->events)
		return 0;
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev))
		return -errno;
	c->events = want;
	return 0;
}

static void conn_close(struct server *srv, struct conn *c)
{
	srv->st.conns_open--;
	DL_DELETE(srv->conns, c);
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	mcfs_master_sess_close(srv->m, c->sess);
	mcfs_buf_fini(&c->in);
	mcfs_buf_fini(&c->out);
	free(c);
}

static void accept_all(struct server *srv)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct epoll_event ev;
	struct conn *c;
	int fd, one = 1, ret;

	for (;;) {
		sslen = sizeof(ss);
		fd =
		    accept4(srv->lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Level-triggered: stop asking until some descriptors are back. */
				mcfs_warn("cannot accept connections: %s; pausing %d ms",
					  strerror(errno), ACCEPT_PAUSE_MS);
				ev.events = 0;
				ev.data.ptr = NULL;
				epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->lfd, &ev);
				srv->accept_paused = true;
				srv->accept_resume_ms = mcfs_now_ms() + ACCEPT_PAUSE_MS;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				mcfs_warn("accept: %s", strerror(errno));
			}
			return;
		}
		/* Requests are small and latency-bound: do not let Nagle hold them. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		mcfs_buf_init(&c->in);
		mcfs_buf_init(&c->out);
		format_peer((struct sockaddr *)&ss, sslen, c->peer, sizeof(c->peer));
		ret = mcfs_master_sess_open(srv->m, &c->sess);
		if (ret) {
			mcfs_warn("refusing connection from %s: %s", c->peer, strerror(-ret));
			goto out_free_conn;
		}
		c->events = EPOLLIN;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			mcfs_warn("refusing connection from %s: %s", c->peer, strerror(errno));
			goto out_close_sess;
		}
		DL_APPEND(srv->conns, c);
		srv->st.conns_accepted++;
		srv->st.conns_open++;
		mcfs_debug("connection from %s", c->peer);
		continue;

	out_close_sess:
		mcfs_master_sess_close(srv->m, c->sess);
	out_free_conn:
		free(c);
		close(fd);
	}
}

/*
 * Handle every complete frame in c->in, in order, until OUT_HIGH bytes of
 * responses wait. 0, or the negative errno that condemns the connection.
 */
static int conn_process(struct server *srv, struct conn *c)
{
	struct mcfs_frame_hdr h;
	size_t avail, need = 0;
	int ret = 0;

	c->stalled = false;
	for (;;) {
		const uint8_t *p = c->in.data + c->in_off;

		avail = c->in.len - c->in_off;
		need = 0;
		ret = mcfs_frame_parse(p, avail, &h);
		if (ret == -EAGAIN) {
			ret = 0;
			break;
		}
		if (ret)
			break;
		need = MCFS_FRAME_HDR + (size_t)h.len;
		if (avail < need)
			break;
		if (out_pending(c) >= OUT_HIGH) {
			c->stalled = true;
			break;
		}
		srv->st.requests[h.type < MCFS_MASTER_MSG_TYPES ? h.type : 0]++;
		ret = mcfs_master_handle(srv->m, c->sess, p, need, &c->out);
		if (!ret && c->out.oom)
			ret = -ENOMEM;
		if (ret)
			break;
		c->in_off += need;
		need = 0;
	}
	if (ret)
		return ret;
	/* One move per batch, not per frame, to put the partial frame at the front. */
	if (c->in_off == c->in.len) {
		c->in.len = 0;
		c->in_off = 0;
	} else if (c->in_off) {
		mcfs_buf_consume(&c->in, c->in_off);
		c->in_off = 0;
	}
	/* A frame whose header has arrived gets its whole room at once. */
	if (need > c->in.len && mcfs_buf_reserve(&c->in, need - c->in.len))
		return -ENOMEM;
	return 0;
}

/* Read what the socket has. 0 (c->eof set at end of stream) or a negative errno. */
static int conn_read(struct server *srv, struct conn *c)
{
	ssize_t n;
	size_t room;

	for (int i = 0; i < READS_PER_EVENT; i++) {
		if (mcfs_buf_reserve(&c->in, READ_CHUNK))
			return -ENOMEM;
		room = c->in.cap - c->in.len;
		n = recv(c->fd, c->in.data + c->in.len, room, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			srv->st.bytes_in += (uint64_t)n;
			if ((size_t)n < room)
				return 0; /* the socket is drained */
			continue;
		}
		if (n == 0) {
			c->eof = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -errno;
	}
	return 0;
}

static int conn_flush(struct server *srv, struct conn *c)
{
	ssize_t n;

	while (out_pending(c)) {
		n = send(c->fd, c->out.data + c->out_off, out_pending(c), MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			srv->st.bytes_out += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return n < 0 ? -errno : -EPIPE;
	}
	if (c->out_off == c->out.len) {
		c->out.len = 0;
		c->out_off = 0;
	} else if (c->out_off >= c->out.len / 2) {
		mcfs_buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	return 0;
}

/* Give back the memory of a connection that burst and went quiet. */
static void conn_trim(struct conn *c)
{
	if (!c->in.len && c->in.cap > BUF_KEEP)
		mcfs_buf_fini(&c->in);
	if (!c->out.len && c->out.cap > BUF_KEEP)
		mcfs_buf_fini(&c->out);
}

/* The network failed us, rather than the peer sending something wrong. */
static bool is_io_error(int err)
{
	return err == -ECONNRESET || err == -EPIPE || err == -ETIMEDOUT || err == -EHOSTUNREACH ||
	       err == -ENETUNREACH || err == -EIO;
}

static void conn_event(struct server *srv, struct conn *c, uint32_t events)
{
	int ret = 0;

	if (events & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		ret = err ? -err : -EIO;
		goto out_close;
	}
	if ((events & (EPOLLIN | EPOLLHUP)) && !c->eof) {
		ret = conn_read(srv, c);
		if (ret)
			goto out_close;
	}
	/* Handle, send, and handle again what waited for room, a few rounds at most. */
	for (int round = 0; round < 4; round++) {
		ret = conn_process(srv, c);
		if (!ret)
			ret = conn_flush(srv, c);
		if (ret)
			goto out_close;
		if (!c->stalled || out_pending(c) >= OUT_HIGH)
			break;
	}
	if (c->eof && !c->stalled && !out_pending(c)) {
		if (c->in.len)
			mcfs_info("connection from %s ended inside a frame", c->peer);
		else
			mcfs_debug("connection from %s closed by the peer", c->peer);
		conn_close(srv, c);
		return;
	}
	conn_trim(c);
	ret = conn_set_events(srv, c);
	if (ret)
		goto out_close;
	return;

out_close:
	srv->st.conns_failed++;
	if (is_io_error(ret))
		mcfs_info("closing connection from %s: %s", c->peer, strerror(-ret));
	else
		mcfs_warn("closing connection from %s: %s", c->peer, strerror(-ret));
	conn_close(srv, c);
}

int mcfs_master_serve(struct mcfs_master *m, const char *host, uint16_t port,
		      volatile sig_atomic_t *stop, const struct mcfs_master_hook *hook)
{
	struct server srv = {.m = m, .epfd = -1, .lfd = -1};
	struct epoll_event evs[MAX_EVENTS], ev;
	uint64_t now, wake, next_tick = 0, next_hook = UINT64_MAX;
	uint64_t poll_ns = (uint64_t)mcfs_master_get_conf(m)->poll_us * 1000, busy_until = 0;
	int n, ret = 0;

	srv.lfd = listen_on(host, port);
	if (srv.lfd < 0)
		return srv.lfd;
	srv.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv.epfd < 0) {
		ret = -errno;
		mcfs_err("epoll_create1: %s", strerror(-ret));
		goto out_close_listen;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = NULL; /* NULL marks the listening socket */
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.lfd, &ev)) {
		ret = -errno;
		mcfs_err("epoll_ctl: %s", strerror(-ret));
		goto out_close_epoll;
	}
	mcfs_info("mcfs-master listening on %s:%u", host, port);
	if (hook && hook->fn) {
		/* First call before any request: the hook may start what depends on us. */
		ret = hook->fn(m, &srv.st, hook->arg);
		if (ret)
			goto out_close_epoll;
		next_hook = mcfs_now_ms() + (hook->period_ms ? hook->period_ms : TICK_MAX_MS);
	}

	while (!*stop) {
		now = mcfs_now_ms();
		if (now >= next_tick) {
			uint64_t wait = mcfs_master_tick(m, now);

			if (wait > TICK_MAX_MS)
				wait = TICK_MAX_MS;
			if (wait < TICK_MIN_MS)
				wait = TICK_MIN_MS;
			next_tick = now + wait;
		}
		if (now >= next_hook) {
			ret = hook->fn(m, &srv.st, hook->arg);
			if (ret)
				break;
			next_hook = now + (hook->period_ms ? hook->period_ms : TICK_MAX_MS);
		}
		if (srv.accept_paused && now >= srv.accept_resume_ms) {
			ev.events = EPOLLIN;
			ev.data.ptr = NULL;
			if (!epoll_ctl(srv.epfd, EPOLL_CTL_MOD, srv.lfd, &ev))
				srv.accept_paused = false;
		}
		wake = next_tick < next_hook ? next_tick : next_hook;
		/*
		 * Right after requests, look for the next ones without sleeping
		 * for a while (conf poll_us): a client on this machine or a near
		 * one often sends again within microseconds, and waking a
		 * sleeping thread costs tens of them on a virtual machine.
		 */
		if (busy_until && mcfs_now_ns() < busy_until) {
			n = epoll_wait(srv.epfd, evs, MAX_EVENTS, 0);
			if (!n)
				sched_yield(); /* let whatever is runnable here go first */
		} else
			n = epoll_wait(srv.epfd, evs, MAX_EVENTS, (int)(wake - now));
		if (*stop)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			mcfs_err("epoll_wait: %s", strerror(-ret));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				accept_all(&srv);
			else
				conn_event(&srv, evs[i].data.ptr, evs[i].events);
		}
		if (n > 0 && poll_ns)
			busy_until = mcfs_now_ns() + poll_ns;
	}

	while (srv.conns)
		conn_close(&srv, srv.conns);
out_close_epoll:
	close(srv.epfd);
out_close_listen:
	close(srv.lfd);
	return ret;
}
