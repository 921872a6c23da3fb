/* nfl.h - the native API of nfl's index (executor.h adds the benchmark's
 * op-stream executor).
 *
 * An AFLI tree (After-Flow Learned Index) over exact 8-byte keys, optionally
 * behind a numerical normalizing flow.  Keys cross this boundary as their raw
 * 8 bytes (a uint64, int64 or float64 bit pattern, chosen by the index's key
 * type); the core encodes them to order-preserving uint64 and compares those
 * exactly.  Values are opaque 8-byte words.
 *
 * Python (nfl/) owns validation and dtype handling; every function here
 * assumes valid arguments (no NaN keys, non-NULL pointers, n matching the
 * arrays).  Every index function takes the index's readers-writer lock, so an
 * index may be shared by threads; cffi releases the GIL around each call.
 *
 * The text between the CDEF markers is fed to cffi verbatim: keep it to plain
 * declarations and integer #defines.
 */
#ifndef NFL_H
#define NFL_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */

/* Key types. */
#define NFL_KEY_UINT64 0
#define NFL_KEY_INT64 1
#define NFL_KEY_FLOAT64 2

/* Return codes (negative) of functions that can fail. */
#define NFL_OK 0
#define NFL_ENOMEM -1
#define NFL_EDUPLICATE -2
#define NFL_EINVAL -3
#define NFL_EORDER -4
#define NFL_EBUSY -5

/* Write modes of nfl_put / nfl_put_many (and ops of nfl_point). */
#define NFL_UPSERT 0
#define NFL_INSERT 1
#define NFL_UPDATE 2
/* The other ops of nfl_point. */
#define NFL_POINT_GET 3
#define NFL_POINT_DELETE 4
#define NFL_POINT_SIZE 5

/* Flags of nfl_range. */
#define NFL_FROM_START 1
#define NFL_LO_EXCLUSIVE 2
#define NFL_TO_END 4
#define NFL_HI_INCLUSIVE 8
#define NFL_REVERSE 16
#define NFL_NOWAIT 32

/* Options of nfl_set_option. */
#define NFL_OPT_PREFETCH 1
#define NFL_OPT_BUCKET_SIZE 2

/* Limits of the tree and of a flow (Python reads them from here). */
#define NFL_MAX_BUCKET 6           /* entries a bucket holds, at most */
#define NFL_DEFAULT_BUCKET 4       /* bucket size of an index not bulk loaded */
#define NFL_FLOW_MAX_BINS 1048576  /* bins of a spline flow, at most */
#define NFL_CHECK_MESSAGE 256      /* room nfl_check needs for its message */

/* ---- Key encoding: raw 8-byte keys <-> order-preserving uint64 ---------- */

/* enc[i] = order-preserving code of raw[i]; -0.0 and 0.0 share a code. */
void nfl_encode(int key_type, const uint64_t *raw, uint64_t *enc, size_t n);
/* raw[i] = the key whose code is enc[i] (0.0 for the code of -0.0). */
void nfl_decode(int key_type, const uint64_t *enc, uint64_t *raw, size_t n);

/* ---- Flow: compiled inference of a trained numerical normalizing flow --- */

typedef struct nfl_flow nfl_flow;

/* Builds a flow from the flat parameter vector that nfl.flow writes (layout
 * documented in flow.c).  NULL if the vector is malformed or non-finite. */
nfl_flow *nfl_flow_create(const double *params, size_t n_params);
void nfl_flow_free(nfl_flow *flow);
/* Bytes of the tables the transform reads (knots padded for the binary
 * lifting, pieces, radix cells): what a lookup reads besides the tree. */
size_t nfl_flow_table_bytes(const nfl_flow *flow);
/* The first step of the binary lifting that finds a key's bin within its
 * radix cell (0: none): log2 of it + 1 probes, the cost of the bin search. */
int nfl_flow_lifting_step(const nfl_flow *flow);
/* z[i] = f(x[i]): finite for every non-NaN x, and monotone non-decreasing in
 * x exactly, in floating point, for any valid parameters. */
void nfl_flow_transform(const nfl_flow *flow, const double *x, double *z,
                        size_t n);

/* ---- Index ------------------------------------------------------------- */

typedef struct nfl_index nfl_index;

/* An empty index.  flow_params NULL (n_flow_params 0) means no flow: the
 * transform is the identity.  NULL on bad arguments or out of memory. */
nfl_index *nfl_create(int key_type, const double *flow_params,
                      size_t n_flow_params);
void nfl_free(nfl_index *index);

/* Replaces the contents with n entries (keys in any order).  bucket_size is
 * the tree's bucket capacity, 1..NFL_MAX_BUCKET (from the tail conflict
 * degree).  On a
 * duplicate key returns NFL_EDUPLICATE and sets *dup_key to its raw key; on
 * a flow that is not monotone over the keys, NFL_EORDER; out of memory,
 * NFL_ENOMEM.  A failed load leaves the index as it was. */
int nfl_bulk_load(nfl_index *index, const uint64_t *keys,
                  const uint64_t *values, size_t n, int bucket_size,
                  uint64_t *dup_key);

size_t nfl_size(const nfl_index *index);
/* Bumped by every change; iterators compare it to detect concurrent writes. */
uint64_t nfl_version(const nfl_index *index);
int nfl_set_option(nfl_index *index, int option, int64_t value);

/* Point operations.  nfl_get returns 1 and sets *value when found, else 0.
 * nfl_put returns 1 if the key existed before, 0 if not, <0 on error; mode
 * NFL_INSERT leaves an existing key alone, NFL_UPDATE adds no new key.
 * nfl_delete returns 1 if the key was there. */
int nfl_get(nfl_index *index, uint64_t key, uint64_t *value);
int nfl_put(nfl_index *index, uint64_t key, uint64_t value, int mode);
int nfl_delete(nfl_index *index, uint64_t key);

/* One point operation for a caller that must not block while it holds a
 * lock of its own (the Python extension holds the GIL).  op is a write mode
 * (returns as nfl_put; *value is the new value in and, when the key existed,
 * the value it had out), NFL_POINT_GET (as nfl_get), NFL_POINT_DELETE (as
 * nfl_delete; *value receives the removed value) or NFL_POINT_SIZE (*value
 * receives the entry count; key unused).  With wait 0 and the index's lock
 * not free at once, it returns NFL_EBUSY and changes nothing: the caller
 * releases its own lock and calls again with wait 1, which blocks. */
int nfl_point(nfl_index *index, int op, uint64_t key, uint64_t *value,
              int wait);

/* Batch operations, applied in array order.  values may be NULL in
 * nfl_get_many (a contains test); existed may be NULL in nfl_put_many. */
void nfl_get_many(nfl_index *index, const uint64_t *keys, size_t n,
                  uint64_t *values, uint8_t *found);
int nfl_put_many(nfl_index *index, const uint64_t *keys,
                 const uint64_t *values, size_t n, int mode, uint8_t *existed);
void nfl_delete_many(nfl_index *index, const uint64_t *keys, size_t n,
                     uint8_t *deleted);

/* The batch operations above split over up to `threads` threads (the caller
 * among them; 1 or less: the calls above), with the same results, the last
 * op on a key winning.  Reads run in parallel under one read lock.  Writes
 * hold the write lock; their threads encode, transform and look up the keys
 * in parallel, then the caller applies the ops to the tree alone (parallel.c
 * says how).  A thread the system refuses to start means fewer threads, not
 * an error.  NFL_ENOMEM (nothing changed) when the scratch cannot be had; a
 * put that fails part way may have applied some later ops on present keys. */
#define NFL_MAX_THREADS 256
void nfl_get_many_threads(nfl_index *index, const uint64_t *keys, size_t n,
                          uint64_t *values, uint8_t *found, int threads);
int nfl_put_many_threads(nfl_index *index, const uint64_t *keys,
                         const uint64_t *values, size_t n, int mode,
                         uint8_t *existed, int threads);
int nfl_delete_many_threads(nfl_index *index, const uint64_t *keys, size_t n,
                            uint8_t *deleted, int threads);

/* Ordered read: copies, in ascending key order (descending with
 * NFL_REVERSE: the largest entries first), up to max entries with
 * lo <= key (lo < key with NFL_LO_EXCLUSIVE; no bound with NFL_FROM_START)
 * and key < hi (key <= hi with NFL_HI_INCLUSIVE; no bound with NFL_TO_END).
 * Returns the count copied.  With NFL_NOWAIT it takes the index's lock only
 * if that is free at once, and returns SIZE_MAX (copying nothing) if not. */
size_t nfl_range(nfl_index *index, uint64_t lo, uint64_t hi, int flags,
                 uint64_t *keys, uint64_t *values, size_t max);
/* The largest entry; 0 when empty. */
int nfl_max(nfl_index *index, uint64_t *key, uint64_t *value);

#define NFL_DEPTH_BINS 16

typedef struct {
    uint64_t size;
    uint64_t model_nodes;
    uint64_t dense_nodes;
    uint64_t buckets;
    uint64_t max_depth;
    double avg_depth;      /* mean depth of the entries, root = 1 */
    uint64_t dense_keys;   /* entries held in dense nodes (sorted arrays) */
    uint64_t max_dense;    /* entries of the largest dense node */
    uint64_t depth_keys[NFL_DEPTH_BINS]; /* entries at depth d + 1; the last bin: deeper too */
    uint64_t memory_bytes;
    int bucket_size;
    int flow_enabled;
} nfl_stats;

void nfl_get_stats(nfl_index *index, nfl_stats *out);
size_t nfl_memory_usage(nfl_index *index);

/* Checks every structural invariant of the tree: node and subtree sizes,
 * slot kinds, bucket counts and capacities, children covering one run of
 * slots, every key in the slot its node's model predicts for it, keys in
 * ascending order, finite increasing models, a flow monotone over the keys.
 * Returns 0 if all hold, else 1 with the first violation described in msg
 * (room bytes; NFL_CHECK_MESSAGE suffice).  O(n * depth); allocates nothing. */
int nfl_check(nfl_index *index, char *msg, size_t room);

/* ---- Conflicts: how a model node spreads keys over its slots ------------ */

/* Slots of a model node over n keys: amplification slots a key (<= 0: the
 * tree's own), at least 1. */
size_t nfl_model_capacity(size_t n, double amplification);
/* per_slot[s] = how many of the n raw keys (any order, of key_type) fall in
 * slot s of the linear model that a node over them fits, among its
 * nfl_model_capacity(n, amplification) slots; flow NULL: no flow.  With the
 * tree's amplification this is the root nfl_bulk_load builds over the same
 * unique keys (all keys in slot 0 where it builds a dense node).  Returns
 * NFL_OK for a one-line model, NFL_SLOTS_PIECES for the pieces model (keys
 * in clusters far apart: a lookup reads the key's piece, then its slot), or
 * NFL_ENOMEM.  O(n). */
#define NFL_SLOTS_PIECES 1
int nfl_slot_counts(int key_type, const nfl_flow *flow, const uint64_t *keys,
                    size_t n, double amplification, uint32_t *per_slot);
/* The same counts read off a built index's root: per_slot gets its slots
 * (room entries, at least its capacity); returns that capacity, 1 for a
 * dense root (per_slot[0] = size), 0 if room is too small.  For tests. */
size_t nfl_root_slot_counts(nfl_index *index, uint32_t *per_slot, size_t room);

/* CDEF-END */

#endif /* NFL_H */
