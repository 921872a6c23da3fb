/* index.h - the nfl_index behind the public API (internal to the C core). */
#ifndef NFL_INDEX_H
#define NFL_INDEX_H

#include <pthread.h>

#include "afli.h"

/* Keys encoded and transformed together before their tree operations. */
#define INDEX_CHUNK 256

struct nfl_index {
    afli_tree tree;
    pthread_rwlock_t lock; /* readers share it, writers hold it alone */
    uint64_t version;      /* bumped by every write (atomic) */
    int prefetch;          /* batch lookups prefetch slots (NFL_OPT_PREFETCH) */
};

void index_read_begin(nfl_index *idx);
void index_read_end(nfl_index *idx);
void index_write_begin(nfl_index *idx);
void index_write_end(nfl_index *idx); /* also bumps the version */

#endif
