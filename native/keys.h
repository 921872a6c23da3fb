/* keys.h - single-key encoding, inline for the hot loops of the C core.
 *
 * uint64 keys are their own code; int64 keys flip the sign bit; float64 keys
 * flip the sign bit of non-negative numbers and every bit of negative ones,
 * which orders them as numbers.  -0.0 is folded onto 0.0 first, so the two
 * are one key, as in a Python dict.  NaN never reaches the core.
 */
#ifndef NFL_KEYS_H
#define NFL_KEYS_H

#include <stdint.h>
#include <string.h>

#include "nfl.h"

#define NFL_SIGN_BIT 0x8000000000000000ull

static inline uint64_t nfl_key_encode(int key_type, uint64_t raw)
{
    switch (key_type) {
    case NFL_KEY_INT64:
        return raw ^ NFL_SIGN_BIT;
    case NFL_KEY_FLOAT64:
        if (raw == NFL_SIGN_BIT) /* -0.0 */
            raw = 0;
        return (raw & NFL_SIGN_BIT) ? ~raw : raw | NFL_SIGN_BIT;
    default:
        return raw;
    }
}

static inline uint64_t nfl_key_decode(int key_type, uint64_t enc)
{
    switch (key_type) {
    case NFL_KEY_INT64:
        return enc ^ NFL_SIGN_BIT;
    case NFL_KEY_FLOAT64:
        return (enc & NFL_SIGN_BIT) ? enc & ~NFL_SIGN_BIT : ~enc;
    default:
        return enc;
    }
}

/* The key's numeric value as a double: the input of the flow and the models. */
static inline double nfl_key_number(int key_type, uint64_t enc)
{
    uint64_t raw = nfl_key_decode(key_type, enc);
    double d;
    switch (key_type) {
    case NFL_KEY_INT64:
        return (double)(int64_t)raw;
    case NFL_KEY_FLOAT64:
        memcpy(&d, &raw, sizeof d);
        return d;
    default:
        return (double)raw;
    }
}

#endif
