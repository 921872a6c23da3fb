/* index.c - the public index: encoding at the boundary, locking, batches.
 *
 * Every call encodes raw keys, computes their z and runs the tree operation
 * under the index's readers-writer lock: readers share it, writers hold it
 * alone.  A single-key call and a bulk load compute z before taking the lock
 * (the flow is immutable, so no lock is needed for it); a batch computes z
 * chunk by chunk inside the lock, right before the chunk's tree operations,
 * while the keys are in cache.  The version counter is bumped by every write
 * so iterators can detect concurrent changes.  Every index is registered
 * with fork.c from creation to free (fork safety).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "afli.h"
#include "index.h"
#include "keys.h"
#include "scratch.h"

#define RADIX_BITS 8
#define RADIX_BUCKETS ((size_t)1 << RADIX_BITS)
#define RADIX_DIGIT(key, shift) ((size_t)((key) >> (shift)) & (RADIX_BUCKETS - 1))
#define RADIX_SMALL 32 /* buckets this small are sorted by insertion */

int index_lock_init(pthread_rwlock_t *lock)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
#ifdef __GLIBC__ /* glibc prefers readers: a stream of readers starves writers */
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    int rc = pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return rc;
}

nfl_index *nfl_create(int key_type, const double *flow_params,
                      size_t n_flow_params)
{
    if (key_type < NFL_KEY_UINT64 || key_type > NFL_KEY_FLOAT64)
        return NULL;
    nfl_flow *flow = NULL;
    if (flow_params && n_flow_params) {
        flow = nfl_flow_create(flow_params, n_flow_params);
        if (!flow)
            return NULL;
    }
    nfl_index *idx = calloc(1, sizeof *idx);
    if (!idx || index_lock_init(&idx->lock) != 0) {
        free(idx);
        nfl_flow_free(flow);
        return NULL;
    }
    if (fork_register(idx) != NFL_OK) {
        pthread_rwlock_destroy(&idx->lock);
        free(idx);
        nfl_flow_free(flow);
        return NULL;
    }
    if (afli_init(&idx->tree, key_type, flow) != NFL_OK) {
        nfl_free(idx);
        return NULL;
    }
    idx->prefetch = 1;
    return idx;
}

void nfl_free(nfl_index *idx)
{
    if (!idx)
        return;
    fork_unregister(idx);
    afli_destroy(&idx->tree);
    nfl_flow_free(idx->tree.flow);
    pthread_rwlock_destroy(&idx->lock);
    free(idx);
}

void index_write_begin(nfl_index *idx)
{
    pthread_rwlock_wrlock(&idx->lock);
}

void index_write_end(nfl_index *idx)
{
    __atomic_add_fetch(&idx->version, 1, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&idx->lock);
}

void index_read_begin(nfl_index *idx)
{
    pthread_rwlock_rdlock(&idx->lock);
}

void index_read_end(nfl_index *idx)
{
    pthread_rwlock_unlock(&idx->lock);
}

uint64_t nfl_version(const nfl_index *idx)
{
    return __atomic_load_n(&idx->version, __ATOMIC_ACQUIRE);
}

int nfl_set_option(nfl_index *idx, int option, int64_t value)
{
    int rc = NFL_OK;
    index_write_begin(idx);
    if (option == NFL_OPT_PREFETCH)
        idx->prefetch = value != 0;
    else if (option == NFL_OPT_BUCKET_SIZE && value >= 1 &&
             value <= NFL_MAX_BUCKET && idx->tree.size == 0)
        idx->tree.bucket_size = (int)value;
    else
        rc = NFL_EINVAL;
    index_write_end(idx);
    return rc;
}

/* ---- bulk load ----------------------------------------------------------- */

static void insertion_sort(afli_entry *e, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        afli_entry x = e[i];
        size_t j = i;
        for (; j > 0 && e[j - 1].key > x.key; j--)
            e[j] = e[j - 1];
        e[j] = x;
    }
}

/* Sorts n entries by key in place (American flag sort: MSD radix, RADIX_BITS
 * a digit from bit `shift` down, each bucket permuted into place by cycles;
 * small buckets by insertion).  No second buffer: a first load faults in
 * only the entries.  Constant digits cost one counting pass and no moves. */
static void sort_entries(afli_entry *e, size_t n, int shift)
{
    while (n > RADIX_SMALL) {
        size_t next[RADIX_BUCKETS] = {0}, end[RADIX_BUCKETS];
        for (size_t i = 0; i < n; i++)
            next[RADIX_DIGIT(e[i].key, shift)]++;
        if (next[RADIX_DIGIT(e[0].key, shift)] == n) { /* a constant digit */
            if (shift == 0)
                return; /* equal keys: the duplicate check names them */
            shift -= RADIX_BITS;
            continue;
        }
        size_t sum = 0;
        for (size_t d = 0; d < RADIX_BUCKETS; d++) {
            sum += next[d];
            end[d] = sum;
            next[d] = sum - next[d];
        }
        for (size_t d = 0; d < RADIX_BUCKETS; d++) {
            while (next[d] < end[d]) {
                afli_entry x = e[next[d]];
                size_t b = RADIX_DIGIT(x.key, shift);
                while (b != d) { /* carry x to its bucket, take what was there */
                    afli_entry y = e[next[b]];
                    e[next[b]++] = x;
                    x = y;
                    b = RADIX_DIGIT(x.key, shift);
                }
                e[next[d]++] = x;
            }
        }
        if (shift == 0)
            return;
        for (size_t d = 0, at = 0; d < RADIX_BUCKETS; at = end[d++])
            sort_entries(e + at, end[d] - at, shift - RADIX_BITS);
        return;
    }
    insertion_sort(e, n);
}

/* Encodes keys into entries e with their values (0 without); 1 if already
 * ascending. */
static int encode_entries(int key_type, const uint64_t *keys,
                          const uint64_t *values, size_t n, afli_entry *e)
{
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        e[i].key = nfl_key_encode(key_type, keys[i]);
        e[i].value = values ? values[i] : 0;
        sorted &= i == 0 || e[i - 1].key < e[i].key;
    }
    return sorted;
}

afli_entry *index_sorted_entries(int key_type, const uint64_t *keys,
                                 const uint64_t *values, size_t n)
{
    if (n > SIZE_MAX / (sizeof(afli_entry) + sizeof(double)))
        return NULL;
    afli_entry *e = scratch_take(n * (sizeof *e + sizeof(double)));
    if (e && !encode_entries(key_type, keys, values, n, e))
        sort_entries(e, n, 64 - RADIX_BITS);
    return e;
}

int index_entries_z(const afli_tree *t, const afli_entry *e, size_t n,
                    double *z)
{
    for (size_t at = 0; at < n; at += INDEX_CHUNK) {
        uint64_t enc[INDEX_CHUNK];
        size_t m = n - at < INDEX_CHUNK ? n - at : INDEX_CHUNK;
        for (size_t i = 0; i < m; i++)
            enc[i] = e[at + i].key;
        afli_transform(t, enc, z + at, m);
    }
    for (size_t i = 1; i < n; i++)
        if (!(z[i - 1] <= z[i]))
            return NFL_EORDER;
    return NFL_OK;
}

/* Fresh memory is what a first load pays for (page faults), so the load
 * touches little: the entries, sorted in place, and their z, in one scratch
 * block (the pages nfl_slot_counts just used, see scratch.h), freed here. */
int nfl_bulk_load(nfl_index *idx, const uint64_t *keys,
                  const uint64_t *values, size_t n, int bucket_size,
                  uint64_t *dup_key)
{
    if (bucket_size < 1 || bucket_size > NFL_MAX_BUCKET)
        return NFL_EINVAL;
    afli_tree *t = &idx->tree;
    afli_entry *e = index_sorted_entries(t->key_type, keys, values, n);
    double *z = e ? (double *)(e + n) : NULL;
    int rc = e ? NFL_OK : NFL_ENOMEM;
    for (size_t i = 1; rc == NFL_OK && i < n; i++) {
        if (e[i - 1].key == e[i].key) {
            *dup_key = nfl_key_decode(t->key_type, e[i].key);
            rc = NFL_EDUPLICATE;
        }
    }
    if (rc == NFL_OK)
        rc = index_entries_z(t, e, n, z);
    index_write_begin(idx);
    int was = t->bucket_size;
    t->bucket_size = bucket_size; /* the build reads it */
    if (rc == NFL_OK)
        rc = afli_build(t, e, z, n); /* replaces the root only on success */
    if (rc != NFL_OK)
        t->bucket_size = was;
    index_write_end(idx);
    scratch_give(e, 0);
    return rc;
}

/* ---- point operations ----------------------------------------------------- */

/* Takes the index's lock for a point op: blocking with wait, else only if it
 * is free at once.  1 if taken. */
static int point_lock(nfl_index *idx, int write, int wait)
{
    if (wait) {
        if (write)
            index_write_begin(idx);
        else
            index_read_begin(idx);
        return 1;
    }
    return (write ? pthread_rwlock_trywrlock(&idx->lock)
                  : pthread_rwlock_tryrdlock(&idx->lock)) == 0;
}

int nfl_point(nfl_index *idx, int op, uint64_t key, uint64_t *value, int wait)
{
    int write = op != NFL_POINT_GET && op != NFL_POINT_SIZE;
    index_key k = {0, 0.0};
    if (op != NFL_POINT_SIZE)
        k = index_prepare_key(idx, key);
    if (!point_lock(idx, write, wait))
        return NFL_EBUSY;
    int rc;
    if (op == NFL_POINT_GET) {
        uint64_t *v = afli_find(&idx->tree, k.enc, k.z);
        if (v)
            *value = *v;
        rc = v != NULL;
    } else if (op == NFL_POINT_SIZE) {
        *value = idx->tree.size;
        rc = NFL_OK;
    } else if (op == NFL_POINT_DELETE) {
        rc = afli_remove(&idx->tree, k.enc, k.z, value);
    } else {
        rc = afli_put(&idx->tree, k.enc, k.z, *value, op, value);
    }
    if (write)
        index_write_end(idx);
    else
        index_read_end(idx);
    return rc;
}

int nfl_get(nfl_index *idx, uint64_t key, uint64_t *value)
{
    return nfl_point(idx, NFL_POINT_GET, key, value, 1);
}

int nfl_put(nfl_index *idx, uint64_t key, uint64_t value, int mode)
{
    return nfl_point(idx, mode, key, &value, 1);
}

int nfl_delete(nfl_index *idx, uint64_t key)
{
    uint64_t old;
    return nfl_point(idx, NFL_POINT_DELETE, key, &old, 1);
}

size_t nfl_size(const nfl_index *idx)
{
    uint64_t n;
    nfl_point((nfl_index *)idx, NFL_POINT_SIZE, 0, &n, 1);
    return (size_t)n;
}

/* ---- batch operations ----------------------------------------------------- */

size_t index_prepare_chunk(const nfl_index *idx, const uint64_t *keys,
                           size_t n, size_t at, uint64_t *enc, double *z)
{
    size_t m = n - at < INDEX_CHUNK ? n - at : INDEX_CHUNK;
    nfl_encode(idx->tree.key_type, keys + at, enc, m);
    afli_transform(&idx->tree, enc, z, m);
    return m;
}

void index_get_many(const nfl_index *idx, const uint64_t *keys, size_t n,
                    uint64_t *values, uint8_t *found)
{
    uint64_t enc[INDEX_CHUNK];
    double z[INDEX_CHUNK];
    for (size_t at = 0; at < n;) {
        size_t m = index_prepare_chunk(idx, keys, n, at, enc, z);
        uint64_t *hit[INDEX_CHUNK];
        afli_find_batch(&idx->tree, enc, z, m, idx->prefetch, hit);
        for (size_t i = 0; i < m; i++) {
            found[at + i] = hit[i] != NULL;
            if (values)
                values[at + i] = hit[i] ? *hit[i] : 0;
        }
        at += m;
    }
}

void nfl_get_many(nfl_index *idx, const uint64_t *keys, size_t n,
                  uint64_t *values, uint8_t *found)
{
    index_read_begin(idx);
    index_get_many(idx, keys, n, values, found);
    index_read_end(idx);
}

/* Walks the paths of a chunk of keys with the prefetching batch lookup, so
 * that the writes that follow find them in cache: the misses of the whole
 * chunk overlap instead of queueing one write behind the other.  A hint: the
 * writes may change the tree, and they look their keys up again. */
static void warm_chunk(nfl_index *idx, const uint64_t *enc, const double *z,
                       size_t m)
{
    uint64_t *hit[INDEX_CHUNK];
    if (idx->prefetch)
        afli_find_batch(&idx->tree, enc, z, m, 1, hit);
}

void index_prepare(nfl_index *idx, const uint64_t *keys, size_t n,
                   index_key *out)
{
    uint64_t enc[INDEX_CHUNK];
    double z[INDEX_CHUNK];
    for (size_t at = 0; at < n;) {
        size_t m = index_prepare_chunk(idx, keys, n, at, enc, z);
        warm_chunk(idx, enc, z, m);
        for (size_t i = 0; i < m; i++) {
            out[at + i].enc = enc[i];
            out[at + i].z = z[i];
        }
        at += m;
    }
}

int nfl_put_many(nfl_index *idx, const uint64_t *keys,
                 const uint64_t *values, size_t n, int mode, uint8_t *existed)
{
    uint64_t enc[INDEX_CHUNK];
    double z[INDEX_CHUNK];
    int rc = NFL_OK;
    index_write_begin(idx);
    for (size_t at = 0; at < n && rc == NFL_OK;) {
        size_t m = index_prepare_chunk(idx, keys, n, at, enc, z);
        warm_chunk(idx, enc, z, m);
        for (size_t i = 0; i < m; i++) {
            int r = afli_put(&idx->tree, enc[i], z[i], values[at + i], mode,
                             NULL);
            if (r < 0) {
                rc = r;
                break;
            }
            if (existed)
                existed[at + i] = (uint8_t)r;
        }
        at += m;
    }
    index_write_end(idx);
    return rc;
}

void nfl_delete_many(nfl_index *idx, const uint64_t *keys, size_t n,
                     uint8_t *deleted)
{
    uint64_t enc[INDEX_CHUNK];
    double z[INDEX_CHUNK];
    index_write_begin(idx);
    for (size_t at = 0; at < n;) {
        size_t m = index_prepare_chunk(idx, keys, n, at, enc, z);
        warm_chunk(idx, enc, z, m);
        for (size_t i = 0; i < m; i++)
            deleted[at + i] = (uint8_t)afli_remove(&idx->tree, enc[i], z[i], NULL);
        at += m;
    }
    index_write_end(idx);
}

/* ---- ordered reads and introspection ------------------------------------------ */

size_t index_range(nfl_index *idx, uint64_t lo, uint64_t hi, int flags,
                   uint64_t *keys, uint64_t *values, size_t max)
{
    int kt = idx->tree.key_type;
    uint64_t elo = nfl_key_encode(kt, lo), ehi = nfl_key_encode(kt, hi);
    size_t n = afli_range(&idx->tree, elo, ehi, flags, keys, values, max);
    if (kt != NFL_KEY_UINT64) /* a uint64 key is its own code */
        nfl_decode(kt, keys, keys, n);
    return n;
}

size_t nfl_range(nfl_index *idx, uint64_t lo, uint64_t hi, int flags,
                 uint64_t *keys, uint64_t *values, size_t max)
{
    if (!point_lock(idx, 0, !(flags & NFL_NOWAIT)))
        return SIZE_MAX;
    size_t n = index_range(idx, lo, hi, flags, keys, values, max);
    index_read_end(idx);
    return n;
}

int nfl_max(nfl_index *idx, uint64_t *key, uint64_t *value)
{
    afli_entry e;
    index_read_begin(idx);
    int found = afli_max(&idx->tree, &e);
    index_read_end(idx);
    if (found) {
        *key = nfl_key_decode(idx->tree.key_type, e.key);
        *value = e.value;
    }
    return found;
}

void nfl_get_stats(nfl_index *idx, nfl_stats *out)
{
    index_read_begin(idx);
    afli_stats(&idx->tree, out);
    index_read_end(idx);
}

size_t nfl_memory_usage(nfl_index *idx)
{
    index_read_begin(idx);
    size_t bytes = idx->tree.memory + sizeof *idx;
    index_read_end(idx);
    return bytes;
}
