// SPDX-License-Identifier: Apache-2.0
/* meta/persist: the master's durable log: replay, deletes, a torn tail, the directory lock. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "meta/persist.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mcfs-persist-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

struct seen {
	int n;
	uint64_t sum;
	uint64_t meta[4];
};

static int count(void *arg, uint8_t kind, uint64_t key, const uint8_t *val, size_t len)
{
	struct seen *s = arg;

	if (kind == MCFS_PERSIST_META && key < 4 && len == 8) {
		s->meta[key] = mcfs_get_u64le(val);
		return 0;
	}
	s->n++;
	s->sum += key * 1000 + len;
	return 0;
}

TestSuite(persist, .init = setup, .fini = teardown);

Test(persist, replay_and_delete)
{
	struct mcfs_persist *p;
	struct seen s = {0};

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	for (uint64_t k = 1; k <= 100; k++)
		cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, k, "abcdefgh", k % 8), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 7, "x", 1), 0); /* replaced */
	for (uint64_t k = 50; k <= 100; k++)
		cr_assert_eq(mcfs_persist_del(p, MCFS_PERSIST_INODE, k), 0);
	cr_assert_eq(mcfs_persist_put_u64(p, MCFS_META_EPOCH, 42), 0);
	cr_assert_eq(mcfs_persist_flush(p), 0);
	mcfs_persist_close(p);

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 49);
	{
		uint64_t want = 0;

		for (uint64_t k = 1; k < 50; k++)
			want += k * 1000 + (k == 7 ? 1 : k % 8);
		cr_assert_eq(s.sum, want);
	}
	cr_assert_eq(s.meta[MCFS_META_EPOCH], 42);
	mcfs_persist_close(p);
}

Test(persist, torn_tail_is_cut)
{
	struct mcfs_persist *p;
	struct seen s = {0};
	char path[128];
	int fd;

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	for (uint64_t k = 2; k < 12; k++)
		cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, k, "0123456789", 10), 0);
	mcfs_persist_close(p);
	/* A crash in the middle of an append: half an entry, then garbage. */
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "\x20\x00\x00\x00\x01\x02", 6), 6);
	close(fd);
	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 10);
	/* Appends after the cut are readable again. */
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 99, "z", 1), 0);
	mcfs_persist_close(p);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 11);
	mcfs_persist_close(p);
}

Test(persist, corrupt_entry_and_foreign_file)
{
	struct mcfs_persist *p;
	struct seen s = {0};
	char path[128];
	struct stat st;
	int fd;

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 5, "aaaa", 4), 0);
	cr_assert_eq(mcfs_persist_put(p, MCFS_PERSIST_INODE, 6, "bbbb", 4), 0);
	mcfs_persist_close(p);
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	cr_assert_eq(stat(path, &st), 0);
	/* Flip a byte of the last entry's value: its crc no longer matches. */
	fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "X", 1, st.st_size - 1), 1);
	close(fd);
	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_load(p, count, &s), 0);
	cr_assert_eq(s.n, 1);
	mcfs_persist_close(p);

	fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_eq(write(fd, "not a log", 9), 9);
	close(fd);
	cr_assert_eq(mcfs_persist_open(dir, &p), -EINVAL);
}

Test(persist, one_master_per_directory)
{
	struct mcfs_persist *p, *q;

	cr_assert_eq(mcfs_persist_open(dir, &p), 0);
	cr_assert_eq(mcfs_persist_open(dir, &q), -EBUSY);
	mcfs_persist_close(p);
	cr_assert_eq(mcfs_persist_open(dir, &q), 0);
	mcfs_persist_close(q);
}
