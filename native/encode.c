/* encode.c - order-preserving encoding of raw 8-byte keys to uint64.
 *
 * uint64 keys are their own code; int64 keys flip the sign bit; float64 keys
 * flip the sign bit of non-negative numbers and every bit of negative ones,
 * which orders them as numbers.  -0.0 is folded onto 0.0 first, so the two
 * are one key, as in a Python dict.  NaN never reaches this file.
 */
#include "nfl.h"
#include "keys.h"

#define SIGN_BIT 0x8000000000000000ull

uint64_t nfl_key_encode(int key_type, uint64_t raw)
{
    switch (key_type) {
    case NFL_KEY_INT64:
        return raw ^ SIGN_BIT;
    case NFL_KEY_FLOAT64:
        if (raw == SIGN_BIT) /* -0.0 */
            raw = 0;
        return (raw & SIGN_BIT) ? ~raw : raw | SIGN_BIT;
    default:
        return raw;
    }
}

uint64_t nfl_key_decode(int key_type, uint64_t enc)
{
    switch (key_type) {
    case NFL_KEY_INT64:
        return enc ^ SIGN_BIT;
    case NFL_KEY_FLOAT64:
        return (enc & SIGN_BIT) ? enc & ~SIGN_BIT : ~enc;
    default:
        return enc;
    }
}

double nfl_key_number(int key_type, uint64_t enc)
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

void nfl_encode(int key_type, const uint64_t *raw, uint64_t *enc, size_t n)
{
    for (size_t i = 0; i < n; i++)
        enc[i] = nfl_key_encode(key_type, raw[i]);
}

void nfl_decode(int key_type, const uint64_t *enc, uint64_t *raw, size_t n)
{
    for (size_t i = 0; i < n; i++)
        raw[i] = nfl_key_decode(key_type, enc[i]);
}
