/* Small deterministic random numbers (splitmix64) shared by the datasets,
 * batching and the trainer.  Every random choice in training derives from
 * the run seed through these, so runs repeat bit for bit. */
#ifndef ET_RNG_H
#define ET_RNG_H 1

#include <stdint.h>

/* Advances *state and returns the next 64 random bits. */
static inline uint64_t
et_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A stateless hash of (a, b, c): independent streams keyed by ids. */
static inline uint64_t
et_rng_hash(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t s = a ^ (b * 0xd1342543de82ef95ull) ^ (c * 0xa0761d6478bd642full);
    return et_rng_next(&s);
}

/* Uniform float in [0, 1). */
static inline float
et_rng_uniform(uint64_t *state)
{
    return (float) (et_rng_next(state) >> 40) * (1.0f / 16777216.0f);
}

#endif /* ET_RNG_H */
