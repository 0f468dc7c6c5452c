// SPDX-License-Identifier: Apache-2.0
/*
 * Parsing of option values and clocks. crc32c comes from isa-l, which picks
 * the fastest instruction set at run time.
 */
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int mcfs_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	/* strtoull would skip blanks and negate: " -1" must not become 2^64 - 1. */
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'b' || *end == 'B') && shift)
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int mcfs_parse_duration_ms(const char *s, uint64_t *out)
{
	char *end;
	double v;
	double mul = 1000;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v >= 0)) /* NaN too: it cannot be converted */
		return -EINVAL;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60 * 1000;
	else if (!strcmp(end, "h"))
		mul = 3600 * 1000;
	else
		return -EINVAL;
	if (v * mul > 1e15)
		return -EINVAL;
	*out = (uint64_t)(v * mul);
	return 0;
}

int mcfs_parse_ratio(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 1))
		return -EINVAL;
	*out = v;
	return 0;
}

int mcfs_parse_hostport(const char *s, const char *def_host, char *host, size_t hostsz,
			uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	const char *p = colon ? colon + 1 : s;
	size_t hlen = colon ? (size_t)(colon - s) : 0;
	char *end;
	unsigned long v;

	/* "[::1]:7420": an IPv6 literal is bracketed so that its colons are not the port's. */
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
		if (!hlen)
			return -EINVAL;
	}
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || end == p || *end || v == 0 || v > 65535)
		return -EINVAL;
	if (hlen == 0) {
		if (strlen(def_host) >= hostsz)
			return -EINVAL;
		strcpy(host, def_host);
	} else {
		if (hlen >= hostsz)
			return -EINVAL;
		memcpy(host, s, hlen);
		host[hlen] = 0;
	}
	*port = (uint16_t)v;
	return 0;
}

uint64_t mcfs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t mcfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool mcfs_spin_readable(int fd, uint64_t poll_ns)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t start;

	if (!poll_ns)
		return false;
	start = mcfs_now_ns();
	for (;;) {
		sched_yield();
		if (poll(&p, 1, 0) > 0)
			return true;
		if (mcfs_now_ns() - start >= poll_ns)
			return false;
	}
}

int mcfs_fuse_wake_here(void)
{
	char c = 0;
	int fd = open("/sys/module/fuse/parameters/wake_here", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c == 'Y' || c == '1';
}

int64_t mcfs_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t mcfs_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* isa-l's crc32_iscsi takes and returns the raw register, and an int length. */
	crc = ~crc;
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;

		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return ~crc;
}
