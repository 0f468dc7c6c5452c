// SPDX-License-Identifier: Apache-2.0
/*
 * mcfs-rebuildbench: how long a master takes to rebuild its tables from
 * the nodes' reports (issue 6: "the rebuild time for 1 million objects").
 *
 *   mcfs-rebuildbench [--objects N] [--nodes K] [--dirs D]
 *
 * An in-process master (the real one, through the real codec) gets K nodes
 * (HELLO with REPORT), each reporting N/K files spread over D directories,
 * in REPORT frames of 1 MiB, as a daemon does after a restart; files are
 * 4-64 KiB at increasing offsets of a segment large enough for them. It
 * prints the time from the first HELLO to the last REPORT_END, records
 * per second, and the master's resident memory growth per object.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"
#include "meta/client.h"
#include "meta/master.h"
#include "meta/proto.h"
#include "tools/proc_rss.h"

static int call(struct mcfs_mc *mc, struct mcfs_msg *q, struct mcfs_msg *r, struct mcfs_buf *rb)
{
	int ret = mcfs_mc_call(mc, q, r, rb);

	if (ret)
		fprintf(stderr, "mcfs-rebuildbench: %s: %s\n", mcfs_msg_name(q->type),
			strerror(-ret));
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"objects", required_argument, NULL, 'n'},
						 {"nodes", required_argument, NULL, 'k'},
						 {"dirs", required_argument, NULL, 'd'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	unsigned long objects = 1000000, nodes = 4, dirs = 1000;
	struct mcfs_master *m;
	struct mcfs_msg q, r;
	struct mcfs_buf rb, recs;
	uint64_t t0, t1, dir0;
	long rss0, rss1;
	char name[64];
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			objects = strtoul(optarg, NULL, 10);
			break;
		case 'k':
			nodes = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			dirs = strtoul(optarg, NULL, 10);
			break;
		case 'h':
			printf("usage: mcfs-rebuildbench [--objects N] [--nodes K] [--dirs D]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!objects || !nodes || !dirs || nodes > 1000) {
		fprintf(stderr, "mcfs-rebuildbench: --objects, --nodes and --dirs must be > 0 "
				"(nodes at most 1000)\n");
		return 2;
	}
	if (mcfs_master_create(NULL, &m))
		return 1;
	mcfs_buf_init(&rb);
	mcfs_buf_init(&recs);

	/* The directories (in a real restart they come from the store). */
	{
		struct mcfs_mc *mc;

		if (mcfs_mc_embedded(m, &mc))
			return 1;
		memset(&q, 0, sizeof(q));
		q.type = MCFS_MSG_HELLO;
		q.proto = MCFS_PROTO_VERSION;
		q.name.p = (const uint8_t *)"setup";
		q.name.len = 5;
		if (call(mc, &q, &r, &rb))
			return 1;
		dir0 = 0;
		for (unsigned long d = 0; d < dirs; d++) {
			memset(&q, 0, sizeof(q));
			q.type = MCFS_MSG_MKDIR;
			q.ino = 1;
			snprintf(name, sizeof(name), "dir%06lu", d);
			q.name.p = (const uint8_t *)name;
			q.name.len = (uint32_t)strlen(name);
			q.mode = 0755;
			if (call(mc, &q, &r, &rb))
				return 1;
			if (!dir0)
				dir0 = r.attr.ino;
		}
		mcfs_mc_close(mc);
	}

	rss0 = proc_rss_kib(0);
	t0 = mcfs_now_ms();
	for (unsigned long k = 0; k < nodes; k++) {
		unsigned long first = objects * k / nodes, last = objects * (k + 1) / nodes;
		uint64_t off = 0;
		struct mcfs_mc *mc;
		char node[32];

		if (mcfs_mc_embedded(m, &mc))
			return 1;
		memset(&q, 0, sizeof(q));
		q.type = MCFS_MSG_HELLO;
		q.proto = MCFS_PROTO_VERSION;
		snprintf(node, sizeof(node), "node%lu", k);
		q.name.p = (const uint8_t *)node;
		q.name.len = (uint32_t)strlen(node);
		q.name2.p = (const uint8_t *)"127.0.0.1:1";
		q.name2.len = 11;
		q.size = (uint64_t)(last - first) * (64u << 10) + (1u << 20);
		q.flags = MCFS_HELLO_REPORT;
		q.incarnation = k + 1;
		if (call(mc, &q, &r, &rb))
			return 1;
		recs.len = 0;
		for (unsigned long i = first; i <= last; i++) {
			struct mcfs_rec rec;

			if (i == last || recs.len > (1u << 20) - 512) {
				memset(&q, 0, sizeof(q));
				q.type = MCFS_MSG_REPORT;
				q.value.p = recs.data;
				q.value.len = (uint32_t)recs.len;
				if (recs.len && call(mc, &q, &r, &rb))
					return 1;
				recs.len = 0;
				if (i == last)
					break;
			}
			memset(&rec, 0, sizeof(rec));
			rec.kind = MCFS_REC_FILE;
			rec.ino = dir0 + dirs + 16 + i;
			rec.version = i + 1;
			rec.parent = dir0 + i % dirs;
			snprintf(name, sizeof(name), "blk_%08lu", i);
			rec.name.p = (const uint8_t *)name;
			rec.name.len = (uint32_t)strlen(name);
			rec.mode = 0100644;
			rec.replica_num = 1;
			rec.size = (uint64_t)(4 + i % 61) << 10;
			rec.nrep = 1;
			rec.rep[0].offset = off;
			rec.rep[0].len = (rec.size + 4095) & ~(uint64_t)4095; /* whole pages */
			rec.rep[0].tier = 1;
			off += rec.rep[0].len;
			mcfs_rec_put(&recs, &rec);
		}
		memset(&q, 0, sizeof(q));
		q.type = MCFS_MSG_REPORT_END;
		if (call(mc, &q, &r, &rb))
			return 1;
		mcfs_mc_close(mc);
	}
	t1 = mcfs_now_ms();
	rss1 = proc_rss_kib(0);
	printf("rebuilt %lu objects from %lu nodes in %lu directories: %.3f s, %.0f objects/s, "
	       "%.0f bytes of master memory per object (RSS)\n",
	       objects, nodes, dirs, (double)(t1 - t0) / 1000,
	       (double)objects * 1000 / (double)(t1 - t0 ? t1 - t0 : 1),
	       (double)(rss1 - rss0) * 1024 / (double)objects);
	mcfs_buf_fini(&rb);
	mcfs_buf_fini(&recs);
	mcfs_master_destroy(m);
	return 0;
}
