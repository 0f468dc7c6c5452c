// SPDX-License-Identifier: Apache-2.0
/*
 * The RDMA segment transport when built with MCFS_RDMA=OFF: every call
 * fails with -ENOTSUP, so "auto" picks tcp and "rdma" says why it cannot.
 */
#include <errno.h>

#include "common/log.h"
#include "transport/xport_i.h"

static int stub_probe(void)
{
	return -ENOTSUP;
}

static int stub_server_create(const struct mcfs_xport_server_conf *c,
			      struct mcfs_xport_server **out)
{
	(void)c;
	(void)out;
	mcfs_err("rdma: this build has no RDMA support (built with MCFS_RDMA=OFF)");
	return -ENOTSUP;
}

static int stub_client_create(const struct mcfs_xport_client_conf *c,
			      struct mcfs_xport_client **out)
{
	(void)c;
	(void)out;
	mcfs_err("rdma: this build has no RDMA support (built with MCFS_RDMA=OFF)");
	return -ENOTSUP;
}

/* No server or client can exist: nothing below is ever called. */
static const char *stub_server_addr(const struct mcfs_xport_server *s)
{
	(void)s;
	return "";
}

static int stub_server_start(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
			     const uint8_t *secret)
{
	(void)s;
	(void)node_id;
	(void)seg_id;
	(void)secret;
	return -ENOTSUP;
}

static void stub_server_set_identity(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
				     const uint8_t *secret)
{
	(void)s;
	(void)node_id;
	(void)seg_id;
	(void)secret;
}

static void stub_server_stats(const struct mcfs_xport_server *s, struct mcfs_xport_stats *st)
{
	(void)s;
	*st = (struct mcfs_xport_stats){0};
}

static void stub_server_destroy(struct mcfs_xport_server *s)
{
	(void)s;
}

static void stub_client_destroy(struct mcfs_xport_client *c)
{
	(void)c;
}

static int stub_read(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		     uint64_t off, void *buf, size_t len)
{
	(void)c;
	(void)addr;
	(void)g;
	(void)off;
	(void)buf;
	(void)len;
	return -ENOTSUP;
}

static int stub_write(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
		      uint64_t off, const void *buf, size_t len)
{
	(void)c;
	(void)addr;
	(void)g;
	(void)off;
	(void)buf;
	(void)len;
	return -ENOTSUP;
}

const struct mcfs_xport_ops mcfs_xport_rdma = {
    .name = "rdma",
    .probe = stub_probe,
    .server_create = stub_server_create,
    .server_addr = stub_server_addr,
    .server_start = stub_server_start,
    .server_set_identity = stub_server_set_identity,
    .server_stats = stub_server_stats,
    .server_destroy = stub_server_destroy,
    .client_create = stub_client_create,
    .client_destroy = stub_client_destroy,
    .read = stub_read,
    .write = stub_write,
};
