// SPDX-License-Identifier: Apache-2.0
/*
 * mcfs-masterbench: the metadata master's request rate and memory per
 * object (PERFORMANCE.md: ">= 200 K ops/s on one core, batched" and "<= 150
 * bytes per object plus the key, measured with a million objects").
 *
 *   mcfs-masterbench [--objects N] [--batch B] [--dirs D] [--size BYTES]
 *
 * It starts the real mcfs-master (the one next to this program) on a free
 * port of 127.0.0.1, joins it as one node, and drives it over TCP with
 * BATCH frames of B requests, the way a busy node would: CREATE, PUT_START
 * and PUT_END for N files spread over D directories, then GET of every
 * file. The master serves all requests on one thread; besides the wall
 * time of each phase it reports the CPU time of the master's serving thread
 * (/proc/PID/schedstat), so "ops per master CPU second" is the rate one core of the
 * master sustains whatever the client costs. Memory: the master's resident
 * set after the puts minus before them, per object, and the same less the
 * key (the file's name) — the figure PERFORMANCE.md budgets.
 *
 * Every process it starts is stopped (by PID) before it exits.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/util.h"
#include "meta/client.h"
#include "meta/proto.h"
#include "tools/proc_rss.h"
#include "transport/frame.h"

struct opts {
	unsigned long objects;
	unsigned long batch;
	unsigned long dirs;
	unsigned long size;
};

static pid_t master_pid;

static void stop_master(void)
{
	int st;

	if (master_pid <= 0)
		return;
	kill(master_pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(master_pid, &st, WNOHANG) == master_pid) {
			master_pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(master_pid, SIGKILL);
	waitpid(master_pid, &st, 0);
	master_pid = 0;
}

static void on_signal(int sig)
{
	stop_master();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A port of 127.0.0.1 nobody listens on now (the master binds it just after). */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Wait up to 5 s for something to listen on 127.0.0.1:port. 0 or -1. */
static int wait_listen(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	a.sin_port = htons((uint16_t)port);
	for (int i = 0; i < 500; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		if (fd < 0)
			return -1;
		ok = !connect(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (ok)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* The mcfs-master that sits next to this program. */
static int master_path(char *out, size_t outsz)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(out, outsz, "%s/mcfs-master", self) >= outsz)
		return -1;
	return access(out, X_OK);
}

static int start_master(uint16_t port)
{
	char path[PATH_MAX], listen[64];

	if (master_path(path, sizeof(path))) {
		fprintf(stderr, "mcfs-masterbench: no mcfs-master next to this program\n");
		return -1;
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	master_pid = fork();
	if (master_pid < 0)
		return -1;
	if (!master_pid) {
		/* A lease long enough that no object is retired or evicted mid-run. */
		/*
		 * No polling between requests: the master's CPU time is then its
		 * work alone (with polling, a master waiting for the next batch
		 * spins, and counts that too).
		 */
		execl(path, "mcfs-master", "--listen", listen, "--http", "off", "--lease-ttl",
		      "10m", "--high-watermark", "1.0", "--poll-us", "0", (char *)NULL);
		_exit(127);
	}
	return 0;
}

/*
 * CPU time of the master's main thread (the one that serves requests), in
 * seconds: /proc/PID/schedstat counts it in nanoseconds (stat's utime and
 * stime tick in 10 ms, too coarse around one batch).
 */
static double master_cpu_s(void)
{
	unsigned long long ns = 0;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)master_pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return (double)ns / 1e9;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One batch of requests in flight: the frames, and the answers decoded. */
struct batch {
	struct mcfs_buf frames;
	struct mcfs_buf rbuf;
	uint32_t n;
};

static int batch_add(struct batch *b, struct mcfs_msg *q)
{
	q->req_id = b->n + 1;
	b->n++;
	return mcfs_msg_encode(q, &b->frames);
}

/*
 * Send the batch; each_resp() sees every answer in order. 0, or the first
 * error (transport, or a sub-request's status).
 */
static int batch_run(struct mcfs_mc *mc, struct batch *b, uint32_t first,
		     int (*each_resp)(void *arg, uint32_t i, const struct mcfs_msg *r), void *arg)
{
	struct mcfs_msg q, r, sub;
	struct mcfs_rd rd;
	int ret;

	if (!b->n)
		return 0;
	memset(&q, 0, sizeof(q));
	q.type = MCFS_MSG_BATCH;
	q.count = b->n;
	q.value.p = b->frames.data;
	q.value.len = (uint32_t)b->frames.len;
	ret = mcfs_mc_call(mc, &q, &r, &b->rbuf);
	if (ret) {
		fprintf(stderr, "mcfs-masterbench: BATCH: %s\n", strerror(-ret));
		return ret;
	}
	rd.p = r.value.p;
	rd.len = r.value.len;
	rd.off = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		struct mcfs_frame_hdr h;

		ret = mcfs_frame_parse(rd.p + rd.off, rd.len - rd.off, &h);
		if (!ret)
			ret = mcfs_msg_decode(&h, rd.p + rd.off + MCFS_FRAME_HDR, &sub);
		if (ret) {
			fprintf(stderr, "mcfs-masterbench: bad answer in a batch\n");
			return -EBADMSG;
		}
		rd.off += MCFS_FRAME_HDR + h.len;
		if (sub.status) {
			fprintf(stderr, "mcfs-masterbench: %s: %s\n", mcfs_msg_name(sub.type),
				strerror(-sub.status));
			return sub.status;
		}
		if (each_resp && (ret = each_resp(arg, first + i, &sub)))
			return ret;
	}
	b->frames.len = 0;
	b->n = 0;
	return 0;
}

struct state {
	const struct opts *o;
	uint64_t *dir_ino;
	uint64_t *ino;
	uint64_t *put_id;
	uint64_t *version;
	uint64_t key_bytes;
};

static int got_dir(void *arg, uint32_t i, const struct mcfs_msg *r)
{
	((struct state *)arg)->dir_ino[i] = r->attr.ino;
	return 0;
}

static int got_create(void *arg, uint32_t i, const struct mcfs_msg *r)
{
	((struct state *)arg)->ino[i] = r->attr.ino;
	return 0;
}

static int got_put_start(void *arg, uint32_t i, const struct mcfs_msg *r)
{
	((struct state *)arg)->put_id[i] = r->put_id;
	return 0;
}

static int got_put_end(void *arg, uint32_t i, const struct mcfs_msg *r)
{
	((struct state *)arg)->version[i] = r->attr.version;
	return 0;
}

static int got_get(void *arg, uint32_t i, const struct mcfs_msg *r)
{
	struct state *s = arg;

	if (r->attr.version != s->version[i] || r->nrep != 1) {
		fprintf(stderr, "mcfs-masterbench: GET of file %u: version %llu, %u replicas\n", i,
			(unsigned long long)r->attr.version, r->nrep);
		return -EPROTO;
	}
	return 0;
}

enum phase { P_CREATE, P_PUT_START, P_PUT_END, P_GET, NPHASES };
static const char *const phase_name[NPHASES] = {"CREATE", "PUT_START", "PUT_END", "GET"};

/* Build request i of phase p into q; name is scratch for the key. */
static void build(const struct state *s, enum phase p, unsigned long i, struct mcfs_msg *q,
		  char *name, size_t namesz)
{
	memset(q, 0, sizeof(*q));
	switch (p) {
	case P_CREATE:
		q->type = MCFS_MSG_CREATE;
		q->ino = s->dir_ino[i % s->o->dirs];
		snprintf(name, namesz, "kv_%012lu.bin", i);
		q->name.p = (const uint8_t *)name;
		q->name.len = (uint32_t)strlen(name);
		q->mode = 0100644;
		break;
	case P_PUT_START:
		q->type = MCFS_MSG_PUT_START;
		q->ino = s->ino[i];
		q->size = s->o->size;
		break;
	case P_PUT_END:
		q->type = MCFS_MSG_PUT_END;
		q->put_id = s->put_id[i];
		q->size = s->o->size;
		q->crc = (uint32_t)i;
		break;
	case P_GET:
		q->type = MCFS_MSG_GET;
		q->ino = s->ino[i];
		break;
	default:
		break;
	}
}

static int (*const phase_cb[NPHASES])(void *, uint32_t, const struct mcfs_msg *) = {
    got_create, got_put_start, got_put_end, got_get};

/*
 * Requests [lo, hi) of phase p, in batches; the wall and master CPU time
 * they took are added to *wall and *cpu.
 */
static int run_phase(struct mcfs_mc *mc, struct state *s, enum phase p, unsigned long lo,
		     unsigned long hi, double *wall, double *cpu)
{
	struct batch b;
	struct mcfs_msg q;
	char name[64];
	double t0, c0;
	unsigned long first = lo;
	int ret = 0;

	memset(&b, 0, sizeof(b));
	mcfs_buf_init(&b.frames);
	mcfs_buf_init(&b.rbuf);
	c0 = master_cpu_s();
	t0 = now_s();
	for (unsigned long i = lo; i < hi && !ret; i++) {
		build(s, p, i, &q, name, sizeof(name));
		if (p == P_CREATE)
			s->key_bytes += q.name.len;
		ret = batch_add(&b, &q);
		if (!ret && (b.n == s->o->batch || i + 1 == hi)) {
			ret = batch_run(mc, &b, (uint32_t)first, phase_cb[p], s);
			first = i + 1;
		}
	}
	*wall += now_s() - t0;
	*cpu += master_cpu_s() - c0;
	mcfs_buf_fini(&b.frames);
	mcfs_buf_fini(&b.rbuf);
	return ret;
}

/*
 * Give back the read holds that PUT_END (the writer's) or GET took, as a
 * node's daemon does when its last handle on a version closes.
 */
static int release(struct mcfs_mc *mc, const struct state *s, unsigned long lo, unsigned long hi)
{
	const unsigned long per = 50000; /* entries per RELEASE: 1 MiB */
	struct mcfs_buf v, rb;
	struct mcfs_msg q, r;
	int ret = 0;

	mcfs_buf_init(&v);
	mcfs_buf_init(&rb);
	for (unsigned long i = lo; i < hi && !ret; i++) {
		mcfs_buf_put_u64(&v, s->ino[i]);
		mcfs_buf_put_u64(&v, s->version[i]);
		mcfs_buf_put_u32(&v, 1);
		if ((i + 1 - lo) % per && i + 1 != hi)
			continue;
		if (v.oom) {
			ret = -ENOMEM;
			break;
		}
		memset(&q, 0, sizeof(q));
		q.type = MCFS_MSG_RELEASE;
		q.value.p = v.data;
		q.value.len = (uint32_t)v.len;
		ret = mcfs_mc_call(mc, &q, &r, &rb);
		v.len = 0;
	}
	if (ret)
		fprintf(stderr, "mcfs-masterbench: RELEASE: %s\n", strerror(-ret));
	mcfs_buf_fini(&v);
	mcfs_buf_fini(&rb);
	return ret;
}

/* Fetch every catalog change the puts queued for this node, as a node's SYNC does. */
static int drain_sync(struct mcfs_mc *mc)
{
	struct mcfs_msg q, r;
	struct mcfs_buf rb;
	int ret;

	mcfs_buf_init(&rb);
	do {
		memset(&q, 0, sizeof(q));
		q.type = MCFS_MSG_SYNC;
		q.count = 100000;
		ret = mcfs_mc_call(mc, &q, &r, &rb);
	} while (!ret && (r.flags & MCFS_SYNC_MORE));
	mcfs_buf_fini(&rb);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mcfs-masterbench [--objects N] [--batch B] [--dirs D] [--size BYTES]\n"
		   "  --objects N   files put and read (default 1000000)\n"
		   "  --batch B     requests per BATCH frame (default 1000)\n"
		   "  --dirs D      directories they are spread over (default 100)\n"
		   "  --size BYTES  size of each object (default 65536)\n");
}

static int parse_ul(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || end == s || *end || *s == '-' ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"objects", required_argument, NULL, 'n'}, {"batch", required_argument, NULL, 'b'},
	    {"dirs", required_argument, NULL, 'd'},    {"size", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0}};
	struct opts o = {.objects = 1000000, .batch = 1000, .dirs = 100, .size = 65536};
	double wall[NPHASES], cpu[NPHASES];
	struct state s = {.o = &o};
	struct mcfs_mc *mc = NULL;
	struct mcfs_msg q, r;
	struct mcfs_buf rb;
	long rss0, rss1;
	int c, port, ret = 1;
	unsigned long *v;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
		case 'b':
		case 'd':
		case 's':
			v = c == 'n'   ? &o.objects
			    : c == 'b' ? &o.batch
			    : c == 'd' ? &o.dirs
				       : &o.size;
			if (parse_ul(optarg, v) || !*v) {
				fprintf(stderr,
					"mcfs-masterbench: --%s: '%s' is not a number > 0\n",
					longopts[c == 'n'   ? 0
						 : c == 'b' ? 1
						 : c == 'd' ? 2
							    : 3]
					    .name,
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || o.batch > 20000 || o.objects > 100000000 || o.size > (1ul << 30)) {
		fprintf(stderr, "mcfs-masterbench: --batch at most 20000, --objects at most 1e8, "
				"--size at most 1 GiB\n");
		usage(stderr);
		return 2;
	}
	if (o.dirs > o.objects)
		o.dirs = o.objects;

	s.dir_ino = calloc(o.dirs, sizeof(*s.dir_ino));
	s.ino = calloc(o.objects, sizeof(*s.ino));
	s.put_id = calloc(o.objects, sizeof(*s.put_id));
	s.version = calloc(o.objects, sizeof(*s.version));
	if (!s.dir_ino || !s.ino || !s.put_id || !s.version) {
		fprintf(stderr, "mcfs-masterbench: out of memory\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	mcfs_buf_init(&rb);

	port = free_port();
	if (port <= 0 || start_master((uint16_t)port))
		goto out;
	if (wait_listen(port) || mcfs_mc_connect("127.0.0.1", (uint16_t)port, &mc)) {
		mc = NULL;
		fprintf(stderr, "mcfs-masterbench: the master did not come up on port %d\n", port);
		goto out;
	}

	memset(&q, 0, sizeof(q));
	q.type = MCFS_MSG_HELLO;
	q.proto = MCFS_PROTO_VERSION;
	q.name.p = (const uint8_t *)"bench";
	q.name.len = 5;
	q.name2.p = (const uint8_t *)"127.0.0.1:1";
	q.name2.len = 11;
	/* Room for every object, rounded to pages, and some. */
	q.size = (uint64_t)o.objects * ((o.size + 4095) & ~4095ul) + (64ul << 20);
	q.incarnation = (uint64_t)getpid();
	if ((ret = mcfs_mc_call(mc, &q, &r, &rb))) {
		fprintf(stderr, "mcfs-masterbench: HELLO: %s\n", strerror(-ret));
		ret = 1;
		goto out;
	}
	{
		struct batch b;
		char name[32];

		memset(&b, 0, sizeof(b));
		mcfs_buf_init(&b.frames);
		mcfs_buf_init(&b.rbuf);
		for (unsigned long d = 0; d < o.dirs && !ret; d++) {
			memset(&q, 0, sizeof(q));
			q.type = MCFS_MSG_MKDIR;
			q.ino = 1;
			snprintf(name, sizeof(name), "d%06lu", d);
			q.name.p = (const uint8_t *)name;
			q.name.len = (uint32_t)strlen(name);
			q.mode = 0755;
			ret = batch_add(&b, &q);
			if (!ret && (b.n == o.batch || d + 1 == o.dirs)) {
				ret = batch_run(mc, &b, (uint32_t)(d + 1 - b.n), got_dir, &s);
			}
		}
		mcfs_buf_fini(&b.frames);
		mcfs_buf_fini(&b.rbuf);
		if (ret) {
			ret = 1;
			goto out;
		}
	}

	/*
	 * A node has a batch of writes in flight at a time: create, stage
	 * (PUT_START), publish (PUT_END), then its writers close the files
	 * (RELEASE of their holds) and its catalog catches up (SYNC).
	 */
	memset(wall, 0, sizeof(wall));
	memset(cpu, 0, sizeof(cpu));
	ret = 1; /* until every phase is done */
	rss0 = proc_rss_kib(master_pid);
	for (unsigned long lo = 0; lo < o.objects; lo += o.batch) {
		unsigned long hi = lo + o.batch < o.objects ? lo + o.batch : o.objects;

		for (int p = P_CREATE; p <= P_PUT_END; p++) {
			if (run_phase(mc, &s, (enum phase)p, lo, hi, &wall[p], &cpu[p]))
				goto out;
		}
		if (release(mc, &s, lo, hi) || drain_sync(mc))
			goto out;
	}
	rss1 = proc_rss_kib(master_pid);
	for (unsigned long lo = 0; lo < o.objects; lo += o.batch) {
		unsigned long hi = lo + o.batch < o.objects ? lo + o.batch : o.objects;

		if (run_phase(mc, &s, P_GET, lo, hi, &wall[P_GET], &cpu[P_GET]) ||
		    release(mc, &s, lo, hi))
			goto out;
	}

	printf("mcfs-masterbench: %lu objects of %lu bytes in %lu directories, batches of %lu, "
	       "master over TCP on 127.0.0.1\n",
	       o.objects, o.size, o.dirs, o.batch);
	printf("  %-22s %12s %14s %10s\n", "phase", "ops/s", "ops/cpu-s", "master cpu");
	for (int p = 0; p < NPHASES; p++)
		printf("  %-22s %12.0f %14.0f %9.0f%%\n", phase_name[p],
		       (double)o.objects / wall[p], cpu[p] > 0 ? (double)o.objects / cpu[p] : 0,
		       100 * cpu[p] / wall[p]);
	{
		double w = wall[P_PUT_START] + wall[P_PUT_END],
		       cp = cpu[P_PUT_START] + cpu[P_PUT_END];

		printf("  %-22s %12.0f %14.0f %9.0f%%\n", "PUT_START+PUT_END",
		       2.0 * (double)o.objects / w, cp > 0 ? 2.0 * (double)o.objects / cp : 0,
		       100 * cp / w);
	}
	{
		double per = (double)(rss1 - rss0) * 1024 / (double)o.objects;
		double key = (double)s.key_bytes / (double)o.objects;

		printf("  master memory: %.0f bytes per object (RSS growth %ld KiB), %.0f bytes "
		       "without its %.0f-byte key\n",
		       per, rss1 - rss0, per - key, key);
	}
	ret = 0;
out:
	if (mc)
		mcfs_mc_close(mc);
	stop_master();
	mcfs_buf_fini(&rb);
	free(s.dir_ino);
	free(s.ino);
	free(s.put_id);
	free(s.version);
	return ret;
}
