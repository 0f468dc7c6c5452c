/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file operations mcfs-bench times, in plain POSIX so that the bench
 * runs on any directory: whole-file writes and reads in io-sized calls,
 * commit by rename, run directories and their removal.
 */
#ifndef MCFS_BENCH_FS_H
#define MCFS_BENCH_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * open(O_CREAT|O_WRONLY|O_TRUNC) + write() of buf in calls of at most io
 * bytes + close(). A failing close() is a failed write (a store may
 * publish, and refuse, at close). 0 or -errno.
 */
int bench_fs_write_file(const char *path, const void *buf, size_t len, size_t io);

/*
 * bench_fs_write_file() to tmp, then rename(tmp, path): how serving stacks
 * commit a block, so readers see the old file or the new one. The temp
 * file is removed on failure. 0 or -errno.
 */
int bench_fs_commit_file(const char *tmp, const char *path, const void *buf, size_t len, size_t io);

/*
 * open(O_RDONLY) + read() in calls of at most io bytes until EOF or cap
 * bytes + close(). Returns the bytes read (a file longer than cap reads
 * as cap: pass one byte more than the longest expected file to catch
 * those) or -errno.
 */
ssize_t bench_fs_read_file(const char *path, void *buf, size_t cap, size_t io);

/*
 * Creates "<parent>/mcfs-bench-<what>-<tag>" into out (outsz bytes). With
 * shared, an existing directory is accepted (another mount of the same
 * store created it). 0 or -errno.
 */
int bench_fs_make_rundir(const char *parent, const char *what, const char *tag, bool shared,
			 char *out, size_t outsz);

/* mkdir(path, 0755), EEXIST accepted. 0 or -errno. */
int bench_fs_mkdir(const char *path);

/* Removes path and everything under it; a missing path is fine. 0 or -errno. */
int bench_fs_rmtree(const char *path);

/* true when path is an existing directory. */
bool bench_fs_is_dir(const char *path);

#endif
