// SPDX-License-Identifier: Apache-2.0
/* Finding and following the elected master through etcd (see discover.h). */
#include "mcfs/discover.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "meta/client.h"
#include "meta/etcd.h"

#define WATCH_MS 1000 /* one observe call; also how long a stop may take */

struct mcfs_discover {
	char election[300];
	char *endpoints;
	pthread_mutex_t lock; /* the resolver's handle */
	struct mcfs_etcd *e;
	struct mcfs_etcd *we; /* the watcher's */
	struct mcfs_mc *mc;
	pthread_t watcher;
	bool watching;
	volatile bool stopping;
};

int mcfs_discover_parse(const char *url, char **endpoints, char **cluster)
{
	const char *p, *slash;

	*endpoints = *cluster = NULL;
	if (strncmp(url, "etcd://", 7))
		return -EINVAL;
	p = url + 7;
	slash = strrchr(p, '/');
	if (!slash || slash == p || !slash[1] || strchr(slash + 1, ',') || strlen(slash + 1) > 200)
		return -EINVAL;
	*endpoints = strndup(p, (size_t)(slash - p));
	*cluster = strdup(slash + 1);
	if (!*endpoints || !*cluster) {
		free(*endpoints);
		free(*cluster);
		*endpoints = *cluster = NULL;
		return -ENOMEM;
	}
	return 0;
}

int mcfs_discover_open(const char *url, struct mcfs_discover **out)
{
	struct mcfs_discover *d;
	char *cluster = NULL;
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	ret = mcfs_discover_parse(url, &d->endpoints, &cluster);
	if (ret) {
		mcfs_err("--master %s: expected etcd://HOST:PORT[,HOST:PORT...]/CLUSTER", url);
		goto fail;
	}
	snprintf(d->election, sizeof(d->election), "/mcfs/%s/election", cluster);
	free(cluster);
	ret = mcfs_etcd_open(d->endpoints, &d->e);
	if (!ret)
		ret = mcfs_etcd_open(d->endpoints, &d->we);
	if (ret)
		goto fail;
	mcfs_etcd_set_timeout(d->e, 1000);
	*out = d;
	return 0;
fail:
	mcfs_discover_close(d);
	return ret;
}

int mcfs_discover_resolve(void *arg, char *host, size_t hostsz, uint16_t *port)
{
	struct mcfs_discover *d = arg;
	struct mcfs_etcd_leader l = {0};
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = mcfs_etcd_leader(d->e, d->election, &l);
	pthread_mutex_unlock(&d->lock);
	if (ret)
		return ret;
	if (!l.value_len ||
	    mcfs_parse_hostport((const char *)l.value, "127.0.0.1", host, hostsz, port)) {
		mcfs_warn("the leader in etcd announces a bad address '%.*s'", (int)l.value_len,
			  l.value ? (const char *)l.value : "");
		ret = -EBADMSG;
	}
	mcfs_etcd_leader_fini(&l);
	return ret;
}

static void *watch_main(void *arg)
{
	struct mcfs_discover *d = arg;
	struct mcfs_etcd_leader known = {0};

	(void)mcfs_etcd_leader(d->we, d->election, &known);
	while (!d->stopping) {
		struct mcfs_etcd_leader now = {0};
		int ret = mcfs_etcd_observe(d->we, d->election, known.key ? &known : NULL, WATCH_MS,
					    &now);

		if (ret == 0 || (ret == -ENOENT && known.key)) {
			if (ret == 0)
				mcfs_info("the master leader is now %.*s (epoch %lld)",
					  (int)now.value_len,
					  now.value ? (const char *)now.value : "",
					  (long long)now.rev);
			else
				mcfs_warn("the master leader is gone; waiting for the next one");
			mcfs_mc_kick(d->mc); /* the call in flight moves over */
			mcfs_etcd_leader_fini(&known);
			known = now;
			continue;
		}
		mcfs_etcd_leader_fini(&now);
		if (ret != -ETIMEDOUT && !d->stopping) {
			/* etcd unreachable: wait a little, quietly, and look again. */
			struct timespec ts = {0, 200 * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
	mcfs_etcd_leader_fini(&known);
	return NULL;
}

int mcfs_discover_watch(struct mcfs_discover *d, struct mcfs_mc *mc)
{
	int ret;

	d->mc = mc;
	ret = pthread_create(&d->watcher, NULL, watch_main, d);
	if (ret)
		return -ret;
	d->watching = true;
	return 0;
}

void mcfs_discover_close(struct mcfs_discover *d)
{
	if (!d)
		return;
	d->stopping = true;
	if (d->watching)
		pthread_join(d->watcher, NULL);
	mcfs_etcd_close(d->e);
	mcfs_etcd_close(d->we);
	pthread_mutex_destroy(&d->lock);
	free(d->endpoints);
	free(d);
}
