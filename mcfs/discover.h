/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --master etcd://HOST:PORT[,HOST:PORT...]/CLUSTER: find the elected master
 * through etcd (the election "/mcfs/CLUSTER/election", whose value is the
 * leader's RPC address) and follow its changes: a watcher thread observes
 * the election and breaks the client's connection when the leader changes,
 * so the call in flight goes to the new leader at once.
 */
#ifndef MCFS_DISCOVER_H
#define MCFS_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

struct mcfs_discover;
struct mcfs_mc;

/* Split "etcd://EP[,EP...]/NAME". 0 or -EINVAL; *endpoints and *cluster are malloc'ed. */
int mcfs_discover_parse(const char *url, char **endpoints, char **cluster);

/* 0, -EINVAL (bad URL, logged), -ENOMEM. */
int mcfs_discover_open(const char *url, struct mcfs_discover **out);
/* The resolver for mcfs_mc_connect_resolve() (arg: the discover). -ENOENT without a leader. */
int mcfs_discover_resolve(void *arg, char *host, size_t hostsz, uint16_t *port);
/* Start following leader changes for mc. */
int mcfs_discover_watch(struct mcfs_discover *d, struct mcfs_mc *mc);
/* Stop the watcher (within about a second) and free d. Accepts NULL. */
void mcfs_discover_close(struct mcfs_discover *d);

#endif
