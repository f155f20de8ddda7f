/* SPDX-License-Identifier: MIT */
/*
 * rng.h - the seeded random numbers of rdps-train: splitmix64 to derive
 * streams, xoshiro256** to draw from them. Everything random in a run
 * (data, partitions, stragglers, initial models) comes from here, so a
 * seed gives the same run on every machine and transport.
 */
#ifndef RDPS_TRAIN_RNG_H
#define RDPS_TRAIN_RNG_H

#include <math.h>
#include <stdint.h>

struct trn_rng {
	uint64_t s[4];
};

static inline uint64_t trn_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The stream of (seed, a, b): independent for every distinct triple. */
static inline void trn_rng_seed(struct trn_rng *r, uint64_t seed, uint64_t a,
				uint64_t b)
{
	uint64_t x = seed ^ (a * 0xd1342543de82ef95ull) ^
		     (b * 0x2545f4914f6cdd1dull + 0x632be59bd9b4e019ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = trn_splitmix64(&x);
}

static inline uint64_t trn_rng_u64(struct trn_rng *r)
{
	uint64_t *s = r->s, t = s[1] << 17;
	uint64_t x = s[1] * 5, res = ((x << 7) | (x >> 57)) * 9;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return res;
}

/* Uniform in [0, 1). */
static inline double trn_rng_unif(struct trn_rng *r)
{
	return (double)(trn_rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0 (Lemire's multiply; bias below 2^-32). */
static inline uint64_t trn_rng_below(struct trn_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)trn_rng_u64(r) * n) >> 64);
}

/* Standard normal (Box-Muller, one value per call). */
static inline double trn_rng_normal(struct trn_rng *r)
{
	double u = trn_rng_unif(r), v = trn_rng_unif(r);

	return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

#endif /* RDPS_TRAIN_RNG_H */
