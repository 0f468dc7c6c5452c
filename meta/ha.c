// SPDX-License-Identifier: Apache-2.0
/* Leader election for mcfs-master through etcd (see meta/ha.h). */
#include "meta/ha.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "meta/etcd.h"

struct mcfs_ha {
	char *urls, *advertise;
	char election[256];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	int64_t lease; /* 0 while none is held */
	enum mcfs_ha_state state;
	struct mcfs_etcd_leader won; /* filled once elected */
	pthread_t keeper, campaigner;
	struct mcfs_etcd *loop_etcd;
};

int mcfs_ha_key(const char *cluster, const char *what, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "/mcfs/%s/%s", cluster, what);

	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

/* Sleep up to ms, or until stopping. Called with h->lock held. */
static void nap_locked(struct mcfs_ha *h, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if (!h->stopping)
		pthread_cond_timedwait(&h->cond, &h->lock, &ts);
}

/* Holds the lease: grants one, keeps it alive; its loss ends a leadership. */
static void *keeper_main(void *arg)
{
	struct mcfs_ha *h = arg;
	struct mcfs_etcd *e = NULL;
	bool said = false;

	if (mcfs_etcd_open(h->urls, &e))
		return NULL;
	mcfs_etcd_set_timeout(e, 1000);
	pthread_mutex_lock(&h->lock);
	while (!h->stopping && h->state != MCFS_HA_LOST) {
		int64_t lease = h->lease, ttl = 0;
		int ret;

		pthread_mutex_unlock(&h->lock);
		if (!lease) {
			ret = mcfs_etcd_lease_grant(e, MCFS_HA_LEASE_TTL_S, &lease);
			if (ret && !said) {
				mcfs_warn("etcd at %s: cannot grant a lease (%s); retrying",
					  h->urls, mcfs_etcd_errmsg(e));
				said = true;
			}
		} else {
			ret = mcfs_etcd_lease_keepalive(e, lease, &ttl);
		}
		pthread_mutex_lock(&h->lock);
		if (!ret && !h->lease) {
			h->lease = lease;
			said = false;
			pthread_cond_broadcast(&h->cond);
		} else if (ret == -ENOENT && h->lease) {
			/* etcd let it expire: whoever we were, we are not leader any more. */
			if (h->state == MCFS_HA_LEADER || h->state == MCFS_HA_ELECTED) {
				mcfs_err("the etcd lease of this master expired: leadership lost");
				h->state = MCFS_HA_LOST;
			}
			h->lease = 0;
		}
		nap_locked(h, h->lease ? MCFS_HA_KEEPALIVE_MS : 500);
	}
	pthread_mutex_unlock(&h->lock);
	mcfs_etcd_close(e);
	return NULL;
}

/* Campaigns with the current lease until elected. */
static void *campaigner_main(void *arg)
{
	struct mcfs_ha *h = arg;
	struct mcfs_etcd *e = NULL;

	if (mcfs_etcd_open(h->urls, &e))
		return NULL;
	pthread_mutex_lock(&h->lock);
	while (!h->stopping && h->state == MCFS_HA_STANDBY) {
		struct mcfs_etcd_leader l = {0};
		int64_t lease = h->lease;
		int ret;

		if (!lease) {
			nap_locked(h, 200);
			continue;
		}
		pthread_mutex_unlock(&h->lock);
		ret = mcfs_etcd_campaign(e, h->election, lease, h->advertise, strlen(h->advertise),
					 3000, &l);
		pthread_mutex_lock(&h->lock);
		if (!ret) {
			if (h->lease != lease || h->stopping) {
				mcfs_etcd_leader_fini(&l);
				continue; /* won with a lease since lost: campaign again */
			}
			h->won = l;
			h->state = MCFS_HA_ELECTED;
			mcfs_info("elected leader of %s (epoch %lld)", h->election,
				  (long long)l.rev);
			break;
		}
		if (ret != -ETIMEDOUT)
			nap_locked(h, 300); /* etcd down, or the lease just expired */
	}
	pthread_mutex_unlock(&h->lock);
	mcfs_etcd_close(e);
	return NULL;
}

int mcfs_ha_start(const char *urls, const char *cluster, const char *advertise,
		  struct mcfs_ha **out)
{
	struct mcfs_ha *h = calloc(1, sizeof(*h));
	int ret;

	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->urls = strdup(urls);
	h->advertise = strdup(advertise);
	ret = !h->urls || !h->advertise ? -ENOMEM : 0;
	if (!ret)
		ret = mcfs_ha_key(cluster, "election", h->election, sizeof(h->election));
	if (!ret)
		ret = mcfs_etcd_open(urls, &h->loop_etcd);
	if (!ret)
		ret = -pthread_create(&h->keeper, NULL, keeper_main, h);
	if (ret) {
		mcfs_etcd_close(h->loop_etcd);
		free(h->urls);
		free(h->advertise);
		free(h);
		return ret;
	}
	ret = -pthread_create(&h->campaigner, NULL, campaigner_main, h);
	if (ret) {
		pthread_mutex_lock(&h->lock);
		h->stopping = true;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->keeper, NULL);
		mcfs_etcd_close(h->loop_etcd);
		free(h->urls);
		free(h->advertise);
		free(h);
		return ret;
	}
	*out = h;
	return 0;
}

void mcfs_ha_stop(struct mcfs_ha *h)
{
	int64_t lease;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->keeper, NULL);
	pthread_join(h->campaigner, NULL); /* a campaign in flight ends within its timeout */
	lease = h->lease;
	if (h->won.key)
		(void)mcfs_etcd_resign(h->loop_etcd, &h->won);
	if (lease)
		(void)mcfs_etcd_lease_revoke(h->loop_etcd, lease); /* a standby at once */
	mcfs_etcd_leader_fini(&h->won);
	mcfs_etcd_close(h->loop_etcd);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h->urls);
	free(h->advertise);
	free(h);
}

enum mcfs_ha_state mcfs_ha_poll(struct mcfs_ha *h, int64_t *rev, const char **key)
{
	enum mcfs_ha_state s;

	pthread_mutex_lock(&h->lock);
	s = h->state;
	if (s == MCFS_HA_ELECTED) {
		*rev = h->won.rev;
		*key = h->won.key;
	}
	pthread_mutex_unlock(&h->lock);
	return s;
}

void mcfs_ha_took_over(struct mcfs_ha *h)
{
	pthread_mutex_lock(&h->lock);
	if (h->state == MCFS_HA_ELECTED)
		h->state = MCFS_HA_LEADER;
	pthread_mutex_unlock(&h->lock);
}

struct mcfs_etcd *mcfs_ha_etcd(struct mcfs_ha *h)
{
	return h->loop_etcd;
}
