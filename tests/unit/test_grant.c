// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of grants (transport/grant.c): a signed grant passes its
 * check for exactly the range, node, segment and access it names until its
 * deadline, and any change to any field, or another secret, voids it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "transport/grant.h"

static uint8_t secret[MCFS_GRANT_SECRET_LEN];

static void setup(void)
{
	for (int i = 0; i < MCFS_GRANT_SECRET_LEN; i++)
		secret[i] = (uint8_t)(i * 13 + 1);
}

TestSuite(grant, .init = setup);

static struct mcfs_grant sample(void)
{
	struct mcfs_grant g = {.node_id = 7,
			       .seg_id = 3,
			       .access = MCFS_GRANT_READ,
			       .offset = 4096,
			       .len = 8192,
			       .expiry_ms = 1000000};

	mcfs_grant_sign(&g, secret);
	return g;
}

Test(grant, covers_exactly_its_range)
{
	struct mcfs_grant g = sample();

	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 4096, 8192, 5), 0);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 4096, 0, 5), 0);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 12288, 0, 5), 0);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 5000, 100, 5), 0);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 4095, 1, 5), -ERANGE);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 4096, 8193, 5), -ERANGE);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 12288, 1, 5), -ERANGE);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 12289, 0, 5), -ERANGE);
	/* Wrap-around is no way in. */
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, UINT64_MAX, 2, 5),
		     -ERANGE);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 4097, UINT64_MAX, 5),
		     -ERANGE);
}

Test(grant, node_segment_access_and_deadline)
{
	struct mcfs_grant g = sample();

	cr_assert_eq(mcfs_grant_check(&g, secret, 8, 3, MCFS_GRANT_READ, 4096, 1, 5), -EACCES);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 4, MCFS_GRANT_READ, 4096, 1, 5), -EACCES);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_WRITE, 4096, 1, 5), -EACCES);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 4096, 1, 1000000), 0);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 4096, 1, 1000001),
		     -ETIMEDOUT);
	g.access = MCFS_GRANT_READ | MCFS_GRANT_WRITE;
	mcfs_grant_sign(&g, secret);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_WRITE, 4096, 1, 5), 0);
	cr_assert_eq(mcfs_grant_check(&g, secret, 7, 3, MCFS_GRANT_READ, 4096, 1, 5), 0);
}

Test(grant, any_tampering_voids_it)
{
	struct mcfs_grant g;
	uint8_t other[MCFS_GRANT_SECRET_LEN];

	for (int field = 0; field < 7; field++) {
		g = sample();
		switch (field) {
		case 0:
			g.node_id ^= 1;
			break;
		case 1:
			g.seg_id ^= 1;
			break;
		case 2:
			g.access |= MCFS_GRANT_WRITE;
			break;
		case 3:
			g.offset -= 4096;
			break;
		case 4:
			g.len += 1;
			break;
		case 5:
			g.expiry_ms += 1;
			break;
		case 6:
			g.mac ^= 1ull << 40;
			break;
		}
		/* Check with the fields as tampered, so only the MAC can catch it. */
		cr_assert_eq(mcfs_grant_check(&g, secret, g.node_id, g.seg_id, MCFS_GRANT_READ,
					      g.offset, 1, 5),
			     -EACCES, "field %d", field);
	}
	g = sample();
	memcpy(other, secret, sizeof(other));
	other[10] ^= 0x80; /* XXH3 keys a 44-byte input with the first 64 bytes of the secret */
	cr_assert_eq(mcfs_grant_check(&g, other, 7, 3, MCFS_GRANT_READ, 4096, 1, 5), -EACCES);
}

Test(grant, secret_init_is_random)
{
	uint8_t a[MCFS_GRANT_SECRET_LEN], b[MCFS_GRANT_SECRET_LEN];

	cr_assert_eq(mcfs_grant_secret_init(a), 0);
	cr_assert_eq(mcfs_grant_secret_init(b), 0);
	cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
	cr_assert(mcfs_grant_now_ms() > 1600000000000ull);
}
