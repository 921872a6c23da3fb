/* index.h - the nfl_index behind the public API (internal to the C core). */
#ifndef NFL_INDEX_H
#define NFL_INDEX_H

#include <pthread.h>

#include "afli.h"
#include "keys.h"

/* Keys encoded and transformed together before their tree operations. */
#define INDEX_CHUNK 256

struct nfl_index {
    afli_tree tree;
    pthread_rwlock_t lock; /* readers share it, writers hold it alone */
    uint64_t version;      /* bumped by every write (atomic) */
    int prefetch;          /* batch lookups prefetch slots (NFL_OPT_PREFETCH) */
    nfl_index *fork_prev, *fork_next; /* the live indexes (fork.c) */
};

/* The index lock, writer-preferring where the platform allows; 0 or errno. */
int index_lock_init(pthread_rwlock_t *lock);
/* fork.c: the list of live indexes whose locks fork() takes (see there).
 * fork_register returns NFL_OK, or NFL_ENOMEM if the fork handlers could not
 * be installed. */
int fork_register(nfl_index *idx);
void fork_unregister(nfl_index *idx);

void index_read_begin(nfl_index *idx);
void index_read_end(nfl_index *idx);
void index_write_begin(nfl_index *idx);
void index_write_end(nfl_index *idx); /* also bumps the version */
/* A key ready for its tree operation: its code and its z. */
typedef struct {
    uint64_t enc;
    double z;
} index_key;

/* One raw key prepared for its tree operation (no prefetching): the point
 * operations' and the executor's single-op path. */
static inline index_key index_prepare_key(const nfl_index *idx, uint64_t key)
{
    index_key k;
    k.enc = nfl_key_encode(idx->tree.key_type, key);
    k.z = afli_z(&idx->tree, k.enc);
    return k;
}

/* What follows runs under a lock the caller holds (the executor holds the
 * write lock across a batch).
 *
 * index_prepare: prepares n raw keys and, with prefetch on, brings their
 * tree paths into cache together, so that the operations that follow find
 * them there instead of missing one after the other.
 * index_range: nfl_range without taking the lock. */
void index_prepare(nfl_index *idx, const uint64_t *keys, size_t n,
                   index_key *out);
size_t index_range(nfl_index *idx, uint64_t lo, uint64_t hi, int flags,
                   uint64_t *keys, uint64_t *values, size_t max);
/* index_prepare_chunk: encodes and transforms keys[at..] into enc and z, at
 * most INDEX_CHUNK of them; returns how many.
 * index_get_many: nfl_get_many without taking the lock (parallel.c runs it
 * on each thread's slice under the caller's read lock). */
size_t index_prepare_chunk(const nfl_index *idx, const uint64_t *keys,
                           size_t n, size_t at, uint64_t *enc, double *z);
void index_get_many(const nfl_index *idx, const uint64_t *keys, size_t n,
                    uint64_t *values, uint8_t *found);

/* The bulk load's first steps, shared with nfl_slot_counts (check.c), which
 * counts the root that load builds.  index_sorted_entries: n raw keys
 * encoded with their values (0 where values is NULL) and sorted by key in
 * place, in a scratch block (scratch.h) with room for n doubles after the
 * entries (z); NULL if out of memory.  index_entries_z: the z of n sorted
 * entries; NFL_EORDER where they do not ascend (a flow not monotone over
 * these keys), else NFL_OK. */
afli_entry *index_sorted_entries(int key_type, const uint64_t *keys,
                                 const uint64_t *values, size_t n);
int index_entries_z(const afli_tree *t, const afli_entry *e, size_t n,
                    double *z);

#endif
