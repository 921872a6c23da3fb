/* keys.h - single-key encoding helpers shared inside the C core. */
#ifndef NFL_KEYS_H
#define NFL_KEYS_H

#include <stdint.h>
#include <string.h>

uint64_t nfl_key_encode(int key_type, uint64_t raw);
uint64_t nfl_key_decode(int key_type, uint64_t enc);
/* The key's numeric value as a double: the input of the flow and the models. */
double nfl_key_number(int key_type, uint64_t enc);

#endif
