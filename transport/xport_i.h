/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the backends of the segment transport share with xport.c: every
 * backend's server and client struct starts with one of these, so that a
 * call on it finds its way back to the backend that made it.
 */
#ifndef MCFS_XPORT_I_H
#define MCFS_XPORT_I_H

#include "transport/xport.h"

struct mcfs_xport_server {
	const struct mcfs_xport_ops *ops; /* set by mcfs_xport_server_create() */
};

struct mcfs_xport_client {
	const struct mcfs_xport_ops *ops; /* set by mcfs_xport_client_create() */
};

#endif
