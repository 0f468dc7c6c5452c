// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of common/: option value parsers (sizes, durations, ratios,
 * HOST:PORT) with their edge cases, crc32c, the byte buffer, and the config
 * file reader, including its "FILE:LINE:" error reports.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/conf.h"
#include "common/log.h"
#include "common/util.h"

Test(util, parse_size)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
	    {"0", 0},
	    {"4096", 4096},
	    {"1k", 1024},
	    {"1K", 1024},
	    {"64M", 64ull << 20},
	    {"64MiB", 64ull << 20},
	    {"64MB", 64ull << 20},
	    {"1G", 1ull << 30},
	    {"4g", 4ull << 30},
	    {"2T", 2ull << 40},
	    {"16777215T", 16777215ull << 40},
	    {"18446744073709551615", UINT64_MAX},
	};
	static const char *const bad[] = {
	    "",	   "-1",   " -1", " 1",	   "1.5G",	"1 G",
	    "1X",  "G",	   "1B",  "1GiBx", "16777216T", "18446744073709551616",
	    "1KK", "0x10", "+5",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		cr_assert_eq(mcfs_parse_size(ok[i].s, &v), 0, "'%s'", ok[i].s);
		cr_assert_eq(v, ok[i].v, "'%s' -> %llu", ok[i].s, (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		cr_assert_eq(mcfs_parse_size(bad[i], &v), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert_eq(v, 12345, "'%s' wrote the output", bad[i]);
	}
	cr_assert_eq(mcfs_parse_size(NULL, &v), -EINVAL);
}

Test(util, parse_duration)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} ok[] = {
	    {"0", 0},	      {"10", 10000},	 {"10s", 10000}, {"500ms", 500},  {"1.5s", 1500},
	    {"30m", 1800000}, {"24h", 86400000}, {"0.5ms", 0},	 {"1e3ms", 1000},
	};
	static const char *const bad[] = {
	    "", "-1", " -1", "-0", "10x", "10 s", "s", "ms", "10sec", "nan", "inf", "1e300h",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		cr_assert_eq(mcfs_parse_duration_ms(ok[i].s, &v), 0, "'%s'", ok[i].s);
		cr_assert_eq(v, ok[i].ms, "'%s' -> %llu", ok[i].s, (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mcfs_parse_duration_ms(bad[i], &v), -EINVAL, "'%s' accepted", bad[i]);
	cr_assert_eq(mcfs_parse_duration_ms(NULL, &v), -EINVAL);
}

Test(util, parse_ratio)
{
	static const char *const bad[] = {"", "-0.1", "1.01", "2", "nan", "inf", "0.5x", "x"};
	double v;

	cr_assert_eq(mcfs_parse_ratio("0.90", &v), 0);
	cr_assert_float_eq(v, 0.90, 1e-12);
	cr_assert_eq(mcfs_parse_ratio("0", &v), 0);
	cr_assert_float_eq(v, 0.0, 1e-12);
	cr_assert_eq(mcfs_parse_ratio("1", &v), 0);
	cr_assert_float_eq(v, 1.0, 1e-12);
	cr_assert_eq(mcfs_parse_ratio(".05", &v), 0);
	cr_assert_float_eq(v, 0.05, 1e-12);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mcfs_parse_ratio(bad[i], &v), -EINVAL, "'%s' accepted", bad[i]);
	cr_assert_eq(mcfs_parse_ratio(NULL, &v), -EINVAL);
}

Test(util, parse_hostport)
{
	static const struct {
		const char *s, *host;
		uint16_t port;
	} ok[] = {
	    {"127.0.0.1:7420", "127.0.0.1", 7420},
	    {"node-a.example:1", "node-a.example", 1},
	    {":7421", "dflt", 7421},
	    {"7422", "dflt", 7422},
	    {"host:65535", "host", 65535},
	    {"[::1]:7420", "::1", 7420},
	    {"::1:7420", "::1", 7420},
	};
	static const char *const bad[] = {
	    "",	       ":",	  "host:",   "host:0",	"host:65536",
	    "host:-1", "host:+5", "host: 5", "host:5x", "host:99999999999999999999",
	    "host",    "[]:7420",
	};
	char host[64], small[4];
	uint16_t port;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(mcfs_parse_hostport(ok[i].s, "dflt", host, sizeof(host), &port), 0,
			     "'%s'", ok[i].s);
		cr_assert_str_eq(host, ok[i].host, "'%s'", ok[i].s);
		cr_assert_eq(port, ok[i].port, "'%s'", ok[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mcfs_parse_hostport(bad[i], "dflt", host, sizeof(host), &port),
			     -EINVAL, "'%s' accepted", bad[i]);
	/* The host must fit, NUL included, and so must the default. */
	cr_assert_eq(mcfs_parse_hostport("abc:1", "d", small, sizeof(small), &port), 0);
	cr_assert_str_eq(small, "abc");
	cr_assert_eq(mcfs_parse_hostport("abcd:1", "d", small, sizeof(small), &port), -EINVAL);
	cr_assert_eq(mcfs_parse_hostport(":1", "dflt", small, sizeof(small), &port), -EINVAL);
}

Test(util, crc32c)
{
	/* The standard check value of CRC-32C. */
	cr_assert_eq(mcfs_crc32c(0, "123456789", 9), 0xe3069283);
	cr_assert_eq(mcfs_crc32c(0, "", 0), 0);
	/* Continuing from a previous crc is the same as one pass. */
	cr_assert_eq(mcfs_crc32c(mcfs_crc32c(0, "12345", 5), "6789", 4), 0xe3069283);
}

Test(util, clocks)
{
	uint64_t a = mcfs_now_ms();

	usleep(20000);
	cr_assert_geq(mcfs_now_ms() - a, 15);
	cr_assert_gt(mcfs_wall_ns(), 1600000000ll * 1000000000ll);
}

Test(util, buf_and_reader)
{
	struct mcfs_buf b;
	struct mcfs_rd r;

	mcfs_buf_init(&b);
	mcfs_buf_put_u8(&b, 0x01);
	mcfs_buf_put_u16(&b, 0x0302);
	mcfs_buf_put_u32(&b, 0x07060504);
	mcfs_buf_put_u64(&b, 0x0f0e0d0c0b0a0908ull);
	cr_assert_eq(b.len, 15);
	for (int i = 0; i < 15; i++)
		cr_assert_eq(b.data[i], i + 1, "little-endian byte %d", i);
	mcfs_buf_set_u32(&b, 1, 0xaabbccdd);
	mcfs_buf_set_u32(&b, 12, 0); /* past the end: ignored */
	cr_assert_eq(b.len, 15);
	cr_assert_eq(b.data[12], 13);

	mcfs_rd_init(&r, b.data, b.len);
	cr_assert_eq(mcfs_rd_u8(&r), 0x01);
	cr_assert_eq(mcfs_rd_u32(&r), 0xaabbccdd);
	cr_assert_eq(mcfs_rd_u16(&r), 0x0706);
	cr_assert_eq(mcfs_rd_u64(&r), 0x0f0e0d0c0b0a0908ull);
	cr_assert_not(r.err);
	cr_assert_eq(mcfs_rd_left(&r), 0);
	/* Past the end: zero, and the error sticks even for a read that would fit. */
	cr_assert_eq(mcfs_rd_u32(&r), 0);
	cr_assert(r.err);
	mcfs_rd_init(&r, b.data, 3);
	cr_assert_null(mcfs_rd_bytes(&r, 4));
	cr_assert_eq(mcfs_rd_u8(&r), 0);
	cr_assert(r.err);
	mcfs_rd_init(&r, b.data, 3);
	cr_assert_null(mcfs_rd_bytes(&r, SIZE_MAX));

	mcfs_buf_consume(&b, 4);
	cr_assert_eq(b.len, 11);
	cr_assert_eq(b.data[0], 0xaa);
	mcfs_buf_consume(&b, 100);
	cr_assert_eq(b.len, 0);
	/* Growing a lot at once. */
	cr_assert_eq(mcfs_buf_reserve(&b, 1 << 20), 0);
	cr_assert_geq(b.cap, 1 << 20);
	cr_assert_eq(mcfs_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	cr_assert(b.oom);
	mcfs_buf_fini(&b);
	cr_assert_null(b.data);
}

/* The config reader's view of a file: the settings it passed on, in order. */
struct seen {
	int n;
	char name[16][64];
	char value[16][256];
	int fail_at; /* return -EINVAL for this setting (1-based), or 0 */
};

static int record(void *ctx, const char *name, const char *value)
{
	struct seen *s = ctx;

	if (!strcmp(name, "unknown-option"))
		return -ENOENT;
	cr_assert_lt(s->n, 16);
	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", name);
	snprintf(s->value[s->n], sizeof(s->value[0]), "%s", value);
	s->n++;
	return s->n == s->fail_at ? -EINVAL : 0;
}

static char tmp_path[64];

static const char *write_tmp(const char *text)
{
	int fd;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/mcfs-test-conf-XXXXXX");
	fd = mkstemp(tmp_path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return tmp_path;
}

/* Load text as a config file; what was logged goes to *log (caller frees). */
static int load_text(const char *text, struct seen *s, char **log)
{
	char log_path[] = "/tmp/mcfs-test-log-XXXXXX";
	const char *path = write_tmp(text);
	int logfd = mkstemp(log_path), saved, ret;
	FILE *f;
	long n;

	cr_assert_geq(logfd, 0);
	fflush(stderr);
	saved = dup(2);
	dup2(logfd, 2);
	ret = mcfs_conf_load(path, record, s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(logfd);
	f = fopen(log_path, "r");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	*log = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(*log, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	unlink(log_path);
	unlink(path);
	return ret;
}

Test(conf, forms)
{
	struct seen s = {0};
	char *log;
	int ret;

	ret = load_text("# a comment\n"
			"\n"
			"   \t\n"
			"segment-size = 4G\n"
			"replicas 2\n"
			"  lease-ttl=10s  \n"
			"node-name = \"rack 1 # a\"\n"
			"verbose\n"
			"token-file = /etc/mcfs/token # the secret\n"
			"data-dir /var/lib/mcfs#x\n"
			"windows = crlf\r\n"
			"last = no newline",
			&s, &log);
	cr_assert_eq(ret, 0, "log: %s", log);
	cr_assert_eq(s.n, 9);
	static const char *const want[][2] = {
	    {"segment-size", "4G"},	     {"replicas", "2"},	  {"lease-ttl", "10s"},
	    {"node-name", "rack 1 # a"},     {"verbose", ""},	  {"token-file", "/etc/mcfs/token"},
	    {"data-dir", "/var/lib/mcfs#x"}, {"windows", "crlf"}, {"last", "no newline"},
	};
	for (int i = 0; i < 9; i++) {
		cr_assert_str_eq(s.name[i], want[i][0]);
		cr_assert_str_eq(s.value[i], want[i][1], "%s", want[i][0]);
	}
	cr_assert_str_empty(log);
	free(log);
}

Test(conf, empty_file)
{
	struct seen s = {0};
	char *log;

	cr_assert_eq(load_text("", &s, &log), 0);
	cr_assert_eq(s.n, 0);
	free(log);
}

Test(conf, long_line)
{
	struct seen s = {0};
	char *text = malloc(10000), *log;

	memcpy(text, "data-dir = /", 12);
	memset(text + 12, 'x', 9000);
	text[9012] = 0;
	cr_assert_eq(load_text(text, &s, &log), 0);
	cr_assert_eq(s.n, 1);
	/* The record truncates to its own buffer; the reader did not. */
	cr_assert_eq(strlen(s.value[0]), 255);
	free(text);
	free(log);
}

/* Each error names FILE:LINE; the settings before it were applied. */
static void expect_error(const char *text, int line, const char *what, int fail_at)
{
	struct seen s = {.fail_at = fail_at};
	char where[128], *log;

	cr_assert_eq(load_text(text, &s, &log), -EINVAL, "accepted: %s", text);
	snprintf(where, sizeof(where), "%s:%d: ", tmp_path, line);
	cr_assert_not_null(strstr(log, where), "want '%s' in log: %s", where, log);
	cr_assert_not_null(strstr(log, what), "want '%s' in log: %s", what, log);
	free(log);
}

Test(conf, errors)
{
	expect_error("a = 1\n\nunknown-option = 3\nb = 2\n", 3, "unknown option 'unknown-option'",
		     0);
	expect_error("a = 1\n# c\nlease-ttl = x\n", 3, "lease-ttl: bad value 'x'", 2);
	expect_error("= 4G\n", 1, "missing option name", 0);
	expect_error("a = 1\n[section]\n", 2, "sections are not supported", 0);
	expect_error("\nname = \"open\n", 2, "unterminated", 0);
	expect_error("name = \"a\" b\n", 1, "after the quoted value", 0);
}

Test(conf, nul_byte)
{
	struct seen s = {0};
	char path[] = "/tmp/mcfs-test-conf-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "a = 1\nb = x\0y\n", 14), 14);
	close(fd);
	cr_assert_eq(mcfs_conf_load(path, record, &s), -EINVAL);
	cr_assert_eq(s.n, 1);
	unlink(path);
}

Test(conf, missing_file)
{
	struct seen s = {0};

	cr_assert_eq(mcfs_conf_load("/nonexistent/mcfs.conf", record, &s), -ENOENT);
	cr_assert_eq(mcfs_conf_load("/", record, &s), -EISDIR);
	cr_assert_eq(s.n, 0);
}

/* Looking without sleeping: readable at once, or not within the window, or not at all for 0. */
Test(util, spin_readable)
{
	int p[2];
	uint64_t t0;

	cr_assert_eq(pipe(p), 0);
	cr_assert_not(mcfs_spin_readable(p[0], 0));
	t0 = mcfs_now_ns();
	cr_assert_not(mcfs_spin_readable(p[0], 2000000)); /* 2 ms, nothing written */
	cr_assert_geq(mcfs_now_ns() - t0, 2000000, "gave up before its window");
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert(mcfs_spin_readable(p[0], 2000000));
	cr_assert_not(mcfs_spin_readable(p[0], 0), "0 never looks");
	close(p[1]);
	cr_assert(mcfs_spin_readable(p[0], 1000), "a hang-up is something to read");
	close(p[0]);
}
