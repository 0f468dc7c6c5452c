// SPDX-License-Identifier: Apache-2.0
/*
 * mcfs-master: the metadata server. A thin main() over meta/master.h: read
 * the options (a config file first, then the command line, which wins), run
 * the server loop until SIGINT or SIGTERM, tear down.
 *
 * Options are one table shared by getopt_long and the config file reader,
 * so a setting is spelled, checked and reported the same way in both.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/util.h"
#include "meta/ha.h"
#include "meta/http.h"
#include "meta/master.h"
#include "meta/persist.h"

#define PROG "mcfs-master"

struct hostport {
	char host[256];
	uint16_t port;
	bool set;
	bool off; /* K_HOSTPORT_OFF: "off" or "" given */
};

struct options {
	struct mcfs_master_conf mc;
	struct hostport listen;
	struct hostport http;
	struct hostport advertise;
	char *etcd; /* owned strings, NULL when not given */
	char *cluster;
	char *data_dir;
	char *token_file;
	bool verbose;
};

enum kind { K_HOSTPORT, K_HOSTPORT_OFF, K_DURATION, K_RATIO, K_STRING, K_FLAG, K_USEC };

struct opt {
	const char *name;
	enum kind kind;
	size_t off; /* of the value in struct options */
	int short_name;
	const char *arg;
	const char *help;
};

#define OPT(n, k, field, s, a, h)                                                                  \
	{                                                                                          \
		n, k, offsetof(struct options, field), s, a, h                                     \
	}

static const struct opt opts[] = {
    OPT("listen", K_HOSTPORT, listen, 0, "HOST:PORT", "RPC address (default 0.0.0.0:7420)"),
    OPT("http", K_HOSTPORT_OFF, http, 0, "HOST:PORT",
	"/metrics, /health, /role (default 0.0.0.0:7421; \"off\" or \"\" disables)"),
    OPT("etcd", K_STRING, etcd, 0, "URL[,URL...]",
	"high availability: campaign for leadership through etcd"),
    OPT("cluster", K_STRING, cluster, 0, "NAME", "cluster name in etcd (default mcfs)"),
    OPT("advertise", K_HOSTPORT, advertise, 0, "HOST:PORT",
	"the RPC address published to nodes when elected"),
    OPT("lease-ttl", K_DURATION, mc.lease_ms, 0, "DURATION", "read lease (default 10s)"),
    OPT("soft-pin-ttl", K_DURATION, mc.soft_pin_ttl_ms, 0, "DURATION",
	"soft pin, from publication (default 30m, at most --max-soft-pin-ttl)"),
    OPT("max-soft-pin-ttl", K_DURATION, mc.max_soft_pin_ttl_ms, 0, "DURATION",
	"longest soft pin a client may ask for (default 24h)"),
    OPT("high-watermark", K_RATIO, mc.high_watermark, 0, "RATIO",
	"eviction starts above this pool usage (default 0.90)"),
    OPT("evict-ratio", K_RATIO, mc.evict_ratio, 0, "RATIO",
	"share of evictable objects freed per round (default 0.05)"),
    OPT("node-ttl", K_DURATION, mc.node_ttl_ms, 0, "DURATION",
	"a node silent this long is dropped (default 10s)"),
    OPT("put-timeout", K_DURATION, mc.put_timeout_ms, 0, "DURATION",
	"a write its node leaves untouched this long is revoked (default 60s)"),
    OPT("poll-us", K_USEC, mc.poll_us, 0, "N",
	"after requests, look for more N microseconds before sleeping (default 50; 0: sleep at "
	"once)"),
    OPT("data-dir", K_STRING, data_dir, 0, "DIR",
	"keep directories and counters here, so a restart loses nothing"),
    OPT("token-file", K_STRING, token_file, 0, "FILE", "cluster secret"),
    OPT("verbose", K_FLAG, verbose, 'v', NULL, "log debug messages"),
};

#define NOPTS	   (sizeof(opts) / sizeof(opts[0]))
#define OPT_CONFIG (256 + (int)NOPTS)
#define OPT_HELP   'h'
#define OPT_VER	   'V'

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: %s [options]\n", PROG);
	for (size_t i = 0; i < NOPTS; i++) {
		char left[64];

		if (opts[i].short_name)
			snprintf(left, sizeof(left), "-%c, --%s", opts[i].short_name, opts[i].name);
		else
			snprintf(left, sizeof(left), "    --%s %s", opts[i].name,
				 opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-34s %s\n", left, opts[i].help);
	}
	fprintf(f, "  %-34s %s\n", "    --config FILE",
		"read these options from FILE (\"name = value\" lines); the command line wins");
	fprintf(f, "  %-34s %s\n", "-h, --help", "show this help");
	fprintf(f, "  %-34s %s\n", "-V, --version", "show the version");
}

/*
 * Apply one option. 0, -ENOENT for an unknown name, -EINVAL with what is
 * wrong and how to fix it written into err.
 */
static int apply(struct options *o, const struct opt *op, const char *value, char *err,
		 size_t errsz)
{
	void *dst = (char *)o + op->off;
	uint64_t ms;
	double ratio;

	switch (op->kind) {
	case K_HOSTPORT_OFF:
		if (!*value || !strcmp(value, "off")) {
			((struct hostport *)dst)->off = true;
			((struct hostport *)dst)->set = true;
			return 0;
		}
		((struct hostport *)dst)->off = false;
		/* fall through */
	case K_HOSTPORT: {
		struct hostport *hp = dst;

		if (mcfs_parse_hostport(value, "0.0.0.0", hp->host, sizeof(hp->host), &hp->port)) {
			snprintf(err, errsz, "bad address '%s' (use HOST:PORT, e.g. 0.0.0.0:7420)",
				 value);
			return -EINVAL;
		}
		hp->set = true;
		return 0;
	}
	case K_DURATION:
		if (mcfs_parse_duration_ms(value, &ms)) {
			snprintf(err, errsz, "bad duration '%s' (use e.g. 10s, 500ms)", value);
			return -EINVAL;
		}
		*(uint64_t *)dst = ms;
		return 0;
	case K_RATIO:
		if (mcfs_parse_ratio(value, &ratio)) {
			snprintf(err, errsz, "bad ratio '%s' (use a number from 0 to 1, e.g. 0.9)",
				 value);
			return -EINVAL;
		}
		*(double *)dst = ratio;
		return 0;
	case K_STRING: {
		char **sp = dst;
		char *copy;

		if (!*value) {
			snprintf(err, errsz, "empty value");
			return -EINVAL;
		}
		copy = strdup(value);
		if (!copy) {
			snprintf(err, errsz, "out of memory");
			return -ENOMEM;
		}
		free(*sp);
		*sp = copy;
		return 0;
	}
	case K_USEC: {
		char *end;
		unsigned long us;

		errno = 0;
		us = strtoul(value, &end, 10);
		if (!*value || *end || errno || us > 10000 || value[0] == '-') {
			snprintf(err, errsz, "bad value '%s' (microseconds, 0 to 10000)", value);
			return -EINVAL;
		}
		*(uint32_t *)dst = (uint32_t)us;
		return 0;
	}
	case K_FLAG:
		/* From a config file a flag may say yes or no; on the command line it is bare. */
		if (!*value || !strcmp(value, "1") || !strcmp(value, "yes") ||
		    !strcmp(value, "true")) {
			*(bool *)dst = true;
		} else if (!strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "false")) {
			*(bool *)dst = false;
		} else {
			snprintf(err, errsz, "bad value '%s' (use yes or no)", value);
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

static int conf_set(void *ctx, const char *name, const char *value)
{
	char err[256];

	for (size_t i = 0; i < NOPTS; i++)
		if (!strcmp(opts[i].name, name))
			return apply(ctx, &opts[i], value, err, sizeof(err));
	return -ENOENT;
}

static void options_fini(struct options *o)
{
	free(o->etcd);
	free(o->cluster);
	free(o->data_dir);
	free(o->token_file);
}

static void build_longopts(struct option *lo)
{
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		lo[i].name = opts[i].name;
		lo[i].has_arg = opts[i].kind == K_FLAG ? no_argument : required_argument;
		lo[i].flag = NULL;
		lo[i].val = opts[i].short_name ? opts[i].short_name : 256 + (int)i;
	}
	lo[i++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
	lo[i++] = (struct option){"help", no_argument, NULL, OPT_HELP};
	lo[i++] = (struct option){"version", no_argument, NULL, OPT_VER};
	lo[i] = (struct option){NULL, 0, NULL, 0};
}

static const struct opt *opt_of(int c)
{
	if (c >= 256 && c < 256 + (int)NOPTS)
		return &opts[c - 256];
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].short_name && opts[i].short_name == c)
			return &opts[i];
	return NULL;
}

/*
 * Walk argv. The first pass (apply_all false) only checks the syntax and
 * finds --config, --help and --version; the second applies every option.
 * Returns -1 to go on, or the exit status to leave with.
 */
static int parse_argv(int argc, char **argv, struct options *o, bool apply_all, const char **config)
{
	struct option lo[NOPTS + 4];
	char err[256];
	int c;

	build_longopts(lo);
	optind = 0; /* GNU: start over, re-reading the environment */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vhV", lo, NULL)) != -1) {
		const struct opt *op;
		const char *bad = argv[optind - 1];

		switch (c) {
		case OPT_HELP:
			if (!apply_all) {
				usage(stdout);
				return 0;
			}
			continue;
		case OPT_VER:
			if (!apply_all) {
				printf("%s %s\n", PROG, MCFS_VERSION);
				return 0;
			}
			continue;
		case OPT_CONFIG:
			*config = optarg;
			continue;
		case ':':
			fprintf(stderr, "%s: %s needs a value (see %s --help)\n", PROG, bad, PROG);
			return 2;
		case '?':
			if (!strncmp(bad, "--", 2) && optopt)
				fprintf(stderr, "%s: %.*s takes no value (see %s --help)\n", PROG,
					(int)strcspn(bad, "="), bad, PROG);
			else if (optopt)
				fprintf(stderr, "%s: unknown option '-%c' (see %s --help)\n", PROG,
					optopt, PROG);
			else
				fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", PROG,
					bad, PROG);
			return 2;
		}
		op = opt_of(c);
		if (!op || !apply_all)
			continue;
		if (apply(o, op, optarg ? optarg : "", err, sizeof(err))) {
			fprintf(stderr, "%s: --%s: %s\n", PROG, op->name, err);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", PROG,
			argv[optind], PROG);
		return 2;
	}
	return -1;
}

/* Checks across options, after the file and the command line are both in. */
static int check_options(const struct options *o)
{
	if (!o->mc.lease_ms) {
		fprintf(stderr, "%s: --lease-ttl: must be longer than 0 (e.g. 10s)\n", PROG);
		return 2;
	}
	if (!o->mc.node_ttl_ms) {
		fprintf(stderr, "%s: --node-ttl: must be longer than 0 (e.g. 10s)\n", PROG);
		return 2;
	}
	if (!o->mc.put_timeout_ms) {
		fprintf(stderr, "%s: --put-timeout: must be longer than 0 (e.g. 60s)\n", PROG);
		return 2;
	}
	/* A pin longer than the maximum is capped (the master does it), as the option says. */
	if (o->mc.soft_pin_ttl_ms > o->mc.max_soft_pin_ttl_ms)
		mcfs_warn(
		    "--soft-pin-ttl is longer than --max-soft-pin-ttl: soft pins last %llu ms",
		    (unsigned long long)o->mc.max_soft_pin_ttl_ms);
	if (o->mc.evict_ratio <= 0) {
		fprintf(stderr, "%s: --evict-ratio: must be above 0 (e.g. 0.05)\n", PROG);
		return 2;
	}
	return -1;
}

/*
 * What the server loop runs on its thread between requests (periodic()):
 * first once it listens, which starts the HTTP endpoints (--http; a failure
 * stops the master), then every LOOP_PERIOD_MS. In HA mode it takes over
 * when the election is won (store in etcd, epoch = election revision) and
 * stops the master when the leadership is lost. Every HTTP_PUBLISH_MS (and
 * at once when the role changes) it publishes what /role, /health and
 * /metrics show. Without HA a single master is always the leader.
 */
#define LOOP_PERIOD_MS	100
#define HTTP_PUBLISH_MS 500

struct loop_ctx {
	const struct options *o;
	const struct hostport *http; /* NULL: --http off */
	int64_t start_time_ns;
	struct mcfs_http *h; /* NULL until the first call */
	struct mcfs_ha *ha;  /* HA mode only */
	struct mcfs_persist **store;
	uint64_t last_publish_ms;
	bool role_changed;
};

/* Elected: load what the last leader stored in etcd and start serving. */
static int take_over(struct loop_ctx *c, struct mcfs_master *m, int64_t rev, const char *key)
{
	char prefix[320];
	int ret =
	    mcfs_ha_key(c->o->cluster ? c->o->cluster : "mcfs", "store/", prefix, sizeof(prefix));

	if (!ret)
		ret = mcfs_persist_open_etcd(mcfs_ha_etcd(c->ha), prefix, key, rev, c->store);
	if (!ret)
		ret = mcfs_master_attach_store(m, *c->store);
	if (ret) {
		mcfs_err("elected, but cannot load the cluster's store from etcd: %s; exiting",
			 strerror(-ret));
		return ret;
	}
	mcfs_master_set_epoch(m, (uint64_t)rev);
	mcfs_master_set_standby(m, false);
	mcfs_info("serving as the leader (epoch %lld)", (long long)rev);
	c->role_changed = true;
	return 0;
}

static int periodic(struct mcfs_master *m, const struct mcfs_master_serve_stats *st, void *arg)
{
	struct loop_ctx *c = arg;
	struct mcfs_http_snapshot snap = {.role = "leader", .serving = true};
	uint64_t now = mcfs_now_ms();
	int ret;

	if (c->ha) {
		const char *key = NULL;
		int64_t rev = 0;

		switch (mcfs_ha_poll(c->ha, &rev, &key)) {
		case MCFS_HA_ELECTED:
			ret = take_over(c, m, rev, key);
			if (ret)
				return ret;
			mcfs_ha_took_over(c->ha);
			break;
		case MCFS_HA_LOST:
			if (!mcfs_master_standby(m)) {
				mcfs_err(
				    "leadership lost (etcd lease expired); exiting, so that this "
				    "master answers nothing more");
				return -ECANCELED;
			}
			break;
		default:
			break;
		}
	}
	if (!c->http)
		return 0;
	if (!c->h) {
		ret = mcfs_http_start(c->http->host, c->http->port, &c->h);
		if (ret)
			return ret;
	} else if (!c->role_changed && now - c->last_publish_ms < HTTP_PUBLISH_MS) {
		return 0;
	}
	c->role_changed = false;
	c->last_publish_ms = now;
	if (mcfs_master_standby(m)) {
		snprintf(snap.role, sizeof(snap.role), "standby");
		snap.serving = false;
	}
	snap.epoch = mcfs_master_epoch(m);
	snap.start_time_ns = c->start_time_ns;
	mcfs_master_get_stats(m, &snap.stats);
	snap.serve = *st;
	ret = mcfs_http_publish(c->h, &snap);
	if (ret)
		mcfs_warn("cannot update the HTTP endpoints: %s", strerror(-ret));
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct mcfs_master *m = NULL;
	struct mcfs_persist *store = NULL;
	struct loop_ctx lc = {.o = &o, .start_time_ns = mcfs_wall_ns(), .store = &store};
	const struct mcfs_master_hook hook = {
	    .fn = periodic, .arg = &lc, .period_ms = LOOP_PERIOD_MS};
	char advertise[300];
	const char *config = NULL;
	struct sigaction sa;
	int status, ret;

	mcfs_log_set_ident(PROG);
	mcfs_master_conf_default(&o.mc);
	snprintf(o.listen.host, sizeof(o.listen.host), "0.0.0.0");
	o.listen.port = 7420;
	snprintf(o.http.host, sizeof(o.http.host), "0.0.0.0");
	o.http.port = 7421;

	status = parse_argv(argc, argv, &o, false, &config);
	if (status >= 0)
		goto out_free_options;
	if (config) {
		ret = mcfs_conf_load(config, conf_set, &o);
		if (ret) {
			/* mcfs_conf_load said where and what; a file we cannot read is usage too. */
			status = 2;
			goto out_free_options;
		}
	}
	status = parse_argv(argc, argv, &o, true, &config);
	if (status >= 0)
		goto out_free_options;
	status = check_options(&o);
	if (status >= 0)
		goto out_free_options;
	if (o.verbose)
		mcfs_log_set_level(LOG_DEBUG);

	status = 1;
	if (o.etcd && o.data_dir) {
		fprintf(stderr,
			"%s: --data-dir: in HA mode (--etcd) the store lives in etcd; drop "
			"--data-dir\n",
			PROG);
		status = 2;
		goto out_free_options;
	}
	if (o.etcd) {
		if (o.advertise.set) {
			snprintf(advertise, sizeof(advertise), "%s:%u", o.advertise.host,
				 o.advertise.port);
		} else {
			char host[256] = "localhost";

			if (strcmp(o.listen.host, "0.0.0.0") && strcmp(o.listen.host, "::"))
				snprintf(host, sizeof(host), "%s", o.listen.host);
			else if (gethostname(host, sizeof(host)))
				snprintf(host, sizeof(host), "localhost");
			host[sizeof(host) - 1] = '\0';
			snprintf(advertise, sizeof(advertise), "%s:%u", host, o.listen.port);
		}
	} else if (o.data_dir) {
		ret = mcfs_persist_open(o.data_dir, &store);
		if (ret) {
			fprintf(stderr, "%s: --data-dir %s: %s\n", PROG, o.data_dir,
				ret == -EBUSY ? "in use by another mcfs-master" : strerror(-ret));
			goto out_free_options;
		}
	} else {
		mcfs_warn("no --data-dir: after a restart the nodes bring every file back, but "
			  "directories that hold no file, and directory attributes, are lost");
	}
	if (o.token_file)
		mcfs_warn("--token-file %s: authentication is not implemented yet; connections "
			  "are not authenticated",
			  o.token_file);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: epoll_wait returns EINTR and the loop sees the stop at once. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = mcfs_master_create(&o.mc, &m);
	if (ret) {
		mcfs_err("cannot start the master: %s", strerror(-ret));
		goto out_free_options;
	}
	if (o.etcd) {
		mcfs_master_set_standby(m, true); /* until elected */
		ret = mcfs_ha_start(o.etcd, o.cluster ? o.cluster : "mcfs", advertise, &lc.ha);
		if (ret) {
			fprintf(stderr, "%s: --etcd %s: %s\n", PROG, o.etcd,
				ret == -EINVAL ? "bad endpoint list (use HOST:PORT[,HOST:PORT...])"
					       : strerror(-ret));
			goto out_destroy_master;
		}
		mcfs_info("campaigning for leadership of cluster %s through etcd %s as %s",
			  o.cluster ? o.cluster : "mcfs", o.etcd, advertise);
	}
	if (store) {
		ret = mcfs_master_attach_store(m, store);
		if (ret) {
			mcfs_err("--data-dir %s: cannot load what it holds: %s", o.data_dir,
				 strerror(-ret));
			goto out_destroy_master;
		}
	}
	lc.http = o.http.off ? NULL : &o.http;
	ret = mcfs_master_serve(m, o.listen.host, o.listen.port, &stop_requested, &hook);
	mcfs_http_stop(lc.h);
	/* The etcd store borrows the election's handle: close it first. */
	mcfs_persist_close(store);
	store = NULL;
	mcfs_ha_stop(lc.ha);
	lc.ha = NULL;
	if (ret) {
		/* The server or the HTTP hook logged why (e.g. the address is in use). */
		goto out_destroy_master;
	}
	mcfs_info("stopped");
	status = 0;

out_destroy_master:
	mcfs_persist_close(store);
	store = NULL;
	mcfs_ha_stop(lc.ha);
	mcfs_master_destroy(m);
out_free_options:
	mcfs_persist_close(store);
	options_fini(&o);
	return status;
}
