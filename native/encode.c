/* encode.c - order-preserving encoding of arrays of raw 8-byte keys
 * (the codes are described in keys.h). */
#include "nfl.h"
#include "keys.h"

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
