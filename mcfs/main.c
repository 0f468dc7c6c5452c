// SPDX-License-Identifier: Apache-2.0
/*
 * mcfs: the node daemon. Parses options (command line, -o name=value, a
 * config file), contributes a DRAM segment, joins a master (an external
 * mcfs-master, or one embedded in this process), mounts the filesystem and
 * serves it until unmounted.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/util.h"
#include "mcfs/catalog.h"
#include "mcfs/discover.h"
#include "mcfs/kio.h"
#include "mcfs/node.h"

#define DEFAULT_SEGMENT (1ull << 30)
/*
 * Long enough to span the gap between the requests of one system call
 * sequence (lookup, create, write, flush: a few us of the caller's work
 * each), short enough to cost little CPU after the last of them.
 */
#define DEFAULT_POLL_US 50

enum { KEY_HELP, KEY_VERSION, KEY_DEBUG };

#define OPT(t, p)                                                                                  \
	{                                                                                          \
		t, offsetof(struct mcfs_node_conf, p), 1                                           \
	}
#define OPT_STR(name, field)                                                                       \
	OPT("--" name "=%s", field), OPT("--" name " %s", field), OPT(name "=%s", field)

static const struct fuse_opt node_opts[] = {
    OPT_STR("master", master),
    OPT_STR("listen", listen),
    OPT_STR("segment-size", segment_size_str),
    OPT_STR("ssd-dir", ssd_dir),
    OPT_STR("ssd-size", ssd_size_str),
    OPT("--replicas=%d", replicas),
    OPT("--replicas %d", replicas),
    OPT("replicas=%d", replicas),
    OPT_STR("transport", transport),
    OPT_STR("node-name", node_name),
    OPT_STR("config", config),
    OPT_STR("token-file", token_file),
    OPT_STR("lease-ttl", lease_ttl_str),
    OPT_STR("soft-pin-ttl", soft_pin_ttl_str),
    OPT_STR("max-soft-pin-ttl", max_soft_pin_ttl_str),
    OPT_STR("high-watermark", high_watermark_str),
    OPT_STR("evict-ratio", evict_ratio_str),
    OPT_STR("put-timeout", put_timeout_str),
    OPT("--attr-timeout=%lf", attr_timeout),
    OPT("attr-timeout=%lf", attr_timeout),
    OPT("--poll-us=%d", poll_us),
    OPT("--poll-us %d", poll_us),
    OPT("poll-us=%d", poll_us),
    OPT("-f", foreground),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_END,
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mcfs MOUNTPOINT [options]\n"
	    "  --master ADDR          HOST:PORT of an mcfs-master, or "
	    "etcd://HOST:PORT[,HOST:PORT...]/CLUSTER\n"
	    "                         to follow the leader elected in etcd (default: embedded "
	    "master)\n"
	    "  --listen HOST:PORT     segment server address for peers (default 0.0.0.0:7422\n"
	    "                         with --master; nothing served without it)\n"
	    "  --segment-size SIZE    DRAM contributed to the pool, K/M/G/T (default 1G)\n"
	    "  --ssd-dir DIR          SSD tier directory (--ssd-size SIZE bounds it)\n"
	    "  --replicas N           default replica count for new files (default 1)\n"
	    "  --transport NAME       tcp, rdma or auto (default auto)\n"
	    "  --node-name NAME       name shown in replicas and status (default: host name)\n"
	    "  --poll-us N            after a request, look for the next one (and for the\n"
	    "                         master's answer) N microseconds before sleeping\n"
	    "                         (default 50; 0 sleeps at once). Where the kernel wakes\n"
	    "                         the daemon on the caller's CPU (fuse wake_here=Y),\n"
	    "                         the kernel's requests are waited for asleep\n"
	    "embedded master only (the same settings as mcfs-master's):\n"
	    "  --lease-ttl DURATION   read lease (default 10s)\n"
	    "  --soft-pin-ttl DURATION, --max-soft-pin-ttl DURATION\n"
	    "                         soft pin length (default 30m) and its cap (24h)\n"
	    "  --high-watermark RATIO eviction starts above this pool usage (default 0.90)\n"
	    "  --evict-ratio RATIO    share of evictable objects freed per round (default 0.05)\n"
	    "  --put-timeout DURATION a put left untouched this long is revoked (default 60s)\n"
	    "  --attr-timeout SECS    kernel attribute and entry cache (default 1.0)\n"
	    "  --config FILE          the same settings from a file (name = value)\n"
	    "  --token-file FILE      cluster secret\n"
	    "  -f                     stay in the foreground\n"
	    "  -d                     debug log (implies -f)\n"
	    "  -o OPT[,OPT...]        FUSE mount options, and every option above as name=value\n"
	    "  -h, --help             this text\n"
	    "  -V, --version          the version\n"
	    "Stop with: fusermount3 -u MOUNTPOINT\n");
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct mcfs_node_conf *c = data;

	(void)outargs;
	switch (key) {
	case KEY_HELP:
		c->show_help = 1;
		return 0;
	case KEY_VERSION:
		c->show_version = 1;
		return 0;
	case KEY_DEBUG:
		c->debug = 1;
		c->foreground = 1;
		return 1; /* libfuse prints every request too */
	case FUSE_OPT_KEY_NONOPT:
		if (!c->mountpoint) {
			c->mountpoint = strdup(arg);
			return 0;
		}
		fprintf(stderr, "mcfs: unexpected argument '%s' (one MOUNTPOINT only)\n", arg);
		return -1;
	default:
		if (arg[0] == '-' && arg[1] == '-') {
			fprintf(stderr, "mcfs: unknown option '%s' (see mcfs --help)\n", arg);
			return -1;
		}
		return 1; /* a FUSE option: pass it on */
	}
}

/* A config-file setting: the same names as the long options; the command line wins. */
static int conf_set(void *ctx, const char *name, const char *value)
{
	struct fuse_args *fa = ctx;
	char *arg;
	int ret;

	if (asprintf(&arg, "--%s=%s", name, value) < 0)
		return -ENOMEM;
	/* Inserted before the command-line arguments so that those override. */
	ret = fuse_opt_insert_arg(fa, 1, arg);
	free(arg);
	return ret;
}

static int parse_conf(struct mcfs_node_conf *c)
{
	uint64_t ms;

	if (c->segment_size_str && (mcfs_parse_size(c->segment_size_str, &c->segment_size) ||
				    c->segment_size < (1u << 20))) {
		fprintf(stderr,
			"mcfs: --segment-size: bad size '%s' (use e.g. 64M, 4G; at least 1M)\n",
			c->segment_size_str);
		return -EINVAL;
	}
	if (c->replicas < 1 || c->replicas > MCFS_MAX_REPLICAS) {
		fprintf(stderr, "mcfs: --replicas: must be 1..%d\n", MCFS_MAX_REPLICAS);
		return -EINVAL;
	}
	if (c->transport && strcmp(c->transport, "tcp") && strcmp(c->transport, "rdma") &&
	    strcmp(c->transport, "auto")) {
		fprintf(stderr, "mcfs: --transport: '%s' is not tcp, rdma or auto\n", c->transport);
		return -EINVAL;
	}
	const struct {
		const char *name;
		const char *val;
		uint64_t *ms;
		double *ratio;
	} mset[] = {
	    {"lease-ttl", c->lease_ttl_str, &c->mconf.lease_ms, NULL},
	    {"soft-pin-ttl", c->soft_pin_ttl_str, &c->mconf.soft_pin_ttl_ms, NULL},
	    {"max-soft-pin-ttl", c->max_soft_pin_ttl_str, &c->mconf.max_soft_pin_ttl_ms, NULL},
	    {"high-watermark", c->high_watermark_str, NULL, &c->mconf.high_watermark},
	    {"evict-ratio", c->evict_ratio_str, NULL, &c->mconf.evict_ratio},
	    {"put-timeout", c->put_timeout_str, &c->mconf.put_timeout_ms, NULL},
	};

	for (size_t i = 0; i < sizeof(mset) / sizeof(mset[0]); i++) {
		if (!mset[i].val)
			continue;
		if (c->master) {
			fprintf(stderr,
				"mcfs: --%s is a setting of the embedded master; "
				"give it to mcfs-master instead\n",
				mset[i].name);
			return -EINVAL;
		}
		if (mset[i].ms && (mcfs_parse_duration_ms(mset[i].val, &ms) || !ms)) {
			fprintf(stderr,
				"mcfs: --%s: bad duration '%s' (use e.g. 10s, 500ms, 30m)\n",
				mset[i].name, mset[i].val);
			return -EINVAL;
		}
		if (mset[i].ms)
			*mset[i].ms = ms;
		else if (mcfs_parse_ratio(mset[i].val, mset[i].ratio)) {
			fprintf(stderr, "mcfs: --%s: bad ratio '%s' (a number from 0 to 1)\n",
				mset[i].name, mset[i].val);
			return -EINVAL;
		}
	}
	if (c->attr_timeout < 0) {
		fprintf(stderr, "mcfs: --attr-timeout must not be negative\n");
		return -EINVAL;
	}
	if (c->poll_us < 0 || c->poll_us > 10000) {
		fprintf(stderr, "mcfs: --poll-us must be from 0 to 10000 (microseconds)\n");
		return -EINVAL;
	}
	if (c->master) {
		char *eps = NULL, *cluster = NULL, host[256];
		uint16_t port;
		bool ok =
		    !strncmp(c->master, "etcd://", 7)
			? !mcfs_discover_parse(c->master, &eps, &cluster)
			: !mcfs_parse_hostport(c->master, "127.0.0.1", host, sizeof(host), &port);

		free(eps);
		free(cluster);
		if (!ok) {
			fprintf(stderr,
				"mcfs: --master: bad address '%s' (use HOST:PORT or "
				"etcd://HOST:PORT[,HOST:PORT...]/CLUSTER)\n",
				c->master);
			return -EINVAL;
		}
	}
	if (c->ssd_dir) {
		fprintf(stderr, "mcfs: --ssd-dir: the SSD tier is not available in this version\n");
		return -ENOTSUP;
	}
	return 0;
}

static void conf_free(struct mcfs_node_conf *c)
{
	char **strs[] = {&c->mountpoint,
			 &c->master,
			 &c->listen,
			 &c->node_name,
			 &c->transport,
			 &c->ssd_dir,
			 &c->config,
			 &c->token_file,
			 &c->segment_size_str,
			 &c->ssd_size_str,
			 &c->lease_ttl_str,
			 &c->soft_pin_ttl_str,
			 &c->max_soft_pin_ttl_str,
			 &c->high_watermark_str,
			 &c->evict_ratio_str,
			 &c->put_timeout_str};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

/* The transport, and the segment server when peers need one. */
static int open_transport(struct mcfs_node *n)
{
	struct mcfs_node_conf *c = n->conf;
	struct mcfs_xport_server_conf sc = {.poll_us = (uint32_t)c->poll_us};
	struct mcfs_xport_client_conf cc = {.poll_us = (uint32_t)c->poll_us};
	const char *listen = c->listen;
	char host[256];
	int ret;

	ret = mcfs_xport_lookup(c->transport ? c->transport : "auto", &n->xops);
	if (ret) {
		mcfs_err("--transport %s: %s", c->transport ? c->transport : "auto",
			 strerror(-ret));
		return ret;
	}
	ret = mcfs_xport_client_create(n->xops, &cc, &n->xc);
	if (ret)
		return ret;
	if (!listen && c->master)
		listen = "0.0.0.0:7422";
	if (!listen)
		return 0; /* embedded master, single node: nothing to serve */
	if (mcfs_parse_hostport(listen, "0.0.0.0", host, sizeof(host), &sc.port)) {
		mcfs_err("--listen: bad address '%s' (use HOST:PORT)", listen);
		return -EINVAL;
	}
	sc.host = host;
	sc.seg_base = mcfs_seg_ptr(n->seg, 0, mcfs_seg_size(n->seg));
	sc.seg_size = mcfs_seg_size(n->seg);
	ret = mcfs_xport_server_create(n->xops, &sc, &n->srv);
	if (ret)
		mcfs_err("cannot listen on %s: %s", listen, strerror(-ret));
	return ret;
}

/* The segment server's address as peers should dial it: a wildcard bind advertises the host name. */
static void advertised_addr(struct mcfs_node *n, char *buf, size_t bufsz)
{
	const char *bound = n->srv ? mcfs_xport_server_addr(n->srv) : "";
	const char *port = strrchr(bound, ':');
	char host[HOST_NAME_MAX + 1];

	if (port && (!strncmp(bound, "0.0.0.0:", 8) || !strncmp(bound, "[::]:", 5)) &&
	    !gethostname(host, sizeof(host))) {
		host[sizeof(host) - 1] = 0;
		snprintf(buf, bufsz, "%s%s", host, port);
		return;
	}
	snprintf(buf, bufsz, "%s", bound);
}

struct report_ctx {
	struct mcfs_mc *mc;
	uint64_t taken, sent;
};

static int report_send(void *arg, const uint8_t *p, size_t len, uint32_t count)
{
	struct report_ctx *rc = arg;
	struct mcfs_msg req = {0}, resp;
	struct mcfs_buf rbuf;
	int ret;

	mcfs_buf_init(&rbuf);
	req.type = MCFS_MSG_REPORT;
	req.count = count;
	req.value.p = p;
	req.value.len = (uint32_t)len;
	ret = mcfs_mc_call_nested(rc->mc, &req, &resp, &rbuf);
	if (!ret) {
		rc->taken += resp.count;
		rc->sent += count;
	}
	mcfs_buf_fini(&rbuf);
	return ret;
}

/*
 * Give a master that did not know this node (it restarted, a new leader
 * took over, or it dropped us while we were unreachable) the catalog of the
 * files we hold, so it rebuilds them, then open our segment to allocations.
 */
static int node_report(struct mcfs_node *n, struct mcfs_mc *mc)
{
	struct report_ctx rc = {mc, 0, 0};
	struct mcfs_msg req = {0}, resp;
	struct mcfs_buf rbuf;
	int ret = 0;

	if (n->cat)
		ret = mcfs_catalog_report(n->cat, report_send, &rc, 1u << 20);
	if (ret) {
		mcfs_err("reporting this node's files to the master failed: %s", strerror(-ret));
		return ret;
	}
	mcfs_buf_init(&rbuf);
	req.type = MCFS_MSG_REPORT_END;
	req.count = (uint32_t)rc.sent;
	ret = mcfs_mc_call_nested(mc, &req, &resp, &rbuf);
	mcfs_buf_fini(&rbuf);
	if (!ret && rc.sent)
		mcfs_info("reported %llu files to the master, %llu taken",
			  (unsigned long long)rc.sent, (unsigned long long)rc.taken);
	return ret;
}

/*
 * Introduce this node to the master (HELLO) and start serving the segment
 * under the identity it assigns. The client runs it again after every
 * reconnect, and the lease thread when the master no longer knows the node
 * (it was dropped while unreachable). A master that knows this daemon run
 * (incarnation) resumes it; any other gets our catalog (node_report).
 */
static int node_hello(struct mcfs_mc *mc, void *arg)
{
	struct mcfs_node *n = arg;
	struct mcfs_node_conf *c = n->conf;
	struct mcfs_msg req = {0}, resp;
	struct mcfs_buf rbuf;
	char name[256], addr[MCFS_NAME_MAX + 1];
	bool again = n->node_id != 0;
	int ret;

	if (c->node_name)
		snprintf(name, sizeof(name), "%s", c->node_name);
	else if (gethostname(name, sizeof(name)))
		snprintf(name, sizeof(name), "node");
	mcfs_buf_init(&rbuf);
	req.type = MCFS_MSG_HELLO;
	req.proto = MCFS_PROTO_VERSION;
	req.name.p = (const uint8_t *)name;
	req.name.len = (uint32_t)strnlen(name, MCFS_NAME_MAX);
	/* Peers reach this node's segment server here. */
	advertised_addr(n, addr, sizeof(addr));
	req.name2.p = (const uint8_t *)addr;
	req.name2.len = (uint32_t)strlen(addr);
	req.size = mcfs_seg_size(n->seg);
	req.incarnation = n->incarnation;
	req.flags = n->cat ? MCFS_HELLO_REPORT : 0;
	ret = mcfs_mc_call_nested(mc, &req, &resp, &rbuf);
	if (ret) {
		mcfs_err("the master refused this node: %s", strerror(-ret));
	} else if (resp.value.len != MCFS_GRANT_SECRET_LEN) {
		mcfs_err("the master sent a grant secret of %u bytes, not %d", resp.value.len,
			 MCFS_GRANT_SECRET_LEN);
		ret = -EPROTO;
	} else if (resp.flags & MCFS_HELLO_RESUMED) {
		n->node_id = resp.node_id; /* the same session state: nothing else to do */
	} else {
		n->node_id = resp.node_id;
		/* Puts in flight died with the master that started them. */
		__atomic_add_fetch(&n->put_gen, 1, __ATOMIC_RELEASE);
		if (n->srv && again)
			mcfs_xport_server_set_identity(n->srv, n->node_id, resp.seg_id,
						       resp.value.p);
		else if (n->srv)
			ret =
			    mcfs_xport_server_start(n->srv, n->node_id, resp.seg_id, resp.value.p);
		if (ret) {
			mcfs_err("cannot serve the segment: %s", strerror(-ret));
		} else if (n->cat && (resp.flags & MCFS_HELLO_DROPPED)) {
			/*
			 * This master dropped us while we were cut off: what we held
			 * is no longer served (files were unlinked, renamed, rewritten
			 * past our catalog), so we start empty, as a new node.
			 */
			mcfs_warn("the master dropped this node while it was unreachable: the "
				  "%zu objects it held are no longer served",
				  mcfs_catalog_count(n->cat));
			mcfs_catalog_clear(n->cat);
			__atomic_add_fetch(&n->seg_epoch, 1, __ATOMIC_RELEASE);
		} else if (n->cat) {
			ret = node_report(n, mc);
		}
		if (!ret && again)
			mcfs_warn("rejoined the cluster as node %llu",
				  (unsigned long long)n->node_id);
	}
	mcfs_buf_fini(&rbuf);
	return ret;
}

static int join_master(struct mcfs_node *n)
{
	struct mcfs_node_conf *c = n->conf;
	char host[256];
	uint16_t port;
	int ret;

	if (c->master) {
		if (!strncmp(c->master, "etcd://", 7)) {
			/* HA: whoever etcd says leads; the watcher follows changes. */
			ret = mcfs_discover_open(c->master, &n->disc);
			if (!ret)
				ret =
				    mcfs_mc_connect_resolve(mcfs_discover_resolve, n->disc, &n->mc);
			if (!ret)
				ret = mcfs_discover_watch(n->disc, n->mc);
		} else if (mcfs_parse_hostport(c->master, "127.0.0.1", host, sizeof(host), &port)) {
			mcfs_err("--master: bad address '%s' (use HOST:PORT or "
				 "etcd://HOST:PORT[,HOST:PORT...]/CLUSTER)",
				 c->master);
			return -EINVAL;
		} else {
			ret = mcfs_mc_connect(host, port, &n->mc);
		}
		if (!ret)
			ret = mcfs_catalog_create(&n->cat);
	} else {
		c->mconf.default_replicas = (uint32_t)c->replicas;
		ret = mcfs_master_create(&c->mconf, &n->master);
		if (!ret)
			ret = mcfs_mc_embedded(n->master, &n->mc);
	}
	if (ret)
		return ret;
	if (getrandom(&n->incarnation, sizeof(n->incarnation), 0) != sizeof(n->incarnation))
		n->incarnation = mcfs_wall_ns() ^ (uint64_t)getpid() << 32;
	n->seg_epoch = 1; /* 0 in a handle: its bytes are not the segment's */
	mcfs_mc_set_poll(n->mc, (unsigned int)c->poll_us);
	mcfs_mc_set_rejoin(n->mc, node_hello, n);
	return mcfs_mc_rejoin(n->mc);
}

static void leave_master(struct mcfs_node *n)
{
	struct mcfs_msg req = {0}, resp;
	struct mcfs_buf rbuf;

	if (!n->mc || !n->node_id)
		return;
	mcfs_buf_init(&rbuf);
	req.type = MCFS_MSG_BYE;
	req.node_id = n->node_id;
	if (mcfs_mc_call(n->mc, &req, &resp, &rbuf))
		mcfs_warn("could not unregister from the master");
	mcfs_buf_fini(&rbuf);
}

/*
 * SIGTERM, SIGINT and SIGHUP stop the daemon as cleanly as an unmount. Not
 * libfuse's handlers: the thread a signal lands on is often not the one
 * waiting for requests, so the handler also wakes that wait
 * (mcfs_kio_stop), or the stop would wait for the next request.
 */
static struct fuse_session *stop_session;
static const int stop_sigs[] = {SIGTERM, SIGINT, SIGHUP};
static struct sigaction stop_old[3], pipe_old;

static void on_stop_signal(int sig)
{
	int err = errno;

	(void)sig;
	fuse_session_exit(stop_session); /* sets a flag: what libfuse's own handler does */
	mcfs_kio_stop();
	errno = err;
}

static int stop_signals_install(struct fuse_session *se)
{
	struct sigaction sa;

	stop_session = se;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	for (size_t i = 0; i < 3; i++) {
		if (sigaction(stop_sigs[i], &sa, &stop_old[i])) {
			mcfs_err("sigaction: %s", strerror(errno));
			while (i--) /* none may outlive the session it points to */
				sigaction(stop_sigs[i], &stop_old[i], NULL);
			return -1;
		}
	}
	sa.sa_handler = SIG_IGN; /* a peer that hangs up is an error return, not a death */
	if (sigaction(SIGPIPE, &sa, &pipe_old)) {
		for (size_t i = 0; i < 3; i++)
			sigaction(stop_sigs[i], &stop_old[i], NULL);
		return -1;
	}
	return 0;
}

static void stop_signals_remove(void)
{
	for (size_t i = 0; i < 3; i++)
		sigaction(stop_sigs[i], &stop_old[i], NULL);
	sigaction(SIGPIPE, &pipe_old, NULL);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mcfs_node_conf conf = {0};
	struct mcfs_node node = {0};
	int ret = 1;

	mcfs_log_set_ident("mcfs");
	conf.replicas = 1;
	conf.attr_timeout = 1.0;
	conf.poll_us = DEFAULT_POLL_US;
	mcfs_master_conf_default(&conf.mconf);
	if (fuse_opt_parse(&args, &conf, node_opts, opt_proc) == -1) {
		conf_free(&conf); /* what was parsed before the bad option */
		fuse_opt_free_args(&args);
		return 2;
	}
	if (conf.show_help) {
		usage(stdout);
		return 0;
	}
	if (conf.show_version) {
		printf("mcfs %s (libfuse %s)\n", MCFS_VERSION, fuse_pkgversion());
		return 0;
	}
	if (conf.config) {
		/* Re-parse with the file's settings in front of the command line's. */
		struct fuse_args fa = FUSE_ARGS_INIT(0, NULL);
		char *config = conf.config;

		for (int i = 0; i < argc; i++)
			fuse_opt_add_arg(&fa, argv[i]);
		if (mcfs_conf_load(config, conf_set, &fa)) {
			fprintf(stderr, "mcfs: --config %s: cannot use this file\n", config);
			fuse_opt_free_args(&fa);
			fuse_opt_free_args(&args);
			conf_free(&conf); /* config too */
			return 2;
		}
		fuse_opt_free_args(&args);
		conf.config = NULL;
		conf_free(&conf);
		memset(&conf, 0, sizeof(conf));
		conf.replicas = 1;
		conf.attr_timeout = 1.0;
		conf.poll_us = DEFAULT_POLL_US;
		mcfs_master_conf_default(&conf.mconf);
		args = fa;
		if (fuse_opt_parse(&args, &conf, node_opts, opt_proc) == -1) {
			conf_free(&conf);
			fuse_opt_free_args(&args);
			free(config);
			return 2;
		}
		free(config);
	}
	if (!conf.mountpoint) {
		fprintf(stderr, "mcfs: no MOUNTPOINT given (usage: mcfs MOUNTPOINT [options]; "
				"see mcfs --help)\n");
		conf_free(&conf);
		fuse_opt_free_args(&args);
		return 2;
	}
	conf.segment_size = DEFAULT_SEGMENT;
	if (parse_conf(&conf)) {
		conf_free(&conf);
		fuse_opt_free_args(&args);
		return 2;
	}
	if (conf.debug)
		mcfs_log_set_level(LOG_DEBUG);
	node.conf = &conf;
	pthread_mutex_init(&node.lock, NULL);
	pthread_cond_init(&node.stop_cond, NULL);

	ret = mcfs_seg_open(conf.segment_size, &node.seg);
	if (ret) {
		mcfs_err("cannot reserve a %s segment: %s (try a smaller --segment-size)",
			 conf.segment_size_str ? conf.segment_size_str : "1G", strerror(-ret));
		ret = 1;
		goto out_args;
	}
	ret = open_transport(&node);
	if (!ret)
		ret = join_master(&node);
	if (ret) {
		ret = 1;
		goto out_master;
	}
	/* Everyone may use the cache; the kernel checks permissions against our modes. */
	fuse_opt_add_arg(&args, "-odefault_permissions");
	if (getuid() == 0)
		fuse_opt_add_arg(&args, "-oallow_other");
	fuse_opt_add_arg(&args, "-osubtype=mcfs");
	fuse_opt_add_arg(&args, "-ofsname=mcfs");
	node.se = fuse_session_new(&args, &mcfs_fs_ops, sizeof(mcfs_fs_ops), &node);
	if (!node.se) {
		ret = 2;
		goto out_master;
	}
	if (stop_signals_install(node.se)) {
		ret = 1;
		goto out_session;
	}
	if (fuse_session_mount(node.se, conf.mountpoint)) {
		mcfs_err("cannot mount %s (does it exist, and is it not mounted already?)",
			 conf.mountpoint);
		ret = 1;
		goto out_signals;
	}
	/* There polling the device costs more than it saves (mcfs/kio.c). */
	if (conf.poll_us && mcfs_fuse_wake_here() == 1) {
		mcfs_info("the kernel wakes this daemon on the caller's CPU (fuse wake_here=Y): "
			  "/dev/fuse is not polled");
		mcfs_kio_set_poll(0);
	} else {
		mcfs_kio_set_poll((unsigned int)conf.poll_us);
	}
	ret = mcfs_kio_install(node.se);
	if (ret)
		mcfs_warn("cannot watch FUSE_INIT (%s): shared mappings use the page cache",
			  strerror(-ret));
	mcfs_info("mounted %s (%s master, node %llu, %llu MiB segment)", conf.mountpoint,
		  conf.master ? conf.master : "embedded", (unsigned long long)node.node_id,
		  (unsigned long long)(conf.segment_size >> 20));
	fuse_daemonize(conf.foreground);
	ret = mcfs_lease_start(&node);
	if (ret) {
		mcfs_err("cannot start the lease thread: %s", strerror(-ret));
		ret = 1;
		goto out_unmount;
	}
	ret = fuse_session_loop(node.se) ? 1 : 0;
	mcfs_lease_stop(&node);
	mcfs_fs_close_all(&node);
	if (conf.master)
		mcfs_fs_drain(&node);
	leave_master(&node);
	mcfs_info("unmounted %s", conf.mountpoint);
out_unmount:
	fuse_session_unmount(node.se);
out_signals:
	stop_signals_remove();
out_session:
	fuse_session_destroy(node.se);
	mcfs_fs_fini(&node);
out_master:
	mcfs_xport_server_destroy(node.srv);
	mcfs_xport_client_destroy(node.xc);
	mcfs_discover_close(node.disc);
	mcfs_mc_close(node.mc);
	mcfs_master_destroy(node.master);
	mcfs_catalog_destroy(node.cat);
	mcfs_seg_close(node.seg);
out_args:
	fuse_opt_free_args(&args);
	conf_free(&conf);
	return ret;
}
