// SPDX-License-Identifier: Apache-2.0
/*
 * The metadata codec. Each message type has a request and a response schema:
 * a list of field codes encoded in order. One table-driven encoder and one
 * decoder serve every message, so every field of every message gets the same
 * bounds checks.
 */
#include "meta/proto.h"

#include <errno.h>
#include <string.h>

enum field {
	F_END = 0,
	F_INO,
	F_INO2,
	F_NAME,
	F_NAME2,
	F_VALUE,
	F_MODE,
	F_UID,
	F_GID,
	F_FLAGS,
	F_VALID,
	F_COUNT,
	F_CRC,
	F_PROTO,
	F_SIZE,
	F_TOTAL,
	F_FREE,
	F_COOKIE,
	F_VERSION,
	F_PUT_ID,
	F_NODE_ID,
	F_LEASE_MS,
	F_ATIME,
	F_MTIME,
	F_ATTR,
	F_REPLICAS,
	F_TARGET, /* a path-sized string in value */
	F_SEG_ID,
	F_INCARNATION,
};

#define S(...) ((const uint8_t[]){__VA_ARGS__, F_END})
#define NONE   ((const uint8_t[]){F_END})

struct schema {
	const char *name;
	const uint8_t *req;
	const uint8_t *resp;
};

static const struct schema schemas[] = {
    [MCFS_MSG_HELLO] = {"HELLO", S(F_PROTO, F_NAME, F_NAME2, F_SIZE, F_FLAGS, F_INCARNATION),
			S(F_NODE_ID, F_PROTO, F_SEG_ID, F_FLAGS, F_VALUE)},
    [MCFS_MSG_HEARTBEAT] = {"HEARTBEAT", S(F_NODE_ID), S(F_VERSION)},
    [MCFS_MSG_BYE] = {"BYE", S(F_NODE_ID), NONE},
    [MCFS_MSG_STATFS] = {"STATFS", NONE, S(F_TOTAL, F_FREE, F_COUNT)},
    [MCFS_MSG_LOOKUP] = {"LOOKUP", S(F_INO, F_NAME), S(F_ATTR)},
    [MCFS_MSG_GETATTR] = {"GETATTR", S(F_INO), S(F_ATTR)},
    [MCFS_MSG_SETATTR] = {"SETATTR", S(F_INO, F_VALID, F_MODE, F_UID, F_GID, F_ATIME, F_MTIME),
			  S(F_ATTR)},
    [MCFS_MSG_MKDIR] = {"MKDIR", S(F_INO, F_NAME, F_MODE, F_UID, F_GID), S(F_ATTR)},
    [MCFS_MSG_CREATE] = {"CREATE", S(F_INO, F_NAME, F_MODE, F_UID, F_GID, F_FLAGS, F_COUNT),
			 S(F_ATTR)},
    [MCFS_MSG_SYMLINK] = {"SYMLINK", S(F_INO, F_NAME, F_TARGET, F_UID, F_GID), S(F_ATTR)},
    [MCFS_MSG_READLINK] = {"READLINK", S(F_INO), S(F_TARGET)},
    [MCFS_MSG_UNLINK] = {"UNLINK", S(F_INO, F_NAME), NONE},
    [MCFS_MSG_RMDIR] = {"RMDIR", S(F_INO, F_NAME), NONE},
    [MCFS_MSG_RENAME] = {"RENAME", S(F_INO, F_NAME, F_INO2, F_NAME2, F_FLAGS), NONE},
    [MCFS_MSG_READDIR] = {"READDIR", S(F_INO, F_COOKIE, F_COUNT), S(F_COUNT, F_FLAGS, F_VALUE)},
    [MCFS_MSG_SETXATTR] = {"SETXATTR", S(F_INO, F_NAME, F_VALUE, F_FLAGS), NONE},
    [MCFS_MSG_GETXATTR] = {"GETXATTR", S(F_INO, F_NAME), S(F_VALUE)},
    [MCFS_MSG_LISTXATTR] = {"LISTXATTR", S(F_INO), S(F_VALUE)},
    [MCFS_MSG_REMOVEXATTR] = {"REMOVEXATTR", S(F_INO, F_NAME), NONE},
    [MCFS_MSG_PUT_START] = {"PUT_START", S(F_INO, F_SIZE),
			    S(F_PUT_ID, F_VERSION, F_COUNT, F_REPLICAS)},
    [MCFS_MSG_PUT_GROW] = {"PUT_GROW", S(F_PUT_ID, F_SIZE), S(F_REPLICAS)},
    [MCFS_MSG_PUT_END] = {"PUT_END", S(F_PUT_ID, F_SIZE, F_CRC, F_FLAGS), S(F_ATTR, F_VALUE)},
    [MCFS_MSG_PUT_REVOKE] = {"PUT_REVOKE", S(F_PUT_ID), NONE},
    [MCFS_MSG_GET] = {"GET", S(F_INO, F_INO2, F_NAME), S(F_ATTR, F_CRC, F_LEASE_MS, F_REPLICAS)},
    [MCFS_MSG_LEASE] = {"LEASE", S(F_INO, F_VERSION), S(F_LEASE_MS, F_REPLICAS)},
    [MCFS_MSG_PUT_PLACE] = {"PUT_PLACE", S(F_PUT_ID, F_SIZE), S(F_REPLICAS)},
    [MCFS_MSG_REPL_START] = {"REPL_START", S(F_INO, F_VERSION, F_COUNT), S(F_PUT_ID, F_REPLICAS)},
    [MCFS_MSG_REPL_END] = {"REPL_END", S(F_PUT_ID), NONE},
    [MCFS_MSG_SOLE_LIST] = {"SOLE_LIST", S(F_COOKIE, F_COUNT, F_FLAGS),
			    S(F_COUNT, F_FLAGS, F_VALUE)},
    [MCFS_MSG_BATCH] = {"BATCH", S(F_COUNT, F_VALUE), S(F_COUNT, F_VALUE)},
    [MCFS_MSG_SYNC] = {"SYNC", S(F_COUNT), S(F_COUNT, F_FLAGS, F_VALUE)},
    [MCFS_MSG_REPORT] = {"REPORT", S(F_COUNT, F_VALUE), S(F_COUNT)},
    [MCFS_MSG_REPORT_END] = {"REPORT_END", S(F_COUNT), NONE},
    [MCFS_MSG_RELEASE] = {"RELEASE", S(F_VALUE), S(F_COUNT)},
};

#define NTYPES (sizeof(schemas) / sizeof(schemas[0]))

static const struct schema *schema_of(uint16_t type)
{
	if (type >= NTYPES || !schemas[type].name)
		return NULL;
	return &schemas[type];
}

const char *mcfs_msg_name(uint16_t type)
{
	const struct schema *s = schema_of(type);

	return s ? s->name : NULL;
}

void mcfs_attr_put(struct mcfs_buf *b, const struct mcfs_attr *a)
{
	mcfs_buf_put_u64(b, a->ino);
	mcfs_buf_put_u32(b, a->mode);
	mcfs_buf_put_u32(b, a->uid);
	mcfs_buf_put_u32(b, a->gid);
	mcfs_buf_put_u32(b, a->nlink);
	mcfs_buf_put_u64(b, a->size);
	mcfs_buf_put_u64(b, (uint64_t)a->atime_ns);
	mcfs_buf_put_u64(b, (uint64_t)a->mtime_ns);
	mcfs_buf_put_u64(b, (uint64_t)a->ctime_ns);
	mcfs_buf_put_u64(b, a->version);
	mcfs_buf_put_u32(b, a->flags);
	mcfs_buf_put_u32(b, 0); /* reserved, keeps the size a multiple of 8 */
}

void mcfs_attr_get(struct mcfs_rd *r, struct mcfs_attr *a)
{
	a->ino = mcfs_rd_u64(r);
	a->mode = mcfs_rd_u32(r);
	a->uid = mcfs_rd_u32(r);
	a->gid = mcfs_rd_u32(r);
	a->nlink = mcfs_rd_u32(r);
	a->size = mcfs_rd_u64(r);
	a->atime_ns = (int64_t)mcfs_rd_u64(r);
	a->mtime_ns = (int64_t)mcfs_rd_u64(r);
	a->ctime_ns = (int64_t)mcfs_rd_u64(r);
	a->version = mcfs_rd_u64(r);
	a->flags = mcfs_rd_u32(r);
	(void)mcfs_rd_u32(r);
}

static void put_blob(struct mcfs_buf *b, struct mcfs_blob v)
{
	mcfs_buf_put_u32(b, v.len);
	mcfs_buf_put(b, v.p, v.len);
}

/* A blob of at most max bytes; sets r->err when longer or truncated. */
static struct mcfs_blob get_blob(struct mcfs_rd *r, uint32_t max)
{
	struct mcfs_blob v = {NULL, 0};
	uint32_t len = mcfs_rd_u32(r);

	if (r->err || len > max) {
		r->err = true;
		return v;
	}
	v.p = mcfs_rd_bytes(r, len);
	v.len = v.p ? len : 0;
	return v;
}

static int encode_fields(const uint8_t *f, const struct mcfs_msg *m, struct mcfs_buf *b)
{
	for (; *f != F_END; f++) {
		switch (*f) {
		case F_INO:
			mcfs_buf_put_u64(b, m->ino);
			break;
		case F_INO2:
			mcfs_buf_put_u64(b, m->ino2);
			break;
		case F_NAME:
			if (m->name.len > MCFS_NAME_MAX)
				return -ENAMETOOLONG;
			put_blob(b, m->name);
			break;
		case F_NAME2:
			if (m->name2.len > MCFS_NAME_MAX)
				return -ENAMETOOLONG;
			put_blob(b, m->name2);
			break;
		case F_TARGET:
			if (m->value.len > MCFS_PATH_MAX)
				return -ENAMETOOLONG;
			put_blob(b, m->value);
			break;
		case F_VALUE:
			put_blob(b, m->value);
			break;
		case F_MODE:
			mcfs_buf_put_u32(b, m->mode);
			break;
		case F_UID:
			mcfs_buf_put_u32(b, m->uid);
			break;
		case F_GID:
			mcfs_buf_put_u32(b, m->gid);
			break;
		case F_FLAGS:
			mcfs_buf_put_u32(b, m->flags);
			break;
		case F_VALID:
			mcfs_buf_put_u32(b, m->valid);
			break;
		case F_COUNT:
			mcfs_buf_put_u32(b, m->count);
			break;
		case F_CRC:
			mcfs_buf_put_u32(b, m->crc);
			break;
		case F_PROTO:
			mcfs_buf_put_u32(b, m->proto);
			break;
		case F_SEG_ID:
			mcfs_buf_put_u32(b, m->seg_id);
			break;
		case F_INCARNATION:
			mcfs_buf_put_u64(b, m->incarnation);
			break;
		case F_SIZE:
			mcfs_buf_put_u64(b, m->size);
			break;
		case F_TOTAL:
			mcfs_buf_put_u64(b, m->total);
			break;
		case F_FREE:
			mcfs_buf_put_u64(b, m->free);
			break;
		case F_COOKIE:
			mcfs_buf_put_u64(b, m->cookie);
			break;
		case F_VERSION:
			mcfs_buf_put_u64(b, m->version);
			break;
		case F_PUT_ID:
			mcfs_buf_put_u64(b, m->put_id);
			break;
		case F_NODE_ID:
			mcfs_buf_put_u64(b, m->node_id);
			break;
		case F_LEASE_MS:
			mcfs_buf_put_u64(b, m->lease_ms);
			break;
		case F_ATIME:
			mcfs_buf_put_u64(b, (uint64_t)m->atime_ns);
			break;
		case F_MTIME:
			mcfs_buf_put_u64(b, (uint64_t)m->mtime_ns);
			break;
		case F_ATTR:
			mcfs_attr_put(b, &m->attr);
			break;
		case F_REPLICAS:
			if (m->nrep > MCFS_MAX_REPLICAS)
				return -EINVAL;
			mcfs_buf_put_u32(b, m->nrep);
			for (uint32_t i = 0; i < m->nrep; i++) {
				const struct mcfs_replica *rp = &m->rep[i];

				if (rp->addr.len > MCFS_NAME_MAX)
					return -ENAMETOOLONG;
				mcfs_buf_put_u64(b, rp->node_id);
				mcfs_buf_put_u32(b, rp->seg_id);
				mcfs_buf_put_u8(b, rp->tier);
				mcfs_buf_put_u8(b, rp->state);
				mcfs_buf_put_u8(b, rp->access);
				mcfs_buf_put_u8(b, 0);
				mcfs_buf_put_u64(b, rp->offset);
				mcfs_buf_put_u64(b, rp->len);
				mcfs_buf_put_u64(b, rp->rkey);
				mcfs_buf_put_u64(b, rp->expiry_ms);
				mcfs_buf_put_u64(b, rp->mac);
				put_blob(b, rp->addr);
			}
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

static void decode_fields(const uint8_t *f, struct mcfs_rd *r, struct mcfs_msg *m)
{
	for (; *f != F_END && !r->err; f++) {
		switch (*f) {
		case F_INO:
			m->ino = mcfs_rd_u64(r);
			break;
		case F_INO2:
			m->ino2 = mcfs_rd_u64(r);
			break;
		case F_NAME:
			m->name = get_blob(r, MCFS_NAME_MAX);
			break;
		case F_NAME2:
			m->name2 = get_blob(r, MCFS_NAME_MAX);
			break;
		case F_TARGET:
			m->value = get_blob(r, MCFS_PATH_MAX);
			break;
		case F_VALUE:
			m->value = get_blob(r, MCFS_FRAME_MAX);
			break;
		case F_MODE:
			m->mode = mcfs_rd_u32(r);
			break;
		case F_UID:
			m->uid = mcfs_rd_u32(r);
			break;
		case F_GID:
			m->gid = mcfs_rd_u32(r);
			break;
		case F_FLAGS:
			m->flags = mcfs_rd_u32(r);
			break;
		case F_VALID:
			m->valid = mcfs_rd_u32(r);
			break;
		case F_COUNT:
			m->count = mcfs_rd_u32(r);
			break;
		case F_CRC:
			m->crc = mcfs_rd_u32(r);
			break;
		case F_PROTO:
			m->proto = mcfs_rd_u32(r);
			break;
		case F_SEG_ID:
			m->seg_id = mcfs_rd_u32(r);
			break;
		case F_INCARNATION:
			m->incarnation = mcfs_rd_u64(r);
			break;
		case F_SIZE:
			m->size = mcfs_rd_u64(r);
			break;
		case F_TOTAL:
			m->total = mcfs_rd_u64(r);
			break;
		case F_FREE:
			m->free = mcfs_rd_u64(r);
			break;
		case F_COOKIE:
			m->cookie = mcfs_rd_u64(r);
			break;
		case F_VERSION:
			m->version = mcfs_rd_u64(r);
			break;
		case F_PUT_ID:
			m->put_id = mcfs_rd_u64(r);
			break;
		case F_NODE_ID:
			m->node_id = mcfs_rd_u64(r);
			break;
		case F_LEASE_MS:
			m->lease_ms = mcfs_rd_u64(r);
			break;
		case F_ATIME:
			m->atime_ns = (int64_t)mcfs_rd_u64(r);
			break;
		case F_MTIME:
			m->mtime_ns = (int64_t)mcfs_rd_u64(r);
			break;
		case F_ATTR:
			mcfs_attr_get(r, &m->attr);
			break;
		case F_REPLICAS:
			m->nrep = mcfs_rd_u32(r);
			if (m->nrep > MCFS_MAX_REPLICAS) {
				r->err = true;
				m->nrep = 0;
				break;
			}
			for (uint32_t i = 0; i < m->nrep && !r->err; i++) {
				struct mcfs_replica *rp = &m->rep[i];

				rp->node_id = mcfs_rd_u64(r);
				rp->seg_id = mcfs_rd_u32(r);
				rp->tier = mcfs_rd_u8(r);
				rp->state = mcfs_rd_u8(r);
				rp->access = mcfs_rd_u8(r);
				(void)mcfs_rd_u8(r);
				rp->offset = mcfs_rd_u64(r);
				rp->len = mcfs_rd_u64(r);
				rp->rkey = mcfs_rd_u64(r);
				rp->expiry_ms = mcfs_rd_u64(r);
				rp->mac = mcfs_rd_u64(r);
				rp->addr = get_blob(r, MCFS_NAME_MAX);
			}
			break;
		default:
			r->err = true;
			break;
		}
	}
}

int mcfs_msg_encode(const struct mcfs_msg *m, struct mcfs_buf *out)
{
	const struct schema *s = schema_of(m->type);
	size_t start = out->len;
	size_t hdr;
	int ret;

	if (!s)
		return -EINVAL;
	hdr = mcfs_frame_begin(out, m->type, m->resp ? MCFS_FRAME_RESP : 0, m->req_id);
	if (m->resp) {
		mcfs_buf_put_u32(out, (uint32_t)m->status);
		mcfs_buf_put_u64(out, m->epoch);
		ret = m->status ? 0 : encode_fields(s->resp, m, out);
	} else {
		ret = encode_fields(s->req, m, out);
	}
	if (!ret)
		ret = mcfs_frame_finish(out, hdr);
	if (ret) {
		out->len = start;
		out->oom = false;
	}
	return ret;
}

int mcfs_msg_decode(const struct mcfs_frame_hdr *h, const uint8_t *payload, struct mcfs_msg *m)
{
	const struct schema *s = schema_of(h->type);
	struct mcfs_rd r;

	memset(m, 0, sizeof(*m));
	m->type = h->type;
	m->req_id = h->req_id;
	m->resp = h->flags & MCFS_FRAME_RESP;
	if (!s)
		return -ENOTSUP;
	mcfs_rd_init(&r, payload, h->len);
	if (m->resp) {
		m->status = (int32_t)mcfs_rd_u32(&r);
		m->epoch = mcfs_rd_u64(&r);
		if (m->status > 0 || m->status < -4095)
			return -EBADMSG;
		if (!m->status)
			decode_fields(s->resp, &r, m);
	} else {
		decode_fields(s->req, &r, m);
	}
	if (r.err || mcfs_rd_left(&r))
		return -EBADMSG;
	return 0;
}

int mcfs_msg_decode_frame(const uint8_t *buf, size_t len, struct mcfs_msg *m)
{
	struct mcfs_frame_hdr h;
	int ret = mcfs_frame_parse(buf, len, &h);

	if (ret == -EAGAIN)
		return -EBADMSG;
	if (ret)
		return ret;
	if (len != MCFS_FRAME_HDR + (size_t)h.len)
		return -EBADMSG;
	return mcfs_msg_decode(&h, buf + MCFS_FRAME_HDR, m);
}

void mcfs_dirent_put(struct mcfs_buf *b, uint64_t cookie, const char *name, size_t namelen,
		     const struct mcfs_attr *attr)
{
	mcfs_buf_put_u64(b, cookie);
	mcfs_buf_put_u32(b, (uint32_t)namelen);
	mcfs_buf_put(b, name, namelen);
	mcfs_attr_put(b, attr);
}

int mcfs_dirent_next(struct mcfs_rd *r, struct mcfs_dirent *d)
{
	if (!mcfs_rd_left(r))
		return 0;
	d->cookie = mcfs_rd_u64(r);
	d->name = get_blob(r, MCFS_NAME_MAX);
	mcfs_attr_get(r, &d->attr);
	if (r->err || d->name.len == 0)
		return -EBADMSG;
	return 1;
}

void mcfs_sole_put(struct mcfs_buf *b, const struct mcfs_sole *e)
{
	mcfs_buf_put_u64(b, e->cookie);
	mcfs_buf_put_u64(b, e->ino);
	mcfs_buf_put_u64(b, e->version);
	mcfs_buf_put_u64(b, e->size);
}

int mcfs_sole_next(struct mcfs_rd *r, struct mcfs_sole *e)
{
	if (!mcfs_rd_left(r))
		return 0;
	e->cookie = mcfs_rd_u64(r);
	e->ino = mcfs_rd_u64(r);
	e->version = mcfs_rd_u64(r);
	e->size = mcfs_rd_u64(r);
	return r->err ? -EBADMSG : 1;
}

void mcfs_rec_put(struct mcfs_buf *b, const struct mcfs_rec *rec)
{
	size_t start = b->len;

	mcfs_buf_put_u32(b, 0); /* the length, filled in below */
	mcfs_buf_put_u8(b, rec->kind);
	mcfs_buf_put_u64(b, rec->ino);
	mcfs_buf_put_u64(b, rec->version);
	if (rec->kind != MCFS_REC_DROP) {
		mcfs_buf_put_u64(b, rec->parent);
		put_blob(b, rec->name);
		mcfs_buf_put_u32(b, rec->mode);
		mcfs_buf_put_u32(b, rec->uid);
		mcfs_buf_put_u32(b, rec->gid);
		mcfs_buf_put_u8(b, rec->flags);
		mcfs_buf_put_u8(b, rec->replica_num);
		mcfs_buf_put_u64(b, (uint64_t)rec->mtime_ns);
		mcfs_buf_put_u64(b, (uint64_t)rec->ctime_ns);
		mcfs_buf_put_u64(b, rec->pin_wall_ms);
		mcfs_buf_put_u64(b, rec->size);
		mcfs_buf_put_u32(b, rec->crc);
		put_blob(b, rec->xattrs);
		mcfs_buf_put_u8(b, rec->nrep);
		for (uint8_t i = 0; i < rec->nrep && i < MCFS_MAX_REPLICAS; i++) {
			mcfs_buf_put_u64(b, rec->rep[i].offset);
			mcfs_buf_put_u64(b, rec->rep[i].len);
			mcfs_buf_put_u8(b, rec->rep[i].tier);
		}
		if (rec->kind == MCFS_REC_LINK)
			put_blob(b, rec->target);
	}
	if (b->len >= start + 4)
		mcfs_buf_set_u32(b, start, (uint32_t)(b->len - start - 4));
}

int mcfs_rec_next(struct mcfs_rd *r, struct mcfs_rec *rec)
{
	struct mcfs_rd one;
	const uint8_t *start = r->p + r->off;
	uint32_t len;

	if (!mcfs_rd_left(r))
		return 0;
	memset(rec, 0, sizeof(*rec));
	len = mcfs_rd_u32(r);
	if (r->err || len > MCFS_REC_MAX || !mcfs_rd_bytes(r, len))
		return -EBADMSG;
	rec->raw.p = start;
	rec->raw.len = len + 4;
	mcfs_rd_init(&one, start + 4, len);
	rec->kind = mcfs_rd_u8(&one);
	rec->ino = mcfs_rd_u64(&one);
	rec->version = mcfs_rd_u64(&one);
	if (rec->kind >= MCFS_REC_FILE && rec->kind <= MCFS_REC_LINK &&
	    rec->kind != MCFS_REC_DROP) {
		rec->parent = mcfs_rd_u64(&one);
		rec->name = get_blob(&one, MCFS_NAME_MAX);
		rec->mode = mcfs_rd_u32(&one);
		rec->uid = mcfs_rd_u32(&one);
		rec->gid = mcfs_rd_u32(&one);
		rec->flags = mcfs_rd_u8(&one);
		rec->replica_num = mcfs_rd_u8(&one);
		rec->mtime_ns = (int64_t)mcfs_rd_u64(&one);
		rec->ctime_ns = (int64_t)mcfs_rd_u64(&one);
		rec->pin_wall_ms = mcfs_rd_u64(&one);
		rec->size = mcfs_rd_u64(&one);
		rec->crc = mcfs_rd_u32(&one);
		rec->xattrs = get_blob(&one, MCFS_XATTR_MAX);
		rec->nrep = mcfs_rd_u8(&one);
		if (rec->nrep > MCFS_MAX_REPLICAS)
			return -EINVAL;
		for (uint8_t i = 0; i < rec->nrep; i++) {
			rec->rep[i].offset = mcfs_rd_u64(&one);
			rec->rep[i].len = mcfs_rd_u64(&one);
			rec->rep[i].tier = mcfs_rd_u8(&one);
		}
		if (rec->kind == MCFS_REC_LINK)
			rec->target = get_blob(&one, MCFS_PATH_MAX);
		if (!rec->name.len)
			return -EINVAL;
	} else if (rec->kind != MCFS_REC_DROP) {
		return -EINVAL;
	}
	return one.err || mcfs_rd_left(&one) ? -EINVAL : 1;
}

int mcfs_xattr_next(struct mcfs_rd *r, struct mcfs_blob *name, struct mcfs_blob *value)
{
	if (!mcfs_rd_left(r))
		return 0;
	*name = get_blob(r, MCFS_NAME_MAX);
	*value = get_blob(r, MCFS_XATTR_MAX);
	return r->err || !name->len ? -EBADMSG : 1;
}
