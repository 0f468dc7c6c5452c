/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Our own reads and writes of /dev/fuse, installed with
 * fuse_session_custom_io(), so that the daemon can ask the kernel for
 * FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6, protocol 7.39), which libfuse 3.14
 * does not know: with it, files opened with direct_io may still be mapped
 * MAP_SHARED. mcfs reads with direct_io because the kernel keeps one page
 * cache and one size per inode, while mcfs lets each open handle read its
 * own version of a file. The same hook lets the daemon poll the device for
 * a moment before it sleeps (mcfs_kio_set_poll).
 */
#ifndef MCFS_KIO_H
#define MCFS_KIO_H

#include <stdbool.h>

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

/*
 * Poll the device for us microseconds after each request before sleeping
 * (0: sleep at once). Call before mcfs_kio_install().
 */
void mcfs_kio_set_poll(unsigned int us);

/*
 * Wake the session loop's wait for requests, for a stop: call from a signal
 * handler (async-signal-safe) after fuse_session_exit().
 */
void mcfs_kio_stop(void);

/* Take over the session's device I/O (after fuse_session_mount). 0 or -errno. */
int mcfs_kio_install(struct fuse_session *se);

/* After FUSE_INIT: whether the kernel agreed to map direct_io files shared. */
bool mcfs_kio_direct_io_mmap(void);

#endif
