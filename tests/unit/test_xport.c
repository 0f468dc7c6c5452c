// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of backend selection (transport/xport.c) and of the RDMA
 * backend on a machine without RDMA: "rdma" says why it cannot work
 * (-ENODEV or -ENOSYS, -ENOTSUP in a build without it) and "auto" falls
 * back to tcp. The TCP backend itself is tested in test_seg.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/xport.h"

Test(xport, lookup_by_name)
{
	const struct mcfs_xport_ops *ops = NULL;

	cr_assert_eq(mcfs_xport_lookup("tcp", &ops), 0);
	cr_assert_eq(ops, &mcfs_xport_tcp);
	cr_assert_str_eq(ops->name, "tcp");
	cr_assert_eq(mcfs_xport_lookup("rdma", &ops), 0);
	cr_assert_eq(ops, &mcfs_xport_rdma);
	cr_assert_str_eq(ops->name, "rdma");
	cr_assert_eq(mcfs_xport_lookup("infiniband", &ops), -EINVAL);
	cr_assert_eq(mcfs_xport_lookup("", &ops), -EINVAL);
}

#ifdef MCFS_HAVE_RDMA
static const bool built_with_rdma = true;
#else
static const bool built_with_rdma = false;
#endif

/* What the RDMA backend must answer here: this machine has no RDMA. */
static void assert_no_rdma(int ret)
{
	if (!built_with_rdma)
		cr_assert_eq(ret, -ENOTSUP);
	else if (access("/sys/class/infiniband", F_OK))
		cr_assert(ret == -ENOSYS || ret == -ENODEV, "got %d", ret);
	else /* devices may exist, but there is no data path yet */
		cr_assert(ret == -ENOSYS || ret == -ENODEV || ret == -ENOTSUP, "got %d", ret);
}

Test(xport, rdma_says_why_it_cannot_work)
{
	uint8_t seg[4096];
	struct mcfs_xport_server_conf sc = {
	    .host = "127.0.0.1", .seg_base = seg, .seg_size = sizeof(seg)};
	struct mcfs_xport_server *s = NULL;
	struct mcfs_xport_client *c = NULL;

	assert_no_rdma(mcfs_xport_server_create(&mcfs_xport_rdma, &sc, &s));
	cr_assert_null(s);
	assert_no_rdma(mcfs_xport_client_create(&mcfs_xport_rdma, NULL, &c));
	cr_assert_null(c);
	cr_assert_neq(mcfs_xport_rdma.probe(), 0);
}

Test(xport, auto_falls_back_to_tcp)
{
	const struct mcfs_xport_ops *ops = NULL;
	uint8_t seg[4096];
	struct mcfs_xport_server_conf sc = {
	    .host = "127.0.0.1", .seg_base = seg, .seg_size = sizeof(seg)};
	struct mcfs_xport_server *s = NULL;

	cr_assert_eq(mcfs_xport_lookup("auto", &ops), 0);
	cr_assert_eq(ops, &mcfs_xport_tcp);
	cr_assert_eq(mcfs_xport_server_create(ops, &sc, &s), 0);
	cr_assert_not_null(mcfs_xport_server_addr(s));
	cr_assert(strncmp(mcfs_xport_server_addr(s), "127.0.0.1:", 10) == 0);
	mcfs_xport_server_destroy(s);
}

Test(xport, bad_arguments)
{
	struct mcfs_xport_server_conf sc = {.host = "127.0.0.1", .seg_size = 4096};
	struct mcfs_xport_client_conf cc = {.chunk = 64u << 20};
	struct mcfs_xport_server *s = NULL;
	struct mcfs_xport_client *c = NULL;
	struct mcfs_grant g = {0};
	uint8_t b[4];

	cr_assert_eq(mcfs_xport_server_create(&mcfs_xport_tcp, &sc, &s), -EINVAL);
	cr_assert_eq(mcfs_xport_client_create(&mcfs_xport_tcp, &cc, &c), -EINVAL);
	cc = (struct mcfs_xport_client_conf){.depth = 1000};
	cr_assert_eq(mcfs_xport_client_create(&mcfs_xport_tcp, &cc, &c), -EINVAL);
	cr_assert_eq(mcfs_xport_client_create(&mcfs_xport_tcp, NULL, &c), 0);
	cr_assert_eq(mcfs_xport_read(c, NULL, &g, 0, b, 4), -EINVAL);
	cr_assert_eq(mcfs_xport_read(c, "127.0.0.1:1", NULL, 0, b, 4), -EINVAL);
	cr_assert_eq(mcfs_xport_read(c, "127.0.0.1:1", &g, 0, NULL, 4), -EINVAL);
	cr_assert_eq(mcfs_xport_read(c, "no-port-here", &g, 0, b, 4), -EINVAL);
	cr_assert_eq(mcfs_xport_write(c, ":123", &g, 0, b, 4), -EINVAL);
	mcfs_xport_client_destroy(c);
	mcfs_xport_server_destroy(NULL);
	mcfs_xport_client_destroy(NULL);
}
