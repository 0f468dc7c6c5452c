/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata protocol between nodes and the master: message types, the
 * fields each one carries, and their codec. docs/protocol.md describes every
 * message for people; this header is the same contract for code.
 *
 * A message is one frame (transport/frame.h). A request payload is the
 * fields of its type's request schema, in order; a response payload is
 *
 *   i32 status   0 or a negative Linux errno
 *   u64 epoch    the master's epoch (leader election revision; 1 without HA)
 *
 * followed, when status is 0, by the fields of the response schema. Fields
 * are fixed-width little-endian integers; strings and blobs are a u32
 * length and the bytes. The decoder checks every length against the frame
 * and against the field's own limit before use, and rejects trailing bytes.
 *
 * All strings and blobs in a decoded message point into the frame it was
 * decoded from: they are borrowed, valid as long as that buffer is.
 */
#ifndef MCFS_PROTO_H
#define MCFS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "transport/frame.h"

#define MCFS_PROTO_VERSION	  3
#define MCFS_NAME_MAX		  255	      /* one path component, an xattr name */
#define MCFS_PATH_MAX		  4095	      /* a symlink target */
#define MCFS_XATTR_MAX		  (64u << 10) /* all user xattrs of one file together */
#define MCFS_XATTR_ENTRY_OVERHEAD 8 /* counted per xattr in MCFS_XATTR_MAX: two u32 lengths */
#define MCFS_MAX_REPLICAS	  8
#define MCFS_ROOT_INO		  1

enum mcfs_msg_type {
	MCFS_MSG_HELLO = 1,	/* node joins: name, addr, segment size -> node_id */
	MCFS_MSG_HEARTBEAT = 2, /* node is alive -> the repair generation */
	MCFS_MSG_BYE = 3,	/* node leaves cleanly */
	MCFS_MSG_STATFS = 4,	/* pool capacity and free space */
	MCFS_MSG_LOOKUP = 10,	/* (parent, name) -> attr */
	MCFS_MSG_GETATTR = 11,	/* ino -> attr */
	MCFS_MSG_SETATTR = 12,	/* mode, owner, times -> attr */
	MCFS_MSG_MKDIR = 13,	/* (parent, name, mode, uid, gid) -> attr */
	MCFS_MSG_CREATE = 14,	/* new file, visible to its creator node only until published */
	MCFS_MSG_SYMLINK = 15,	/* (parent, name, target) -> attr */
	MCFS_MSG_READLINK = 16, /* ino -> target */
	MCFS_MSG_UNLINK = 17,	/* (parent, name) */
	MCFS_MSG_RMDIR = 18,	/* (parent, name) */
	MCFS_MSG_RENAME = 19,	/* (parent, name) -> (newparent, newname), atomic replace */
	MCFS_MSG_READDIR = 20,	/* (dir, cookie, max) -> entries with attrs */
	MCFS_MSG_SETXATTR = 21, /* user.* and user.mcfs.* */
	MCFS_MSG_GETXATTR = 22,
	MCFS_MSG_LISTXATTR = 23,
	MCFS_MSG_REMOVEXATTR = 24,
	MCFS_MSG_PUT_START =
	    30, /* reserve staging space for a new version of ino (+ its replica_num) */
	MCFS_MSG_PUT_GROW = 31,	  /* grow the staging range in place, or -EAGAIN */
	MCFS_MSG_PUT_END = 32,	  /* publish: size, crc32c, copies not filled -> attr */
	MCFS_MSG_PUT_REVOKE = 33, /* abandon a put, free its space */
	MCFS_MSG_GET = 34,	  /* ino -> attr, replicas, read lease */
	MCFS_MSG_LEASE = 35,	  /* renew the read lease on (ino, version), fresh grants */
	MCFS_MSG_PUT_PLACE = 36,  /* final size known: place the other replicas of a put */
	MCFS_MSG_REPL_START = 37, /* add replicas to a published version (replica_num raised) */
	MCFS_MSG_REPL_END = 38,	  /* the added replicas are written: make them complete */
	MCFS_MSG_SOLE_LIST =
	    39,		      /* objects whose only (or first) complete replica is on the caller */
	MCFS_MSG_BATCH = 40,  /* several requests in one frame, answered in order */
	MCFS_MSG_SYNC = 41,   /* changes to the records of the caller's replicas */
	MCFS_MSG_REPORT = 42, /* after HELLO to a master that restarted: what we hold */
	MCFS_MSG_REPORT_END = 43, /* the report is complete: the segment may be allocated */
	MCFS_MSG_RELEASE = 44,	  /* the caller's last readers of these versions closed */
};

/* RELEASE value: entries of u64 ino, u64 version, u32 count (holds acquired by GET/PUT_END) */
#define MCFS_RELEASE_ENTRY 20

/* HELLO request flags */
#define MCFS_HELLO_REPORT 0x1 /* keeps a catalog (SYNC) and reports it (REPORT) */
/* HELLO response flags */
#define MCFS_HELLO_RESUMED 0x1 /* the master knew this node incarnation: state kept */
#define MCFS_HELLO_DROPPED                                                                         \
	0x2 /* this master dropped this node incarnation: what it held is gone, no REPORT */
/* SYNC response flags */
#define MCFS_SYNC_MORE 0x1 /* more changes are waiting: call again */

/* attr.flags */
#define MCFS_ATTR_PENDING 0x1 /* created, not yet published (creator node only) */

/* SETATTR valid mask */
#define MCFS_SET_MODE	   0x01
#define MCFS_SET_UID	   0x02
#define MCFS_SET_GID	   0x04
#define MCFS_SET_ATIME	   0x08
#define MCFS_SET_MTIME	   0x10
#define MCFS_SET_ATIME_NOW 0x20
#define MCFS_SET_MTIME_NOW 0x40

/* CREATE flags */
#define MCFS_CREATE_EXCL 0x1
/* RENAME flags: Linux RENAME_NOREPLACE / RENAME_EXCHANGE values */
#define MCFS_RENAME_NOREPLACE 0x1
#define MCFS_RENAME_EXCHANGE  0x2
/* SETXATTR flags: XATTR_CREATE / XATTR_REPLACE values */
#define MCFS_XATTR_CREATE  0x1
#define MCFS_XATTR_REPLACE 0x2
/* READDIR response flags */
#define MCFS_READDIR_EOF 0x1

/* SOLE_LIST request flags */
#define MCFS_SOLE_DEGRADED 0x1 /* fewer replicas than replica_num, the first on the caller */

/* replica tier and state */
#define MCFS_TIER_DRAM	  1
#define MCFS_TIER_SSD	  2
#define MCFS_TIER_VRAM	  3
#define MCFS_REP_PENDING  1
#define MCFS_REP_COMPLETE 2

struct mcfs_blob {
	const uint8_t *p; /* borrowed */
	uint32_t len;
};

/* What stat needs, plus the object version. Times in ns since the epoch. */
struct mcfs_attr {
	uint64_t ino;
	uint32_t mode; /* S_IFREG/S_IFDIR/S_IFLNK | permissions */
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint64_t size;
	int64_t atime_ns;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t version; /* published version of a file; 0 before the first put */
	uint32_t flags;	  /* MCFS_ATTR_* */
};

/*
 * One replica of an object: a contiguous range of one node's segment. rkey
 * is the RDMA remote key of that segment (0 over TCP); addr is the node's
 * segment server "HOST:PORT" (empty for the embedded, local-only node).
 * access, expiry_ms and mac form the grant (transport/grant.h) that lets the
 * receiver read (GET, LEASE) or write (PUT_PLACE, REPL_START) exactly this
 * range through that node's segment server until expiry_ms.
 */
struct mcfs_replica {
	uint64_t node_id;
	uint32_t seg_id;
	uint8_t tier;	/* MCFS_TIER_* */
	uint8_t state;	/* MCFS_REP_* */
	uint8_t access; /* MCFS_GRANT_READ / MCFS_GRANT_WRITE, 0 without a grant */
	uint64_t offset;
	uint64_t len;
	uint64_t rkey;
	uint64_t expiry_ms; /* grant deadline, wall-clock ms */
	uint64_t mac;	    /* grant MAC */
	struct mcfs_blob addr;
};

/*
 * A decoded or to-be-encoded message. Only the fields in the type's schema
 * (see proto.c and docs/protocol.md) are encoded or decoded; the others are
 * left alone.
 */
struct mcfs_msg {
	uint16_t type;
	bool resp;
	uint64_t req_id;
	int32_t status; /* responses */
	uint64_t epoch; /* responses */

	uint64_t ino;		/* target inode, or parent directory */
	uint64_t ino2;		/* new parent (rename) */
	struct mcfs_blob name;	/* component name, xattr name, node name */
	struct mcfs_blob name2; /* new name (rename), node address (hello) */
	struct mcfs_blob value; /* xattr value or list, symlink target, dirents, batch */
	uint32_t mode, uid, gid;
	uint32_t flags;
	uint32_t valid; /* SETATTR mask */
	uint32_t count;
	uint32_t crc;
	uint32_t proto;	 /* HELLO: protocol version */
	uint32_t seg_id; /* HELLO: the segment registered for the node (grants name it) */
	uint64_t
	    incarnation; /* HELLO: random per daemon start: a reconnect resumes, a restart not */
	uint64_t size;
	uint64_t total, free;
	uint64_t cookie;
	uint64_t version;
	uint64_t put_id;
	uint64_t node_id;
	uint64_t lease_ms;
	int64_t atime_ns, mtime_ns;
	struct mcfs_attr attr;
	uint32_t nrep;
	struct mcfs_replica rep[MCFS_MAX_REPLICAS];
};

/* Human name of a message type ("LOOKUP"), or NULL when unknown. */
const char *mcfs_msg_name(uint16_t type);

/*
 * Append m as one whole frame to out (type, req_id, resp, status, epoch and
 * the schema's fields). 0, -EINVAL for an unknown type, -ENAMETOOLONG for a
 * name over its limit, -EMSGSIZE for a frame over MCFS_FRAME_MAX, -ENOMEM.
 * On error out is left as it was.
 */
int mcfs_msg_encode(const struct mcfs_msg *m, struct mcfs_buf *out);

/*
 * Decode the payload of a frame whose header h was parsed by
 * mcfs_frame_parse(). m is zeroed first; its blobs borrow from payload.
 * 0, -ENOTSUP for an unknown type, -EBADMSG for a truncated payload, a
 * string over its limit, too many replicas or trailing bytes.
 */
int mcfs_msg_decode(const struct mcfs_frame_hdr *h, const uint8_t *payload, struct mcfs_msg *m);

/* Convenience: parse a whole frame in buf[0..len) (header and payload). */
int mcfs_msg_decode_frame(const uint8_t *buf, size_t len, struct mcfs_msg *m);

/*
 * READDIR entry lists (the value of a READDIR response): per entry
 * u64 cookie, u32 name length, the name, and the attr.
 */
struct mcfs_dirent {
	uint64_t cookie; /* pass back in READDIR to continue after this entry */
	struct mcfs_blob name;
	struct mcfs_attr attr;
};

void mcfs_dirent_put(struct mcfs_buf *b, uint64_t cookie, const char *name, size_t namelen,
		     const struct mcfs_attr *attr);
/* Next entry from r: 1 with *d filled, 0 at the end, -EBADMSG on a malformed entry. */
int mcfs_dirent_next(struct mcfs_rd *r, struct mcfs_dirent *d);

/*
 * SOLE_LIST entry lists (the value of a SOLE_LIST response): per entry
 * u64 cookie, u64 ino, u64 version, u64 size. A node leaving cleanly copies
 * these elsewhere (REPL_START/REPL_END) before BYE.
 */
struct mcfs_sole {
	uint64_t cookie;
	uint64_t ino;
	uint64_t version;
	uint64_t size;
};

void mcfs_sole_put(struct mcfs_buf *b, const struct mcfs_sole *e);
/* Next entry from r: 1 with *e filled, 0 at the end, -EBADMSG on a truncated entry. */
int mcfs_sole_next(struct mcfs_rd *r, struct mcfs_sole *e);

/*
 * Catalog records (the value of SYNC and REPORT, and of a PUT_END response):
 * what a node keeps about each published file it holds a replica of, so a
 * master that restarted, or a new leader, can rebuild its tables from the
 * nodes. Each record is a u32 length and then:
 *
 *   u8 kind, u64 ino, u64 version
 *   MCFS_REC_FILE adds: u64 parent, name, u32 mode, uid, gid, u8 flags
 *   (MCFS_I_* pins), u8 replica_num, i64 mtime_ns, ctime_ns, u64 pin_wall_ms
 *   (soft pin deadline, wall clock; 0 none), u64 size, u32 crc, xattrs (blob:
 *   u32 nlen, name, u32 vlen, value, ...), u8 nrep and per replica on the
 *   holder u64 offset, u64 len, u8 tier.
 *
 * MCFS_REC_DROP: forget ino unless the record held is newer than version.
 * MCFS_REC_DIR and MCFS_REC_LINK are what the master keeps durable itself
 * (meta/persist.h): FILE's fields (no replicas), a symlink's target after.
 */
#define MCFS_REC_FILE 1
#define MCFS_REC_DROP 2
#define MCFS_REC_DIR  3 /* the master's own durable records: FILE's layout, no replicas */
#define MCFS_REC_LINK 4 /* the same plus the target (blob) */
#define MCFS_REC_MAX  (MCFS_XATTR_MAX + 8192) /* one encoded record, at most */

struct mcfs_rec {
	uint8_t kind;
	uint64_t ino;
	uint64_t version;
	uint64_t parent;
	struct mcfs_blob name;
	uint32_t mode, uid, gid;
	uint8_t flags;
	uint8_t replica_num;
	int64_t mtime_ns, ctime_ns;
	uint64_t pin_wall_ms;
	uint64_t size;
	uint32_t crc;
	struct mcfs_blob xattrs;
	uint8_t nrep;
	struct {
		uint64_t offset;
		uint64_t len;
		uint8_t tier;
	} rep[MCFS_MAX_REPLICAS];
	struct mcfs_blob target; /* MCFS_REC_LINK */
	struct mcfs_blob raw;	 /* decoded: the whole encoded record, its length word included */
};

/* Append one record. */
void mcfs_rec_put(struct mcfs_buf *b, const struct mcfs_rec *rec);
/*
 * Next record from r: 1 with *rec filled (blobs borrowed), 0 at the end,
 * -EINVAL for a malformed record that is skipped (r is past it: go on), or
 * -EBADMSG when the list itself is broken (stop).
 */
int mcfs_rec_next(struct mcfs_rd *r, struct mcfs_rec *rec);
/* Next (name, value) of a packed xattr list: 1, 0 at the end, -EBADMSG. */
int mcfs_xattr_next(struct mcfs_rd *r, struct mcfs_blob *name, struct mcfs_blob *value);

/* Wire form of an attr (fixed size) for other codecs. */
#define MCFS_ATTR_WIRE 72
void mcfs_attr_put(struct mcfs_buf *b, const struct mcfs_attr *a);
void mcfs_attr_get(struct mcfs_rd *r, struct mcfs_attr *a);

#endif
