// SPDX-License-Identifier: Apache-2.0
/*
 * /dev/fuse I/O with one addition (see kio.h): the FUSE_INIT exchange is
 * watched, and when the kernel offers FUSE_DIRECT_IO_ALLOW_MMAP in its
 * extended flags, the reply asks for it. Every other message passes through
 * unchanged.
 */
#include "mcfs/kio.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"

/* Protocol 7.39 names, absent from older kernel headers. */
#define KIO_INIT_EXT		  (1u << 30)
#define KIO_DIRECT_IO_ALLOW_MMAP2 (1u << (36 - 32)) /* in flags2 */

/* Offsets in struct fuse_init_in / fuse_init_out (stable since 7.36). */
#define INIT_IN_FLAGS	12
#define INIT_IN_FLAGS2	16
#define INIT_OUT_FLAGS	12
#define INIT_OUT_FLAGS2 32

static uint64_t init_unique; /* the FUSE_INIT request, while unanswered */
static bool kernel_offers;
static bool granted;

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static ssize_t kio_read(int fd, void *buf, size_t len, void *userdata)
{
	const struct fuse_in_header *in = buf;
	ssize_t n = read(fd, buf, len);

	(void)userdata;
	if (n >= (ssize_t)sizeof(*in) && in->opcode == FUSE_INIT) {
		const uint8_t *arg = (const uint8_t *)buf + sizeof(*in);
		size_t arglen = (size_t)n - sizeof(*in);

		init_unique = in->unique;
		kernel_offers = arglen >= INIT_IN_FLAGS2 + 4 &&
				(get32(arg + INIT_IN_FLAGS) & KIO_INIT_EXT) &&
				(get32(arg + INIT_IN_FLAGS2) & KIO_DIRECT_IO_ALLOW_MMAP2);
	}
	return n;
}

static ssize_t kio_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (init_unique && count >= 2 && iov[0].iov_len >= sizeof(struct fuse_out_header)) {
		struct fuse_out_header *out = iov[0].iov_base;

		if (out->unique == init_unique) {
			uint8_t *arg = iov[1].iov_base;
			uint32_t flags, flags2;

			init_unique = 0;
			if (!out->error && kernel_offers && iov[1].iov_len >= INIT_OUT_FLAGS2 + 4) {
				flags = get32(arg + INIT_OUT_FLAGS) | KIO_INIT_EXT;
				flags2 = get32(arg + INIT_OUT_FLAGS2) | KIO_DIRECT_IO_ALLOW_MMAP2;
				memcpy(arg + INIT_OUT_FLAGS, &flags, 4);
				memcpy(arg + INIT_OUT_FLAGS2, &flags2, 4);
				granted = true;
			}
			mcfs_debug("direct_io mmap: %s",
				   granted ? "on" : "not offered by the kernel");
		}
	}
	return writev(fd, iov, count);
}

static const struct fuse_custom_io kio_ops = {
    .read = kio_read,
    .writev = kio_writev,
};

int mcfs_kio_install(struct fuse_session *se)
{
	int fd = fuse_session_fd(se);

	if (fd < 0)
		return -EBADF;
	return fuse_session_custom_io(se, &kio_ops, fd);
}

bool mcfs_kio_direct_io_mmap(void)
{
	return granted;
}
