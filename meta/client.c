// SPDX-License-Identifier: Apache-2.0
/*
 * The master client (see client.h). Over TCP a call writes one frame and
 * reads frames until the one with its req_id arrives; in-process it hands
 * the encoded frame straight to mcfs_master_handle(). Either way the bytes
 * are the same, so the embedded master exercises the real codec.
 */
#include "meta/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* Between two reconnection attempts. */
#define RECONNECT_PAUSE_MS 100
/* One connection attempt, at most. */
#define CONNECT_TIMEOUT_MS 2000

struct mcfs_mc {
	pthread_mutex_t lock; /* serialises calls; protects everything below */
	int fd;		      /* -1 for the embedded master, or while disconnected */
	bool remote;
	char host[256];
	uint16_t port;
	struct mcfs_master *master;
	struct mcfs_master_sess *sess;
	uint64_t next_id;
	uint64_t epoch; /* the highest seen */
	struct mcfs_buf out;
	int (*rejoin)(struct mcfs_mc *mc, void *arg);
	void *rejoin_arg;
	bool in_rejoin;
	int (*resolve)(void *arg, char *host, size_t hostsz, uint16_t *port);
	void *resolve_arg;
	pthread_mutex_t fd_lock; /* fd changes vs mcfs_mc_kick() */
	uint64_t poll_ns;	 /* look for the answer this long before sleeping */
};

static int dial(const char *host, uint16_t port, bool quiet)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char portstr[8];
	int fd = -1, one = 1, ret, err = ECONNREFUSED;

	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(host, portstr, &hints, &res);
	if (ret) {
		if (!quiet)
			mcfs_err("cannot resolve master host %s: %s", host, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		/*
		 * Bounded: a dead host must not hold the caller (and the
		 * client's lock) for the kernel's two-minute connect timeout.
		 */
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			err = 0;
		} else if (errno == EINPROGRESS) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			socklen_t elen = sizeof(err);

			ret = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
			if (ret == 0)
				err = ETIMEDOUT;
			else if (ret < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen))
				err = errno; /* else err is the connection's outcome */
		} else {
			err = errno;
		}
		if (!err && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
			break;
		if (!err)
			err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (!quiet)
			mcfs_err("cannot connect to the master at %s:%u: %s", host, port,
				 strerror(err));
		return -err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int mcfs_mc_connect(const char *host, uint16_t port, struct mcfs_mc **out)
{
	struct mcfs_mc *mc;
	int fd;

	if (strlen(host) >= sizeof(mc->host))
		return -ENAMETOOLONG;
	fd = dial(host, port, false);
	if (fd < 0)
		return fd;
	mc = calloc(1, sizeof(*mc));
	if (!mc) {
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_init(&mc->lock, NULL);
	pthread_mutex_init(&mc->fd_lock, NULL);
	mc->fd = fd;
	mc->remote = true;
	snprintf(mc->host, sizeof(mc->host), "%s", host);
	mc->port = port;
	mc->next_id = 1;
	*out = mc;
	return 0;
}

int mcfs_mc_connect_resolve(int (*resolve)(void *arg, char *host, size_t hostsz, uint16_t *port),
			    void *arg, struct mcfs_mc **out)
{
	struct mcfs_mc *mc = calloc(1, sizeof(*mc));

	if (!mc)
		return -ENOMEM;
	pthread_mutex_init(&mc->lock, NULL);
	pthread_mutex_init(&mc->fd_lock, NULL);
	mc->fd = -1;
	mc->remote = true;
	mc->resolve = resolve;
	mc->resolve_arg = arg;
	mc->next_id = 1;
	snprintf(mc->host, sizeof(mc->host), "(leader not found yet)");
	*out = mc;
	return 0;
}

void mcfs_mc_kick(struct mcfs_mc *mc)
{
	pthread_mutex_lock(&mc->fd_lock);
	if (mc->fd >= 0)
		shutdown(mc->fd, SHUT_RDWR);
	pthread_mutex_unlock(&mc->fd_lock);
}

void mcfs_mc_set_rejoin(struct mcfs_mc *mc, int (*fn)(struct mcfs_mc *mc, void *arg), void *arg)
{
	pthread_mutex_lock(&mc->lock);
	mc->rejoin = fn;
	mc->rejoin_arg = arg;
	pthread_mutex_unlock(&mc->lock);
}

uint64_t mcfs_mc_epoch(struct mcfs_mc *mc)
{
	uint64_t e;

	pthread_mutex_lock(&mc->lock);
	e = mc->epoch;
	pthread_mutex_unlock(&mc->lock);
	return e;
}

int mcfs_mc_embedded(struct mcfs_master *m, struct mcfs_mc **out)
{
	struct mcfs_mc *mc = calloc(1, sizeof(*mc));
	int ret;

	if (!mc)
		return -ENOMEM;
	ret = mcfs_master_sess_open(m, &mc->sess);
	if (ret) {
		free(mc);
		return ret;
	}
	pthread_mutex_init(&mc->lock, NULL);
	pthread_mutex_init(&mc->fd_lock, NULL);
	mc->fd = -1;
	mc->master = m;
	mc->next_id = 1;
	*out = mc;
	return 0;
}

void mcfs_mc_close(struct mcfs_mc *mc)
{
	if (!mc)
		return;
	if (mc->sess)
		mcfs_master_sess_close(mc->master, mc->sess);
	if (mc->fd >= 0)
		close(mc->fd);
	mcfs_buf_fini(&mc->out);
	pthread_mutex_destroy(&mc->lock);
	pthread_mutex_destroy(&mc->fd_lock);
	free(mc);
}

uint64_t mcfs_mc_tick(struct mcfs_mc *mc)
{
	uint64_t next;

	if (!mc->master)
		return UINT64_MAX;
	pthread_mutex_lock(&mc->lock);
	next = mcfs_master_tick(mc->master, mcfs_now_ms());
	pthread_mutex_unlock(&mc->lock);
	return next;
}

static int send_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void mcfs_mc_set_poll(struct mcfs_mc *mc, unsigned int us)
{
	pthread_mutex_lock(&mc->lock);
	mc->poll_ns = (uint64_t)us * 1000;
	pthread_mutex_unlock(&mc->lock);
}

/*
 * Wait up to timeout_ms for fd to be readable: for the first poll_ns by
 * looking without sleeping (mcfs_spin_readable), then asleep. A signal (the
 * daemon's SIGTERM lands on any thread) does not end the wait. 1, 0 on
 * timeout, -1 with errno.
 */
static int wait_readable(int fd, uint64_t poll_ns, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint64_t start = mcfs_now_ms(), waited_ms;
	int ret;

	if (mcfs_spin_readable(fd, poll_ns))
		return 1;
	for (;;) {
		waited_ms = mcfs_now_ms() - start;
		if (waited_ms >= (uint64_t)timeout_ms)
			return 0;
		ret = poll(&pfd, 1, timeout_ms - (int)waited_ms);
		if (ret >= 0 || errno != EINTR)
			return ret;
	}
}

/* Read frames into rbuf until the response to req_id; the frame is left at rbuf->data. */
static int recv_response_locked(struct mcfs_mc *mc, uint64_t req_id, struct mcfs_buf *rbuf)
{
	struct mcfs_frame_hdr h;
	int ret;

	for (;;) {
		rbuf->len = 0;
		ret = mcfs_buf_reserve(rbuf, MCFS_FRAME_HDR);
		if (ret)
			return ret;
		/*
		 * A master that does not answer within the RPC timeout gives EIO
		 * rather than a hung caller. The wait is only for the start of a
		 * frame: a late answer is skipped by its req_id next time.
		 */
		ret = wait_readable(mc->fd, mc->poll_ns, MCFS_RPC_TIMEOUT_MS);
		if (ret == 0)
			return -ETIMEDOUT;
		if (ret < 0)
			return -errno;
		ret = recv_all(mc->fd, rbuf->data, MCFS_FRAME_HDR);
		if (ret)
			return ret;
		ret = mcfs_frame_parse(rbuf->data, MCFS_FRAME_HDR, &h);
		if (ret)
			return ret;
		ret = mcfs_buf_reserve(rbuf, MCFS_FRAME_HDR + (size_t)h.len);
		if (ret)
			return ret;
		ret = recv_all(mc->fd, rbuf->data + MCFS_FRAME_HDR, h.len);
		if (ret)
			return ret;
		rbuf->len = MCFS_FRAME_HDR + h.len;
		if (h.req_id == req_id && (h.flags & MCFS_FRAME_RESP))
			return 0;
		mcfs_warn("master sent a response to unknown request %llu; ignored",
			  (unsigned long long)h.req_id);
	}
}

static void drop_conn(struct mcfs_mc *mc)
{
	if (mc->remote && mc->fd >= 0) {
		pthread_mutex_lock(&mc->fd_lock);
		close(mc->fd);
		mc->fd = -1;
		pthread_mutex_unlock(&mc->fd_lock);
	}
}

/*
 * One attempt: send req, wait for its answer. 0 with *resp decoded (its
 * status may be an error), -EPIPE when the connection is unusable (the
 * caller may reconnect and retry), -EIO when the answer is garbage.
 */
static int attempt_locked(struct mcfs_mc *mc, struct mcfs_msg *req, struct mcfs_msg *resp,
			  struct mcfs_buf *rbuf)
{
	int ret;

	if (mc->remote && mc->fd < 0)
		return -EPIPE;
	req->req_id = mc->next_id++;
	req->resp = false;
	mc->out.len = 0;
	ret = mcfs_msg_encode(req, &mc->out);
	if (ret)
		return ret;
	if (!mc->remote) {
		rbuf->len = 0;
		ret = mcfs_master_handle(mc->master, mc->sess, mc->out.data, mc->out.len, rbuf);
	} else {
		ret = send_all(mc->fd, mc->out.data, mc->out.len);
		if (!ret)
			ret = recv_response_locked(mc, req->req_id, rbuf);
	}
	if (ret) {
		mcfs_warn("%s to the master failed: %s", mcfs_msg_name(req->type), strerror(-ret));
		drop_conn(mc);
		return mc->remote ? -EPIPE : -EIO;
	}
	ret = mcfs_msg_decode_frame(rbuf->data, rbuf->len, resp);
	if (ret || !resp->resp || resp->type != req->type) {
		mcfs_err("the master answered %s with a malformed response",
			 mcfs_msg_name(req->type));
		drop_conn(mc);
		return -EIO;
	}
	if (resp->status == -EREMCHG) {
		/* A standby: the leader is elsewhere. */
		drop_conn(mc);
		return -EPIPE;
	}
	if (resp->epoch < mc->epoch) {
		/* A master that lost its leadership (fencing): nothing it says counts. */
		mcfs_warn("the master answered from epoch %llu, older than %llu: refused",
			  (unsigned long long)resp->epoch, (unsigned long long)mc->epoch);
		drop_conn(mc);
		return -EPIPE;
	}
	mc->epoch = resp->epoch;
	return 0;
}

static void pause_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Connect again and run the rejoin hook. 0 or a negative errno. */
static int reconnect_locked(struct mcfs_mc *mc)
{
	int fd, ret = 0;

	if (mc->resolve) {
		char host[sizeof(mc->host)];
		uint16_t port;

		ret = mc->resolve(mc->resolve_arg, host, sizeof(host), &port);
		if (ret)
			return ret == -ENOENT ? -ECONNREFUSED : ret; /* no leader yet */
		snprintf(mc->host, sizeof(mc->host), "%s", host);
		mc->port = port;
	}
	fd = dial(mc->host, mc->port, true);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&mc->fd_lock);
	mc->fd = fd;
	pthread_mutex_unlock(&mc->fd_lock);
	if (mc->rejoin) {
		mc->in_rejoin = true;
		ret = mc->rejoin(mc, mc->rejoin_arg);
		mc->in_rejoin = false;
	}
	if (ret) {
		drop_conn(mc);
		return ret;
	}
	mcfs_info("reconnected to the master at %s:%u (epoch %llu)", mc->host, mc->port,
		  (unsigned long long)mc->epoch);
	return 0;
}

int mcfs_mc_call_nested(struct mcfs_mc *mc, struct mcfs_msg *req, struct mcfs_msg *resp,
			struct mcfs_buf *rbuf)
{
	int ret = attempt_locked(mc, req, resp, rbuf);

	return ret ? (ret == -EPIPE ? -EIO : ret) : resp->status;
}

int mcfs_mc_rejoin(struct mcfs_mc *mc)
{
	uint64_t deadline = mcfs_now_ms() + MCFS_RPC_TIMEOUT_MS;
	int ret = 0;

	pthread_mutex_lock(&mc->lock);
	if (mc->remote && mc->fd < 0) {
		/* Not connected: connecting runs the hook. */
		while ((ret = reconnect_locked(mc)) &&
		       mcfs_now_ms() + RECONNECT_PAUSE_MS < deadline)
			pause_ms(RECONNECT_PAUSE_MS);
		if (ret)
			mcfs_err("cannot reach the master at %s:%u: %s", mc->host, mc->port,
				 strerror(-ret));
	} else if (mc->rejoin) {
		mc->in_rejoin = true;
		ret = mc->rejoin(mc, mc->rejoin_arg);
		mc->in_rejoin = false;
	}
	pthread_mutex_unlock(&mc->lock);
	return ret;
}

int mcfs_mc_call(struct mcfs_mc *mc, struct mcfs_msg *req, struct mcfs_msg *resp,
		 struct mcfs_buf *rbuf)
{
	uint64_t deadline = mcfs_now_ms() + MCFS_RPC_TIMEOUT_MS;
	bool said = false;
	int ret;

	pthread_mutex_lock(&mc->lock);
	for (;;) {
		ret = mc->remote && mc->fd < 0 ? reconnect_locked(mc) : 0;
		if (!ret)
			ret = attempt_locked(mc, req, resp, rbuf);
		if (!ret && resp->status != -EINPROGRESS) {
			ret = resp->status;
			break;
		}
		if (ret && ret != -EPIPE && !mc->remote)
			break;
		if (ret && ret != -EPIPE && ret != -ECONNREFUSED && ret != -ECONNRESET &&
		    ret != -EHOSTUNREACH && ret != -ETIMEDOUT && ret != -EIO && ret != -ENOTCONN &&
		    ret != -EAGAIN)
			break;
		/* Unreachable, restarting, or rebuilding (EINPROGRESS): wait and try again. */
		if (mcfs_now_ms() + RECONNECT_PAUSE_MS >= deadline) {
			ret = -EIO;
			break;
		}
		if (!said && ret) {
			mcfs_warn("the master at %s:%u is unreachable; retrying for up to %d s",
				  mc->host, mc->port, MCFS_RPC_TIMEOUT_MS / 1000);
			said = true;
		}
		pause_ms(RECONNECT_PAUSE_MS);
	}
	pthread_mutex_unlock(&mc->lock);
	return ret;
}
