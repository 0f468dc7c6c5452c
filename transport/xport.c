// SPDX-License-Identifier: Apache-2.0
/*
 * The public segment transport calls (xport.h): pick a backend, and route
 * every call on a server or client to the backend that created it.
 */
#include "transport/xport.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "transport/xport_i.h"

int mcfs_xport_lookup(const char *name, const struct mcfs_xport_ops **out)
{
	int ret;

	if (!name || !out)
		return -EINVAL;
	if (!strcmp(name, "tcp")) {
		*out = &mcfs_xport_tcp;
		return 0;
	}
	if (!strcmp(name, "rdma")) {
		*out = &mcfs_xport_rdma;
		return 0;
	}
	if (!strcmp(name, "auto")) {
		ret = mcfs_xport_rdma.probe();
		mcfs_debug("transport auto: rdma %s", ret ? strerror(-ret) : "works");
		*out = ret ? &mcfs_xport_tcp : &mcfs_xport_rdma;
		return 0;
	}
	return -EINVAL;
}

int mcfs_xport_server_create(const struct mcfs_xport_ops *ops,
			     const struct mcfs_xport_server_conf *c, struct mcfs_xport_server **out)
{
	int ret;

	if (!ops || !c || !out)
		return -EINVAL;
	ret = ops->server_create(c, out);
	if (!ret)
		(*out)->ops = ops;
	return ret;
}

const char *mcfs_xport_server_addr(const struct mcfs_xport_server *s)
{
	return s->ops->server_addr(s);
}

int mcfs_xport_server_start(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
			    const uint8_t *secret)
{
	if (!secret)
		return -EINVAL;
	return s->ops->server_start(s, node_id, seg_id, secret);
}

void mcfs_xport_server_set_identity(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
				    const uint8_t *secret)
{
	s->ops->server_set_identity(s, node_id, seg_id, secret);
}

void mcfs_xport_server_stats(const struct mcfs_xport_server *s, struct mcfs_xport_stats *st)
{
	s->ops->server_stats(s, st);
}

void mcfs_xport_server_destroy(struct mcfs_xport_server *s)
{
	if (s)
		s->ops->server_destroy(s);
}

int mcfs_xport_client_create(const struct mcfs_xport_ops *ops,
			     const struct mcfs_xport_client_conf *conf,
			     struct mcfs_xport_client **out)
{
	int ret;

	if (!ops || !out)
		return -EINVAL;
	ret = ops->client_create(conf, out);
	if (!ret)
		(*out)->ops = ops;
	return ret;
}

void mcfs_xport_client_destroy(struct mcfs_xport_client *c)
{
	if (c)
		c->ops->client_destroy(c);
}

int mcfs_xport_read(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		    uint64_t off, void *buf, size_t len)
{
	if (!c || !addr || !g || (!buf && len))
		return -EINVAL;
	return c->ops->read(c, addr, g, off, buf, len);
}

int mcfs_xport_write(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		     uint64_t off, const void *buf, size_t len)
{
	if (!c || !addr || !g || (!buf && len))
		return -EINVAL;
	return c->ops->write(c, addr, g, off, buf, len);
}
