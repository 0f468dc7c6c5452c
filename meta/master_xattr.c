// SPDX-License-Identifier: Apache-2.0
/*
 * Extended attributes at the master: mcfs's own user.mcfs.* attributes,
 * computed from the object table and the namespace on every read, and the
 * other user.* attributes, stored with the inode (ns.c). INTERFACE.md
 * "Extended attributes" is the contract for names, values and errors.
 *
 * Values of user.mcfs.* are plain ASCII without a trailing newline, except
 * the line lists (replicas, locations), whose every line ends in "\n".
 * Written values may carry one trailing "\n" (what `echo` adds).
 */
#include "meta/master_i.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_PREFIX "user."
#define MCFS_PREFIX "user.mcfs."

#define ON_FILE 0x1
#define ON_DIR	0x2

struct vattr {
	const char *name; /* after "user.mcfs." */
	uint8_t on;	  /* ON_* */
	/* Append the value to b, or return -errno. */
	int (*get)(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b);
	/* NULL: read-only. v[0..len) is the value without its trailing newline. */
	int (*set)(struct mcfs_req *r, struct mcfs_inode *in, const char *v, size_t len);
};

static void buf_printf(struct mcfs_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(struct mcfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0 || mcfs_buf_reserve(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static uint8_t kind_of(const struct mcfs_inode *in)
{
	if (S_ISREG(in->mode))
		return ON_FILE;
	if (S_ISDIR(in->mode))
		return ON_DIR;
	return 0;
}

static bool published(const struct mcfs_inode *in)
{
	return in->u.file.obj.version != 0;
}

static const char *tier_name(uint8_t tier)
{
	switch (tier) {
	case MCFS_TIER_DRAM:
		return "dram";
	case MCFS_TIER_SSD:
		return "ssd";
	case MCFS_TIER_VRAM:
		return "vram";
	default:
		return "unknown";
	}
}

static int get_replicas(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b)
{
	const struct mcfs_obj *obj = &in->u.file.obj;

	if (!published(in))
		return 0;
	for (uint8_t i = 0; i < obj->nrep; i++) {
		const struct mcfs_rep *rep = &mcfs_obj_creps(obj)[i];
		const struct mcfs_node *n = mcfs_master_node(r->m, rep->node_id);

		buf_printf(b, "%s %s %s %s\n", n ? n->name : "-", n && *n->addr ? n->addr : "-",
			   tier_name(rep->tier),
			   rep->state == MCFS_REP_COMPLETE ? "complete" : "pending");
	}
	return 0;
}

static int get_replica_num(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b)
{
	/* A directory nobody set shows what files created below get by default. */
	buf_printf(b, "%u", in->replica_num ? in->replica_num : r->m->conf.default_replicas);
	return 0;
}

static int get_soft_pin(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b)
{
	(void)r;
	buf_printf(b, "%d", in->flags & MCFS_I_SOFT_PIN ? 1 : 0);
	return 0;
}

static int get_soft_pin_ms(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b)
{
	uint64_t left = 0;

	if (in->flags & MCFS_I_SOFT_PIN)
		left = mcfs_master_ms_left(r, in->u.file.pin_ms);
	buf_printf(b, "%llu", (unsigned long long)left);
	return 0;
}

static int get_hard_pin(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b)
{
	(void)r;
	buf_printf(b, "%d", in->flags & MCFS_I_HARD_PIN ? 1 : 0);
	return 0;
}

static int get_lease_ms(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b)
{
	buf_printf(b, "%llu", (unsigned long long)mcfs_master_ms_left(r, in->u.file.obj.lease_ms));
	return 0;
}

static int get_tier(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b)
{
	/* Fastest first, for a reader on a CPU. */
	static const uint8_t order[] = {MCFS_TIER_DRAM, MCFS_TIER_VRAM, MCFS_TIER_SSD};
	const struct mcfs_obj *obj = &in->u.file.obj;

	(void)r;
	if (!published(in))
		return -ENODATA;
	for (size_t t = 0; t < sizeof(order); t++) {
		for (uint8_t i = 0; i < obj->nrep; i++) {
			const struct mcfs_rep *rep = &mcfs_obj_creps(obj)[i];

			if (rep->tier == order[t] && rep->state == MCFS_REP_COMPLETE) {
				buf_printf(b, "%s", tier_name(order[t]));
				return 0;
			}
		}
	}
	return -ENODATA;
}

static int get_checksum(struct mcfs_req *r, const struct mcfs_inode *in, struct mcfs_buf *b)
{
	(void)r;
	if (!published(in))
		return -ENODATA;
	buf_printf(b, "crc32c:%08x", in->u.file.obj.crc);
	return 0;
}

/* Per node: published objects below the directory, and their bytes. */
static int get_locations(struct mcfs_req *r, const struct mcfs_inode *dir, struct mcfs_buf *b)
{
	struct mcfs_master *m = r->m;
	uint64_t *objs, *bytes;
	struct mcfs_inode *in = NULL;

	if (!m->nodes_cap)
		return 0;
	objs = calloc(m->nodes_cap * 2, sizeof(*objs));
	if (!objs)
		return -ENOMEM;
	bytes = objs + m->nodes_cap;
	while ((in = mcfs_ns_walk_next(dir, in))) {
		const struct mcfs_obj *obj = &in->u.file.obj;

		if (!S_ISREG(in->mode) || !published(in))
			continue;
		for (uint8_t i = 0; i < obj->nrep; i++) {
			uint64_t id = mcfs_obj_creps(obj)[i].node_id;

			if (id < m->nodes_cap) {
				objs[id]++;
				bytes[id] += obj->size;
			}
		}
	}
	for (uint64_t id = 0; id < m->nodes_cap; id++) {
		if (objs[id] && m->nodes[id])
			buf_printf(b, "%s %llu %llu\n", m->nodes[id]->name,
				   (unsigned long long)objs[id], (unsigned long long)bytes[id]);
	}
	free(objs);
	return 0;
}

static int parse_bool(const char *v, size_t len, bool *out)
{
	if (len != 1 || (v[0] != '0' && v[0] != '1'))
		return -EINVAL;
	*out = v[0] == '1';
	return 0;
}

/*
 * Lowering it on a published file drops the surplus replicas at once (the
 * first ones stay); raising it only records it: the daemon that handled the
 * setxattr adds the copies (REPL_START, REPL_END).
 */
static int set_replica_num(struct mcfs_req *r, struct mcfs_inode *in, const char *v, size_t len)
{
	if (len != 1 || v[0] < '1' || v[0] > '0' + MCFS_MAX_REPLICAS)
		return -EINVAL;
	in->replica_num = (uint8_t)(v[0] - '0');
	if (S_ISREG(in->mode) && published(in) && in->u.file.obj.nrep > in->replica_num)
		mcfs_master_drop_reps(r, &in->u.file.obj, in->replica_num);
	return 0;
}

static int set_soft_pin(struct mcfs_req *r, struct mcfs_inode *in, const char *v, size_t len)
{
	bool on;
	int ret = parse_bool(v, len, &on);

	if (ret)
		return ret;
	if (on)
		in->flags |= MCFS_I_SOFT_PIN;
	else
		in->flags &= (uint8_t)~MCFS_I_SOFT_PIN;
	/* A published file's pin starts now; an unpublished one's at PUT_END. */
	if (S_ISREG(in->mode))
		in->u.file.pin_ms = on && published(in) ? r->now_ms + mcfs_master_pin_ttl(r->m) : 0;
	return 0;
}

static int set_hard_pin(struct mcfs_req *r, struct mcfs_inode *in, const char *v, size_t len)
{
	bool on;
	int ret = parse_bool(v, len, &on);

	(void)r;
	if (ret)
		return ret;
	if (on)
		in->flags |= MCFS_I_HARD_PIN;
	else
		in->flags &= (uint8_t)~MCFS_I_HARD_PIN;
	return 0;
}

/* In listxattr order: files list theirs, then directories theirs. */
static const struct vattr vattrs[] = {
    {"replicas", ON_FILE, get_replicas, NULL},
    {"replica_num", ON_FILE | ON_DIR, get_replica_num, set_replica_num},
    {"soft_pin", ON_FILE | ON_DIR, get_soft_pin, set_soft_pin},
    {"soft_pin_ms", ON_FILE, get_soft_pin_ms, NULL},
    {"hard_pin", ON_FILE | ON_DIR, get_hard_pin, set_hard_pin},
    {"lease_ms", ON_FILE, get_lease_ms, NULL},
    {"tier", ON_FILE, get_tier, NULL},
    {"checksum", ON_FILE, get_checksum, NULL},
    {"locations", ON_DIR, get_locations, NULL},
};

#define NVATTRS (sizeof(vattrs) / sizeof(vattrs[0]))

/*
 * Check an attribute name. 0 for an ordinary user.* name, 1 for a
 * user.mcfs.* name with *va its entry (NULL when mcfs has no such
 * attribute), -EOPNOTSUPP outside user.*, -EINVAL for a malformed name.
 */
static int classify(struct mcfs_blob name, const struct vattr **va)
{
	const char *s = (const char *)name.p;
	size_t ulen = sizeof(USER_PREFIX) - 1, mlen = sizeof(MCFS_PREFIX) - 1;

	if (!name.len || memchr(s, '\0', name.len))
		return -EINVAL;
	if (name.len < ulen || memcmp(s, USER_PREFIX, ulen))
		return -EOPNOTSUPP;
	if (name.len == ulen)
		return -EINVAL;
	if (name.len < mlen || memcmp(s, MCFS_PREFIX, mlen))
		return 0;
	*va = NULL;
	for (size_t i = 0; i < NVATTRS; i++) {
		if (strlen(vattrs[i].name) == name.len - mlen &&
		    !memcmp(vattrs[i].name, s + mlen, name.len - mlen)) {
			*va = &vattrs[i];
			break;
		}
	}
	return 1;
}

static void reply_scratch(struct mcfs_req *r)
{
	r->out->value.p = r->m->scratch.data;
	r->out->value.len = (uint32_t)r->m->scratch.len;
}

int mcfs_master_getxattr(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *in = mcfs_ns_get(&r->m->ns, q->ino);
	const struct mcfs_xattr *x;
	const struct vattr *va;
	int ret;

	if (!in || !mcfs_master_visible(r, in))
		return -ENOENT;
	ret = classify(q->name, &va);
	/* Other namespaces hold nothing here, as on a local filesystem without them. */
	if (ret == -EOPNOTSUPP)
		return -ENODATA;
	if (ret < 0)
		return ret;
	if (ret == 1) {
		if (!va || !(va->on & kind_of(in)))
			return -ENODATA;
		ret = va->get(r, in, &r->m->scratch);
		if (!ret && r->m->scratch.oom)
			ret = -ENOMEM;
		if (!ret)
			reply_scratch(r);
		return ret;
	}
	x = mcfs_ns_xattr_get(in, (const char *)q->name.p, q->name.len);
	if (!x)
		return -ENODATA;
	r->out->value.p = x->value;
	r->out->value.len = x->vlen;
	return 0;
}

int mcfs_master_setxattr(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *in = mcfs_ns_get(&r->m->ns, q->ino);
	const struct vattr *va;
	const char *v = (const char *)q->value.p;
	size_t len = q->value.len;
	int ret;

	if (!in || !mcfs_master_visible(r, in))
		return -ENOENT;
	if (q->flags & ~(MCFS_XATTR_CREATE | MCFS_XATTR_REPLACE))
		return -EINVAL;
	ret = classify(q->name, &va);
	if (ret < 0)
		return ret;
	/* As Linux: no user.* attributes on symlinks. */
	if (S_ISLNK(in->mode))
		return -EPERM;
	if (ret == 1) {
		if (!va)
			return -EINVAL;
		if (!va->set)
			return -EPERM;
		if (!(va->on & kind_of(in)))
			return -EINVAL;
		/* mcfs's attributes always exist. */
		if (q->flags & MCFS_XATTR_CREATE)
			return -EEXIST;
		if (len && v[len - 1] == '\n')
			len--;
		ret = va->set(r, in, v, len);
	} else {
		if (len > MCFS_XATTR_MAX)
			return -E2BIG;
		ret = mcfs_ns_xattr_set(in, (const char *)q->name.p, q->name.len, v, len, q->flags,
					MCFS_XATTR_MAX);
	}
	if (!ret)
		in->ctime_ns = r->now_ns;
	return ret;
}

int mcfs_master_removexattr(struct mcfs_req *r)
{
	const struct mcfs_msg *q = r->in;
	struct mcfs_inode *in = mcfs_ns_get(&r->m->ns, q->ino);
	const struct vattr *va;
	int ret;

	if (!in || !mcfs_master_visible(r, in))
		return -ENOENT;
	ret = classify(q->name, &va);
	if (ret < 0)
		return ret;
	if (ret == 1 || S_ISLNK(in->mode))
		return -EPERM;
	ret = mcfs_ns_xattr_remove(in, (const char *)q->name.p, q->name.len);
	if (!ret)
		in->ctime_ns = r->now_ns;
	return ret;
}

int mcfs_master_listxattr(struct mcfs_req *r)
{
	struct mcfs_inode *in = mcfs_ns_get(&r->m->ns, r->in->ino);
	struct mcfs_buf *b = &r->m->scratch;
	const struct mcfs_xattrs *xs;
	uint8_t kind;

	if (!in || !mcfs_master_visible(r, in))
		return -ENOENT;
	kind = kind_of(in);
	for (size_t i = 0; i < NVATTRS; i++) {
		if (vattrs[i].on & kind) {
			mcfs_buf_put(b, MCFS_PREFIX, sizeof(MCFS_PREFIX) - 1);
			mcfs_buf_put(b, vattrs[i].name, strlen(vattrs[i].name) + 1);
		}
	}
	xs = mcfs_inode_xattrs(in);
	if (xs) {
		for (uint32_t i = 0; i < xs->n; i++)
			mcfs_buf_put(b, xs->v[i].name, xs->v[i].nlen + 1);
	}
	if (b->oom)
		return -ENOMEM;
	reply_scratch(r);
	return 0;
}
