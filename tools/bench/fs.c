// SPDX-License-Identifier: Apache-2.0
/*
 * EINTR is retried everywhere: a progress-bar timer or ^C must not turn
 * into a failed operation in the middle of a measurement.
 */
#include "tools/bench/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int bench_fs_write_file(const char *path, const void *buf, size_t len, size_t io)
{
	const char *p = buf;
	size_t done = 0;
	int fd, ret = 0;

	do {
		fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	while (done < len) {
		size_t n = len - done < io ? len - done : io;
		ssize_t w = write(fd, p + done, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ret = -errno;
			break;
		}
		if (w == 0) {
			ret = -EIO;
			break;
		}
		done += (size_t)w;
	}
	/* close() is not retried on EINTR: the descriptor is gone either way. */
	if (close(fd) < 0 && !ret)
		ret = -errno;
	return ret;
}

int bench_fs_commit_file(const char *tmp, const char *path, const void *buf, size_t len, size_t io)
{
	int ret = bench_fs_write_file(tmp, buf, len, io);

	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

ssize_t bench_fs_read_file(const char *path, void *buf, size_t cap, size_t io)
{
	char *p = buf;
	size_t done = 0;
	int fd;
	ssize_t ret;

	do {
		fd = open(path, O_RDONLY | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	while (done < cap) {
		size_t n = cap - done < io ? cap - done : io;
		ssize_t r = read(fd, p + done, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			close(fd);
			return ret;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	if (close(fd) < 0)
		return -errno;
	return (ssize_t)done;
}

int bench_fs_mkdir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int bench_fs_make_rundir(const char *parent, const char *what, const char *tag, bool shared,
			 char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s/mcfs-bench-%s-%s", parent, what, tag);

	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	if (mkdir(out, 0755) < 0 && !(shared && errno == EEXIST))
		return -errno;
	return 0;
}

/* nftw() has no context argument: the first failure of this thread's walk. */
static __thread int rm_err;

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) && errno != ENOENT) {
		rm_err = -errno;
		return 1; /* stops the walk */
	}
	return 0;
}

int bench_fs_rmtree(const char *path)
{
	struct stat st;
	int ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	rm_err = 0;
	ret = nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
	if (ret == 1)
		return rm_err;
	if (ret < 0)
		return errno ? -errno : -EIO;
	return 0;
}

bool bench_fs_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
