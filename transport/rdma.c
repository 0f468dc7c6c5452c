// SPDX-License-Identifier: Apache-2.0
/*
 * The RDMA segment transport, built against libibverbs when MCFS_RDMA=ON
 * (rdma_stub.c otherwise).
 *
 * Only device detection exists so far. Over RDMA a read or write of a
 * granted range becomes an RDMA READ/WRITE with the segment's remote key,
 * which the master hands out with the replica (mcfs_replica.rkey); until
 * that data path is written, creating a server or client fails with
 * -ENOTSUP once devices are found, and probe() says the same, so "auto"
 * picks tcp. Without devices the errors follow rdma-core: -ENODEV, "No RDMA
 * devices were detected", told apart from -ENOSYS, no kernel support.
 */
#include <errno.h>
#include <infiniband/verbs.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "transport/xport_i.h"

/* Are there devices? 0, -ENOSYS (no kernel support), -ENODEV (none), -errno. */
static int detect_devices(void)
{
	struct ibv_device **list;
	int n = 0;

	if (access("/sys/class/infiniband", F_OK))
		return -ENOSYS;
	errno = 0;
	list = ibv_get_device_list(&n);
	if (!list)
		return errno == ENOSYS ? -ENOSYS : errno ? -errno : -ENODEV;
	ibv_free_device_list(list);
	return n > 0 ? 0 : -ENODEV;
}

static int rdma_probe(void)
{
	int ret = detect_devices();

	/* Devices, but no data path yet (see above). */
	return ret ? ret : -ENOTSUP;
}

/* The reason create fails, logged once per call. */
static int rdma_unavailable(const char *what)
{
	int ret = detect_devices();

	switch (ret) {
	case -ENODEV:
		mcfs_err("rdma %s: No RDMA devices were detected", what);
		break;
	case -ENOSYS:
		mcfs_err("rdma %s: the kernel has no RDMA support (no /sys/class/infiniband, "
			 "or the verbs library reports ENOSYS)",
			 what);
		break;
	case 0:
		mcfs_err("rdma %s: RDMA devices found, but the RDMA data path is not "
			 "implemented yet; use the tcp transport",
			 what);
		ret = -ENOTSUP;
		break;
	default:
		mcfs_err("rdma %s: cannot list RDMA devices: %s", what, strerror(-ret));
	}
	return ret;
}

static int rdma_server_create(const struct mcfs_xport_server_conf *c,
			      struct mcfs_xport_server **out)
{
	(void)c;
	(void)out;
	return rdma_unavailable("server");
}

static int rdma_client_create(const struct mcfs_xport_client_conf *c,
			      struct mcfs_xport_client **out)
{
	(void)c;
	(void)out;
	return rdma_unavailable("client");
}

/*
 * No server or client can exist, so nothing below is ever called; they are
 * here so that the table is whole.
 */
static const char *rdma_server_addr(const struct mcfs_xport_server *s)
{
	(void)s;
	return "";
}

static int rdma_server_start(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
			     const uint8_t *secret)
{
	(void)s;
	(void)node_id;
	(void)seg_id;
	(void)secret;
	return -ENOTSUP;
}

static void rdma_server_set_identity(struct mcfs_xport_server *s, uint64_t node_id, uint32_t seg_id,
				     const uint8_t *secret)
{
	(void)s;
	(void)node_id;
	(void)seg_id;
	(void)secret;
}

static void rdma_server_stats(const struct mcfs_xport_server *s, struct mcfs_xport_stats *st)
{
	(void)s;
	*st = (struct mcfs_xport_stats){0};
}

static void rdma_server_destroy(struct mcfs_xport_server *s)
{
	(void)s;
}

static void rdma_client_destroy(struct mcfs_xport_client *c)
{
	(void)c;
}

static int rdma_read(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
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

static int rdma_write(struct mcfs_xport_client *c, const char *addr, const struct mcfs_grant *g,
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
    .probe = rdma_probe,
    .server_create = rdma_server_create,
    .server_addr = rdma_server_addr,
    .server_start = rdma_server_start,
    .server_set_identity = rdma_server_set_identity,
    .server_stats = rdma_server_stats,
    .server_destroy = rdma_server_destroy,
    .client_create = rdma_client_create,
    .client_destroy = rdma_client_destroy,
    .read = rdma_read,
    .write = rdma_write,
};
