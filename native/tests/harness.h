/* harness.h - what the C core's test programs share: CHECK, which counts
 * failures (and gives up after 20), and deterministic test randomness. */
#ifndef NFL_TEST_HARNESS_H
#define NFL_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int failures = 0;
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            if (++failures > 20)                                             \
                exit(1);                                                     \
        }                                                                    \
    } while (0)

/* xorshift64*: deterministic test randomness. */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

#endif
