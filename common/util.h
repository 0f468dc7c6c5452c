/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers every program needs: parsing sizes, durations, ratios and
 * HOST:PORT addresses from options; clocks; the crc32c of object contents.
 */
#ifndef MCFS_UTIL_H
#define MCFS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "64M", "1G", "4096", "2T" (powers of 1024). 0 or -EINVAL. */
int mcfs_parse_size(const char *s, uint64_t *out);
/* "10s", "500ms", "30m", "24h", plain numbers are seconds. Result in ms. 0 or -EINVAL. */
int mcfs_parse_duration_ms(const char *s, uint64_t *out);
/* "0.90". 0 or -EINVAL (must lie in [0, 1]). */
int mcfs_parse_ratio(const char *s, double *out);
/*
 * "HOST:PORT", ":PORT" or "PORT". host is written NUL-terminated into host
 * (hostsz bytes); an empty host becomes def_host. 0 or -EINVAL.
 */
int mcfs_parse_hostport(const char *s, const char *def_host, char *host, size_t hostsz,
			uint16_t *port);

/* A 64-bit integer mixer (murmur3's finaliser), for hash tables keyed by integers. */
static inline uint64_t mcfs_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Monotonic and wall clocks in milliseconds / nanoseconds. */
uint64_t mcfs_now_ms(void);
uint64_t mcfs_now_ns(void); /* monotonic */
int64_t mcfs_wall_ns(void);

/*
 * Look whether fd has something to read (or an error or hang-up to report)
 * for up to poll_ns, without sleeping; each look yields the CPU first, so
 * whatever else is runnable here (often the very thread being waited for,
 * on a machine with few cores) goes first. True as soon as it has, false
 * when the window passed (at once for 0). On virtual machines a sleeping
 * thread takes tens of microseconds to wake, as long as an answer from a
 * peer on this machine or a near one takes to come: every wait for the
 * next message looks this way for --poll-us before it sleeps.
 */
bool mcfs_spin_readable(int fd, uint64_t poll_ns);

/*
 * The fuse module's wake_here parameter, which some kernels have (mainline
 * Linux does not): with Y the kernel wakes a FUSE daemon asleep on
 * /dev/fuse on the CPU of the process that sent the request. 1 for Y, 0
 * for N, -1 where this kernel has no such parameter.
 */
int mcfs_fuse_wake_here(void);

/* crc32c (Castagnoli) of buf, continuing from crc (start with 0). */
uint32_t mcfs_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
