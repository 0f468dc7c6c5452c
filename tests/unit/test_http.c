// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of meta/http.c: the /metrics text (Prometheus exposition
 * format: HELP and TYPE before the samples of each family, counters named
 * _total, every sample "name{labels} value"), role validation in publish,
 * and a real server on 127.0.0.1 asked over a socket: /role, /health before
 * and after a publish, 404, 405, HEAD, a port in use, a listener released
 * by stop.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "meta/http.h"
#include "meta/proto.h"

static void snap_fill(struct mcfs_http_snapshot *s, const char *role)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->role, sizeof(s->role), "%s", role);
	s->serving = !strcmp(role, "leader");
	s->epoch = 7;
	s->start_time_ns = 1700000000123456789ll;
	s->stats.evict_rounds = 3;
	s->stats.evicted_objects = 11;
	s->stats.evicted_bytes = 1ull << 40;
	s->stats.puts_expired = 2;
	s->serve.requests[MCFS_MSG_GET] = 42;
	s->serve.requests[MCFS_MSG_PUT_END] = 5;
	s->serve.requests[0] = 1;
	s->serve.conns_open = 4;
	s->serve.conns_accepted = 9;
	s->serve.bytes_in = UINT64_MAX;
}

static char *metrics_text(const struct mcfs_http_snapshot *s)
{
	struct mcfs_buf b;
	char *text;

	mcfs_buf_init(&b);
	cr_assert_eq(mcfs_http_format_metrics(s, &b), 0);
	text = strndup((const char *)b.data, b.len);
	cr_assert_not_null(text);
	mcfs_buf_fini(&b);
	return text;
}

/* The value of the sample written exactly as key ("name" or "name{labels}"), or -1. */
static double sample(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static bool name_ok(const char *s, size_t n)
{
	if (!n || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != ':')
			return false;
	return true;
}

Test(http, metrics_exposition_format)
{
	struct mcfs_http_snapshot s;
	char family[128] = "", type[16] = "";
	bool help_seen = false;
	char *text, *line, *save;
	int samples = 0;

	snap_fill(&s, "leader");
	text = metrics_text(&s);
	cr_assert(strlen(text) > 0 && text[strlen(text) - 1] == '\n', "ends without a newline");
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], *sp, *end;
		size_t nlen;

		if (!strncmp(line, "# HELP ", 7)) {
			sp = strchr(line + 7, ' ');
			cr_assert_not_null(sp, "HELP without text: %s", line);
			nlen = (size_t)(sp - (line + 7));
			cr_assert(name_ok(line + 7, nlen), "bad name: %s", line);
			snprintf(family, sizeof(family), "%.*s", (int)nlen, line + 7);
			help_seen = true;
			type[0] = 0;
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			cr_assert(help_seen, "TYPE without HELP: %s", line);
			cr_assert_eq(sscanf(line + 7, "%127s %15s", name, type), 2, "%s", line);
			cr_assert_str_eq(name, family, "TYPE of another family: %s", line);
			cr_assert(!strcmp(type, "counter") || !strcmp(type, "gauge"), "%s", line);
			nlen = strlen(name);
			if (!strcmp(type, "counter"))
				cr_assert(nlen > 6 && !strcmp(name + nlen - 6, "_total"),
					  "counter not named _total: %s", name);
			continue;
		}
		cr_assert_neq(line[0], '#', "unknown comment: %s", line);
		/* name{labels} value, or name value */
		nlen = strcspn(line, "{ ");
		cr_assert(name_ok(line, nlen), "bad sample name: %s", line);
		cr_assert(!strncmp(line, "mcfs_master_", 12), "not mcfs_master_: %s", line);
		cr_assert(nlen == strlen(family) && !strncmp(line, family, nlen),
			  "sample outside its family %s: %s", family, line);
		cr_assert(type[0], "sample before its TYPE: %s", line);
		sp = line + nlen;
		if (*sp == '{') {
			sp = strchr(sp, '}');
			cr_assert_not_null(sp, "unclosed labels: %s", line);
			sp++;
		}
		cr_assert_eq(*sp, ' ', "no value: %s", line);
		strtod(sp + 1, &end);
		cr_assert(end != sp + 1 && *end == 0, "bad value: %s", line);
		samples++;
	}
	cr_assert(samples > 20, "only %d samples", samples);
	free(text);
}

Test(http, metrics_values)
{
	struct mcfs_http_snapshot s;
	char *text;

	snap_fill(&s, "leader");
	text = metrics_text(&s);
	cr_assert_eq(sample(text, "mcfs_master_leader"), 1);
	cr_assert_eq(sample(text, "mcfs_master_serving"), 1);
	cr_assert_eq(sample(text, "mcfs_master_epoch"), 7);
	cr_assert_eq(sample(text, "mcfs_master_start_time_seconds"), 1700000000.123);
	cr_assert_eq(sample(text, "mcfs_master_requests_total{type=\"GET\"}"), 42);
	cr_assert_eq(sample(text, "mcfs_master_requests_total{type=\"PUT_END\"}"), 5);
	cr_assert_eq(sample(text, "mcfs_master_requests_total{type=\"HELLO\"}"), 0);
	cr_assert_eq(sample(text, "mcfs_master_requests_total{type=\"other\"}"), 1);
	cr_assert_eq(sample(text, "mcfs_master_connections"), 4);
	cr_assert_eq(sample(text, "mcfs_master_connections_accepted_total"), 9);
	cr_assert_eq(sample(text, "mcfs_master_evict_rounds_total"), 3);
	cr_assert_eq(sample(text, "mcfs_master_evicted_objects_total"), 11);
	cr_assert_eq(sample(text, "mcfs_master_evicted_bytes_total"), (double)(1ull << 40));
	cr_assert_eq(sample(text, "mcfs_master_puts_expired_total"), 2);
	cr_assert_not_null(
	    strstr(text, "\nmcfs_master_received_bytes_total 18446744073709551615\n"));
	cr_assert_not_null(strstr(text, "mcfs_master_info{version=\"" MCFS_VERSION "\"} 1\n"));
	free(text);

	snap_fill(&s, "standby");
	s.start_time_ns = 0;
	text = metrics_text(&s);
	cr_assert_eq(sample(text, "mcfs_master_leader"), 0);
	cr_assert_eq(sample(text, "mcfs_master_serving"), 0);
	cr_assert_null(strstr(text, "start_time"), "an unknown start time was shown");
	free(text);
}

/* A free TCP port on 127.0.0.1 (free when we looked). */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* Send req to 127.0.0.1:port; the status code, the body in body (bodysz bytes). */
static int http(uint16_t port, const char *req, char *body, size_t bodysz)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port)};
	static char resp[16384];
	size_t len = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
	char *p;

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (len < sizeof(resp) - 1 && (n = recv(fd, resp + len, sizeof(resp) - 1 - len, 0)) > 0)
		len += (size_t)n;
	close(fd);
	resp[len] = 0;
	cr_assert_eq(sscanf(resp, "HTTP/1.%*d %d", &status), 1, "no status line: %s", resp);
	p = strstr(resp, "\r\n\r\n");
	cr_assert_not_null(p, "no end of headers: %s", resp);
	snprintf(body, bodysz, "%s", p + 4);
	return status;
}

#define GET(path) "GET " path " HTTP/1.0\r\n\r\n"

Test(http, serve_over_a_socket)
{
	struct mcfs_http *h = NULL, *h2 = NULL;
	struct mcfs_http_snapshot s;
	uint16_t port = free_port();
	char body[8192];

	cr_assert_eq(mcfs_http_start("127.0.0.1", port, &h), 0);

	/* Before any publish: starting, not healthy, metrics all zero. */
	cr_assert_eq(http(port, GET("/role"), body, sizeof(body)), 200);
	cr_assert_str_eq(body, "starting\n");
	cr_assert_eq(http(port, GET("/health"), body, sizeof(body)), 503);
	cr_assert_str_eq(body, "starting\n");
	cr_assert_eq(http(port, GET("/metrics"), body, sizeof(body)), 200);
	cr_assert_eq(sample(body, "mcfs_master_leader"), 0);

	snap_fill(&s, "leader");
	cr_assert_eq(mcfs_http_publish(h, &s), 0);
	cr_assert_eq(http(port, GET("/role"), body, sizeof(body)), 200);
	cr_assert_str_eq(body, "leader\n");
	cr_assert_eq(http(port, GET("/health"), body, sizeof(body)), 200);
	cr_assert_str_eq(body, "ok\n");
	cr_assert_eq(http(port, GET("/metrics?x=1"), body, sizeof(body)), 200);
	cr_assert_eq(sample(body, "mcfs_master_requests_total{type=\"GET\"}"), 42);
	cr_assert_eq(http(port, "HEAD /metrics HTTP/1.0\r\n\r\n", body, sizeof(body)), 200);
	cr_assert_str_eq(body, "");

	cr_assert_eq(http(port, GET("/"), body, sizeof(body)), 404);
	cr_assert_eq(http(port, GET("/role/x"), body, sizeof(body)), 404);
	cr_assert_eq(
	    http(port, "POST /role HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", body, sizeof(body)),
	    405);
	cr_assert_eq(http(port, "DELETE /metrics HTTP/1.0\r\n\r\n", body, sizeof(body)), 405);

	snap_fill(&s, "recovering");
	cr_assert_eq(mcfs_http_publish(h, &s), 0);
	cr_assert_eq(http(port, GET("/health"), body, sizeof(body)), 503);
	cr_assert_str_eq(body, "recovering\n");

	/* The port is taken; stopping gives it back. */
	cr_assert_eq(mcfs_http_start("127.0.0.1", port, &h2), -EADDRINUSE);
	cr_assert_null(h2);
	mcfs_http_stop(h);
	cr_assert_eq(mcfs_http_start("127.0.0.1", port, &h2), 0);
	mcfs_http_stop(h2);
	mcfs_http_stop(NULL);
}

Test(http, publish_checks_the_role)
{
	static const char *const bad[] = {"", "Leader", "lead er", "leader\n", "x1"};
	struct mcfs_http_snapshot s;
	struct mcfs_http *h;
	char body[256];
	uint16_t port = free_port();

	cr_assert_eq(mcfs_http_start("127.0.0.1", port, &h), 0);
	snap_fill(&s, "standby");
	cr_assert_eq(mcfs_http_publish(h, &s), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snap_fill(&s, bad[i]);
		cr_assert_eq(mcfs_http_publish(h, &s), -EINVAL, "'%s' accepted", bad[i]);
	}
	memset(s.role, 'a', sizeof(s.role)); /* not NUL-terminated */
	cr_assert_eq(mcfs_http_publish(h, &s), -EINVAL);
	cr_assert_eq(http(port, GET("/role"), body, sizeof(body)), 200);
	cr_assert_str_eq(body, "standby\n", "a rejected publish changed the role");
	mcfs_http_stop(h);
}

Test(http, start_errors)
{
	struct mcfs_http *h = NULL;

	cr_assert_eq(mcfs_http_start("192.0.2.1", free_port(), &h), -EADDRNOTAVAIL);
	cr_assert_eq(mcfs_http_start("127.0.0.1", 0, &h), -EINVAL);
	cr_assert_eq(mcfs_http_start(NULL, 7421, &h), -EINVAL);
	cr_assert_null(h);
}
