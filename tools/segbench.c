// SPDX-License-Identifier: Apache-2.0
/*
 * mcfs-segbench: throughput of the segment transport (transport/xport.h)
 * over loopback or between two hosts, to hold it against iperf3.
 *
 *   mcfs-segbench                       server and client in one process
 *   mcfs-segbench --serve 0.0.0.0:7600  a server only, until SIGINT
 *   mcfs-segbench --connect H:7600      a client only, against --serve
 *
 * For each size it reads (or with --write, writes) one range of that size
 * at the start of the segment, over and over for --seconds, from --threads
 * threads (each with its own connection), and prints GB/s (10^9 bytes/s)
 * and the median time of one transfer. Both sides sign and check grants
 * with a fixed secret: a benchmark, not a deployment.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "transport/xport.h"

#define NODE_ID	    1
#define SEG_ID	    1
#define MAX_SIZES   16
#define MAX_SAMPLES 100000

struct opts {
	uint64_t sizes[MAX_SIZES];
	int nsizes;
	double seconds;
	int threads;
	bool write;
	bool memcpy_ref;
	const char *serve;
	const char *connect;
	const char *xport;
	uint64_t seg_size;
	struct mcfs_xport_client_conf cc;
};

struct worker {
	pthread_t th;
	const struct opts *o;
	struct mcfs_xport_client *cl;
	const char *addr;
	uint64_t size;
	uint8_t *buf;
	uint64_t deadline_ms;
	uint64_t bytes;
	uint64_t n;
	uint64_t *lat_us; /* MAX_SAMPLES */
	int err;
};

static uint8_t secret[MCFS_GRANT_SECRET_LEN];
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mcfs-segbench [options]\n"
		   "  --sizes LIST      transfer sizes (default 1M,4M,16M,64M)\n"
		   "  --seconds S       time per size (default 2)\n"
		   "  --threads N       concurrent clients, one connection each (default 1)\n"
		   "  --write           measure writes instead of reads\n"
		   "  --chunk SIZE      bytes per request (client default)\n"
		   "  --depth N         requests in flight per connection (client default)\n"
		   "  --sockbuf SIZE    SO_SNDBUF/SO_RCVBUF (default: kernel autotuning)\n"
		   "  --seg-size SIZE   segment size (default: the largest size)\n"
		   "  --memcpy          also print memcpy of each size, for reference\n"
		   "  --transport NAME  tcp, rdma or auto (default tcp)\n"
		   "  --serve ADDR      run only a server on ADDR (HOST:PORT) until SIGINT\n"
		   "  --connect ADDR    run only the client, against a --serve\n");
}

static int parse_sizes(const char *s, struct opts *o)
{
	char *dup = strdup(s), *tok, *save = NULL;
	int ret = 0;

	if (!dup)
		return -ENOMEM;
	o->nsizes = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->nsizes == MAX_SIZES || mcfs_parse_size(tok, &o->sizes[o->nsizes]) ||
		    !o->sizes[o->nsizes]) {
			ret = -EINVAL;
			break;
		}
		o->nsizes++;
	}
	free(dup);
	return ret ? ret : o->nsizes ? 0 : -EINVAL;
}

static int parse_u32_size(const char *s, uint32_t *out)
{
	uint64_t v;

	if (mcfs_parse_size(s, &v) || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"sizes", required_argument, NULL, 's'},   {"seconds", required_argument, NULL, 't'},
	    {"threads", required_argument, NULL, 'n'}, {"write", no_argument, NULL, 'w'},
	    {"chunk", required_argument, NULL, 'c'},   {"depth", required_argument, NULL, 'd'},
	    {"sockbuf", required_argument, NULL, 'b'}, {"seg-size", required_argument, NULL, 'g'},
	    {"memcpy", no_argument, NULL, 'm'},	       {"transport", required_argument, NULL, 'x'},
	    {"serve", required_argument, NULL, 'S'},   {"connect", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	int c, bad = 0;

	*o = (struct opts){.seconds = 2, .threads = 1, .xport = "tcp"};
	parse_sizes("1M,4M,16M,64M", o);
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			bad |= parse_sizes(optarg, o) != 0;
			break;
		case 't':
			o->seconds = atof(optarg);
			bad |= o->seconds <= 0;
			break;
		case 'n':
			o->threads = atoi(optarg);
			bad |= o->threads < 1 || o->threads > 64;
			break;
		case 'w':
			o->write = true;
			break;
		case 'c':
			bad |= parse_u32_size(optarg, &o->cc.chunk) != 0;
			break;
		case 'd':
			o->cc.depth = (uint32_t)atoi(optarg);
			break;
		case 'b':
			bad |= parse_u32_size(optarg, &o->cc.sockbuf) != 0;
			break;
		case 'g':
			bad |= mcfs_parse_size(optarg, &o->seg_size) != 0;
			break;
		case 'm':
			o->memcpy_ref = true;
			break;
		case 'x':
			o->xport = optarg;
			break;
		case 'S':
			o->serve = optarg;
			break;
		case 'C':
			o->connect = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad = 1;
		}
	}
	if (bad || optind != argc || (o->serve && o->connect)) {
		usage(stderr);
		return -EINVAL;
	}
	if (!o->seg_size) {
		for (int i = 0; i < o->nsizes; i++)
			if (o->sizes[i] > o->seg_size)
				o->seg_size = o->sizes[i];
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct mcfs_grant g = {
	    .node_id = NODE_ID,
	    .seg_id = SEG_ID,
	    .access = w->o->write ? MCFS_GRANT_WRITE : MCFS_GRANT_READ,
	    .offset = 0,
	    .len = w->size,
	    .expiry_ms = mcfs_grant_now_ms() + 3600 * 1000,
	};
	uint64_t t0, t1;

	mcfs_grant_sign(&g, secret);
	do {
		t0 = mcfs_wall_ns();
		w->err = w->o->write ? mcfs_xport_write(w->cl, w->addr, &g, 0, w->buf, w->size)
				     : mcfs_xport_read(w->cl, w->addr, &g, 0, w->buf, w->size);
		t1 = mcfs_wall_ns();
		if (w->err)
			break;
		if (w->n < MAX_SAMPLES)
			w->lat_us[w->n] = (t1 - t0) / 1000;
		w->n++;
		w->bytes += w->size;
	} while (mcfs_now_ms() < w->deadline_ms || w->n < 3);
	return NULL;
}

/* "4 KiB", "64 MiB", "1000 B": sizes as people wrote them. */
static const char *human(uint64_t size, char *buf, size_t bufsz)
{
	if (size >= (1 << 20) && !(size % (1 << 20)))
		snprintf(buf, bufsz, "%llu MiB", (unsigned long long)(size >> 20));
	else if (size >= 1024 && !(size % 1024))
		snprintf(buf, bufsz, "%llu KiB", (unsigned long long)(size >> 10));
	else
		snprintf(buf, bufsz, "%llu B", (unsigned long long)size);
	return buf;
}

static int run_size(const struct opts *o, struct mcfs_xport_client *cl, const char *addr,
		    uint64_t size)
{
	char sizebuf[32];
	struct worker *w = calloc((size_t)o->threads, sizeof(*w));
	uint64_t bytes = 0, n = 0, nlat = 0, *lat;
	int64_t t0, t1;
	int i, err = 0;
	double secs;

	lat = calloc((size_t)o->threads * MAX_SAMPLES, sizeof(*lat));
	if (!w || !lat) {
		free(w);
		free(lat);
		return -ENOMEM;
	}
	for (i = 0; i < o->threads; i++) {
		w[i] = (struct worker){.o = o,
				       .cl = cl,
				       .addr = addr,
				       .size = size,
				       .deadline_ms = mcfs_now_ms() + (uint64_t)(o->seconds * 1000),
				       .lat_us = lat + (size_t)i * MAX_SAMPLES};
		w[i].buf = malloc(size);
		if (!w[i].buf) {
			err = -ENOMEM;
			break;
		}
		memset(w[i].buf, 0x5a, size); /* fault it in before the clock matters */
	}
	t0 = mcfs_wall_ns();
	for (int j = 0; j < i; j++)
		pthread_create(&w[j].th, NULL, worker_main, &w[j]);
	for (int j = 0; j < i; j++) {
		pthread_join(w[j].th, NULL);
		if (w[j].err && !err)
			err = w[j].err;
	}
	t1 = mcfs_wall_ns();
	for (int j = 0; j < i; j++) {
		uint64_t k = w[j].n < MAX_SAMPLES ? w[j].n : MAX_SAMPLES;

		memmove(lat + nlat, w[j].lat_us, k * sizeof(*lat));
		nlat += k;
		bytes += w[j].bytes;
		n += w[j].n;
		free(w[j].buf);
	}
	secs = (double)(t1 - t0) / 1e9;
	if (err) {
		fprintf(stderr, "segbench: %s of %llu bytes failed: %s\n",
			o->write ? "write" : "read", (unsigned long long)size, strerror(-err));
	} else {
		qsort(lat, nlat, sizeof(*lat), cmp_u64);
		printf("%-5s %8s x%d: %6.2f GB/s  (%llu transfers in %.2f s, p50 %llu us)\n",
		       o->write ? "write" : "read", human(size, sizebuf, sizeof(sizebuf)),
		       o->threads, (double)bytes / secs / 1e9, (unsigned long long)n, secs,
		       (unsigned long long)(nlat ? lat[nlat / 2] : 0));
	}
	fflush(stdout);
	free(lat);
	free(w);
	return err;
}

static void run_memcpy(const struct opts *o, uint8_t *seg, uint64_t size)
{
	uint8_t *buf = malloc(size);
	uint64_t n = 0, deadline = mcfs_now_ms() + (uint64_t)(o->seconds * 1000);
	char sizebuf[32];
	int64_t t0, t1;

	if (!buf)
		return;
	memset(buf, 1, size);
	t0 = mcfs_wall_ns();
	do {
		memcpy(buf, seg, size);
		__asm__ volatile("" ::"r"(buf) : "memory");
		n++;
	} while (mcfs_now_ms() < deadline);
	t1 = mcfs_wall_ns();
	printf("memcpy %8s   : %6.2f GB/s\n", human(size, sizebuf, sizeof(sizebuf)),
	       (double)(n * size) / ((double)(t1 - t0) / 1e9) / 1e9);
	free(buf);
}

int main(int argc, char **argv)
{
	const struct mcfs_xport_ops *ops;
	struct mcfs_xport_server *srv = NULL;
	struct mcfs_xport_client *cl = NULL;
	struct mcfs_xport_server_conf sc = {0};
	struct opts o;
	char host[256];
	const char *addr;
	uint8_t *seg = NULL;
	int ret = 0, i;

	if (parse_opts(argc, argv, &o))
		return 2;
	for (i = 0; i < MCFS_GRANT_SECRET_LEN; i++)
		secret[i] = (uint8_t)(i * 7 + 3);
	if (mcfs_xport_lookup(o.xport, &ops)) {
		fprintf(stderr, "segbench: unknown transport %s\n", o.xport);
		return 2;
	}

	if (!o.connect) {
		seg = mmap(NULL, o.seg_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
		if (seg == MAP_FAILED) {
			perror("segbench: mmap");
			return 1;
		}
		memset(seg, 0xa5, o.seg_size); /* pre-faulted, as the DRAM tier does */
		sc = (struct mcfs_xport_server_conf){.host = "127.0.0.1",
						     .seg_base = seg,
						     .seg_size = o.seg_size,
						     .sockbuf = o.cc.sockbuf};
		if (o.serve &&
		    mcfs_parse_hostport(o.serve, "0.0.0.0", host, sizeof(host), &sc.port)) {
			fprintf(stderr, "segbench: bad address %s\n", o.serve);
			return 2;
		}
		if (o.serve)
			sc.host = host;
		ret = mcfs_xport_server_create(ops, &sc, &srv);
		if (!ret)
			ret = mcfs_xport_server_start(srv, NODE_ID, SEG_ID, secret);
		if (ret) {
			fprintf(stderr, "segbench: server: %s\n", strerror(-ret));
			goto out;
		}
	}
	if (o.serve) {
		struct sigaction sa = {.sa_handler = on_signal};

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		printf("serving %llu bytes on %s\n", (unsigned long long)o.seg_size,
		       mcfs_xport_server_addr(srv));
		fflush(stdout);
		while (!stop)
			pause();
		goto out;
	}

	addr = o.connect ? o.connect : mcfs_xport_server_addr(srv);
	ret = mcfs_xport_client_create(ops, &o.cc, &cl);
	if (ret) {
		fprintf(stderr, "segbench: client: %s\n", strerror(-ret));
		goto out;
	}
	printf("segbench: %s %s via %s, %d thread(s), %.1f s per size\n",
	       o.write ? "write" : "read", addr, ops->name, o.threads, o.seconds);
	for (i = 0; i < o.nsizes && !ret; i++) {
		if (o.sizes[i] > o.seg_size) {
			fprintf(stderr, "segbench: %llu bytes do not fit the segment\n",
				(unsigned long long)o.sizes[i]);
			ret = -EINVAL;
			break;
		}
		ret = run_size(&o, cl, addr, o.sizes[i]);
		if (!ret && o.memcpy_ref && seg)
			run_memcpy(&o, seg, o.sizes[i]);
	}

out:
	mcfs_xport_client_destroy(cl);
	mcfs_xport_server_destroy(srv);
	if (seg && seg != MAP_FAILED)
		munmap(seg, o.seg_size);
	return ret ? 1 : 0;
}
