// SPDX-License-Identifier: Apache-2.0
/*
 * The master's HTTP endpoints over libmicrohttpd, in its internal polling
 * thread. That thread sees only the snapshot the master's loop publishes,
 * under a mutex; it never reaches into the master.
 *
 * We bind the listening socket ourselves and hand it to libmicrohttpd, so
 * that a port in use or a bad address comes back as the exact errno rather
 * than a NULL daemon, and libmicrohttpd's own messages go to our logger.
 */
#include "meta/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "meta/proto.h"

/* Scrapers and probes are few; a busy or stuck client gets dropped. */
#define HTTP_CONN_LIMIT	  64
#define HTTP_CONN_TIMEOUT 10 /* seconds */

#define TEXT	 "text/plain; charset=utf-8"
#define PROM_TXT "text/plain; version=0.0.4; charset=utf-8"

struct mcfs_http {
	struct MHD_Daemon *d;
	char addr[300]; /* "host:port", for messages */
	pthread_mutex_t lock;
	char role[MCFS_HTTP_ROLE_MAX]; /* protected by lock */
	bool serving;		       /* protected by lock */
	struct mcfs_buf metrics;       /* protected by lock; the /metrics body */
};

static void buf_printf(struct mcfs_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(struct mcfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || mcfs_buf_reserve(b, (size_t)n + 1)) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* One metric without labels: HELP, TYPE and the sample. */
static void metric(struct mcfs_buf *b, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
		   (unsigned long long)v);
}

int mcfs_http_format_metrics(const struct mcfs_http_snapshot *s, struct mcfs_buf *out)
{
	const struct mcfs_master_stats *st = &s->stats;
	const struct mcfs_master_serve_stats *sv = &s->serve;

	buf_printf(out,
		   "# HELP mcfs_master_info The master's version; always 1.\n"
		   "# TYPE mcfs_master_info gauge\n"
		   "mcfs_master_info{version=\"%s\"} 1\n",
		   MCFS_VERSION);
	metric(out, "mcfs_master_leader", "gauge", "1 when this master is the leader, else 0.",
	       !strcmp(s->role, "leader"));
	metric(out, "mcfs_master_serving", "gauge",
	       "1 when this master accepts requests (what /health says), else 0.", s->serving);
	metric(out, "mcfs_master_epoch", "gauge",
	       "The master's epoch (leader election revision; 1 without HA).", s->epoch);
	if (s->start_time_ns > 0)
		buf_printf(out,
			   "# HELP mcfs_master_start_time_seconds When the master started, in "
			   "seconds since the Unix epoch.\n"
			   "# TYPE mcfs_master_start_time_seconds gauge\n"
			   "mcfs_master_start_time_seconds %lld.%03lld\n",
			   (long long)(s->start_time_ns / 1000000000),
			   (long long)(s->start_time_ns % 1000000000 / 1000000));

	/* Every known type, zeros included, so that rate() has a start. */
	buf_printf(out, "# HELP mcfs_master_requests_total Request frames handled, by message "
			"type (a BATCH counts once).\n"
			"# TYPE mcfs_master_requests_total counter\n");
	for (uint16_t t = 1; t < MCFS_MASTER_MSG_TYPES; t++) {
		const char *name = mcfs_msg_name(t);

		if (name)
			buf_printf(out, "mcfs_master_requests_total{type=\"%s\"} %llu\n", name,
				   (unsigned long long)sv->requests[t]);
		else if (sv->requests[t])
			buf_printf(out, "mcfs_master_requests_total{type=\"%u\"} %llu\n", t,
				   (unsigned long long)sv->requests[t]);
	}
	buf_printf(out, "mcfs_master_requests_total{type=\"other\"} %llu\n",
		   (unsigned long long)sv->requests[0]);

	metric(out, "mcfs_master_connections", "gauge", "Connections open now (nodes, tools).",
	       sv->conns_open);
	metric(out, "mcfs_master_connections_accepted_total", "counter", "Connections accepted.",
	       sv->conns_accepted);
	metric(out, "mcfs_master_connections_failed_total", "counter",
	       "Connections closed for a malformed frame or an I/O error.", sv->conns_failed);
	metric(out, "mcfs_master_received_bytes_total", "counter",
	       "Bytes received from peers, frame headers included.", sv->bytes_in);
	metric(out, "mcfs_master_sent_bytes_total", "counter", "Bytes sent to peers.",
	       sv->bytes_out);

	metric(out, "mcfs_master_evict_rounds_total", "counter",
	       "Eviction rounds started (pool over the high watermark, or a failed allocation).",
	       st->evict_rounds);
	metric(out, "mcfs_master_evicted_objects_total", "counter",
	       "Objects evicted (their names left the namespace).", st->evicted_objects);
	metric(out, "mcfs_master_evicted_bytes_total", "counter",
	       "Segment bytes the evicted objects held, every replica counted.", st->evicted_bytes);
	metric(out, "mcfs_master_evict_inspected_total", "counter",
	       "Inode table slots the eviction scans looked at.", st->evict_inspected);
	metric(out, "mcfs_master_alloc_evictions_total", "counter",
	       "Allocations that found no room and evicted to make some.", st->alloc_evictions);
	metric(out, "mcfs_master_alloc_enospc_total", "counter",
	       "Allocations that failed with ENOSPC even after evicting.", st->alloc_enospc);
	metric(out, "mcfs_master_puts_expired_total", "counter",
	       "Puts revoked after the put timeout passed untouched.", st->puts_expired);
	return out->oom ? -ENOMEM : 0;
}

static bool role_ok(const char *role)
{
	size_t n = strnlen(role, MCFS_HTTP_ROLE_MAX);

	if (!n || n == MCFS_HTTP_ROLE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (role[i] < 'a' || role[i] > 'z')
			return false;
	return true;
}

int mcfs_http_publish(struct mcfs_http *h, const struct mcfs_http_snapshot *s)
{
	struct mcfs_buf text;

	if (!role_ok(s->role))
		return -EINVAL;
	/* Format outside the lock: the HTTP thread waits only for the swap. */
	mcfs_buf_init(&text);
	if (mcfs_http_format_metrics(s, &text)) {
		mcfs_buf_fini(&text);
		return -ENOMEM;
	}
	pthread_mutex_lock(&h->lock);
	memcpy(h->role, s->role, sizeof(h->role));
	h->serving = s->serving;
	mcfs_buf_fini(&h->metrics);
	h->metrics = text;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* Queue one response with a body copied from body (len bytes). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *type,
			     const void *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO; /* out of memory: libmicrohttpd drops the connection */
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_str(struct MHD_Connection *conn, unsigned int status, const char *s)
{
	return reply(conn, status, TEXT, s, strlen(s));
}

/* libmicrohttpd's access handler; runs on its thread. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct mcfs_http *h = cls;
	char line[MCFS_HTTP_ROLE_MAX + 1];
	enum MHD_Result ret;
	bool serving;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	/* Answered on the first call: no endpoint takes a body, and one sent is not read. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_str(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");

	if (!strcmp(url, "/metrics")) {
		pthread_mutex_lock(&h->lock);
		ret = reply(conn, MHD_HTTP_OK, PROM_TXT, h->metrics.data, h->metrics.len);
		pthread_mutex_unlock(&h->lock);
		return ret;
	}
	if (strcmp(url, "/role") && strcmp(url, "/health"))
		return reply_str(conn, MHD_HTTP_NOT_FOUND, "not found\n");

	pthread_mutex_lock(&h->lock);
	snprintf(line, sizeof(line), "%s\n", h->role);
	serving = h->serving;
	pthread_mutex_unlock(&h->lock);
	if (!strcmp(url, "/role"))
		return reply_str(conn, MHD_HTTP_OK, line);
	if (serving)
		return reply_str(conn, MHD_HTTP_OK, "ok\n");
	return reply_str(conn, MHD_HTTP_SERVICE_UNAVAILABLE, line);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct mcfs_http *h = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = 0;
	mcfs_warn("http %s: %s", h->addr, msg);
}

/* A listening TCP socket on host:port, or a negative errno (logged). */
static int listen_on(const struct mcfs_http *h, const char *host, uint16_t port, bool *ipv6)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char portstr[8];
	int fd = -1, ret, one = 1;

	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
	if (ret) {
		mcfs_err("cannot serve HTTP on %s: %s", h->addr,
			 ret == EAI_SYSTEM ? strerror(errno) : gai_strerror(ret));
		return -EADDRNOTAVAIL;
	}
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
			ret = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		*ipv6 = ai->ai_family == AF_INET6;
		break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		mcfs_err("cannot serve HTTP on %s: %s", h->addr, strerror(-ret));
		return ret;
	}
	return fd;
}

int mcfs_http_start(const char *host, uint16_t port, struct mcfs_http **out)
{
	struct mcfs_http_snapshot initial = {.role = "starting"};
	sigset_t all, old;
	struct mcfs_http *h;
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	bool ipv6 = false;
	int fd, ret;

	if (!host || !port)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (strchr(host, ':'))
		snprintf(h->addr, sizeof(h->addr), "[%.256s]:%u", host, port);
	else
		snprintf(h->addr, sizeof(h->addr), "%.256s:%u", host, port);
	mcfs_buf_init(&h->metrics);
	ret = pthread_mutex_init(&h->lock, NULL);
	if (ret) {
		ret = -ret;
		goto out_free;
	}
	ret = mcfs_http_publish(h, &initial);
	if (ret)
		goto out_destroy_lock;
	fd = listen_on(h, host, port, &ipv6);
	if (fd < 0) {
		ret = fd;
		goto out_destroy_lock;
	}
	if (ipv6)
		flags |= MHD_USE_IPv6;
	/*
	 * The thread inherits our signal mask: block everything while it is
	 * created so that SIGINT and SIGTERM go to the master's loop (whose
	 * epoll_wait they interrupt), never to the HTTP thread.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	/* The logger first, or libmicrohttpd may print to stderr before it sees it. */
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
				on_mhd_log, h, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONN_LIMIT,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONN_TIMEOUT,
				MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!h->d) {
		mcfs_err("cannot serve HTTP on %s: libmicrohttpd would not start", h->addr);
		ret = -EIO;
		goto out_close_fd;
	}
	mcfs_info("HTTP endpoints (/metrics, /health, /role) on %s", h->addr);
	*out = h;
	return 0;

out_close_fd:
	close(fd);
out_destroy_lock:
	pthread_mutex_destroy(&h->lock);
out_free:
	mcfs_buf_fini(&h->metrics);
	free(h);
	return ret;
}

void mcfs_http_stop(struct mcfs_http *h)
{
	if (!h)
		return;
	/* Also closes the listening socket it was given. */
	MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->lock);
	mcfs_buf_fini(&h->metrics);
	free(h);
}
