/* parallel.c - batch operations split over threads.
 *
 * A call starts a team of threads (the caller is one of them) for its own
 * duration; each round of work cuts a run of the batch into contiguous
 * slices, one per thread.  Threads are started per call, not pooled: nothing
 * lingers between calls and nothing needs care across fork().
 *
 * Reads (nfl_get_many_threads): the caller takes the read lock once and every
 * thread runs the one-thread lookup (index_get_many) on its slice, so all
 * slices see one state of the tree and the results are those of one thread.
 *
 * Writes: the tree is not safe for concurrent writers, so only what does not
 * change it runs in parallel.  Under the write lock a batch runs in chunks of
 * WRITE_CHUNK ops, each in two phases:
 *   1. parallel, read only: the threads encode, transform and look up their
 *      slices of the chunk (the flow and the cache misses of the descents,
 *      most of a write's time), noting where each key's value is, or NULL;
 *   2. the caller alone, in batch order, the chunk's paths now in cache.  A
 *      put first runs the ops on keys present before the chunk, which change
 *      no structure (an upsert or update writes the value in place, an
 *      insert leaves it), then the ops on absent keys (afli_put).  A delete
 *      removes the present keys (afli_remove) and skips the absent ones.
 * Ops on different keys commute and each key's ops keep their order, so the
 * flags and the final values (the last write of a key wins) are those of one
 * thread.  Only a failed insert (out of memory) differs: ops on present keys
 * later in its chunk have been applied, as they have not with one thread.
 */
#include <pthread.h>
#include <stdlib.h>

#include "index.h"

/* Ops per write chunk: their paths, walked in phase 1, still in cache for
 * phase 2 (tens of bytes a path: a few MB, inside the last-level cache). */
#define WRITE_CHUNK 32768
/* Slices start on multiples of this many ops, so no two threads write into
 * one cache line of the flag arrays. */
#define SLICE_ALIGN 64

typedef void (*slice_fn)(void *arg, size_t lo, size_t hi);

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned round;   /* bumped by the caller to start a round */
    int running;      /* helpers still in the current round */
    int quit;
    slice_fn fn;      /* the round's work: fn(arg, lo, hi) per slice of n */
    void *arg;
    size_t n;
    int size;         /* threads in the team, the caller included */
    pthread_t helper[NFL_MAX_THREADS];
} team;

typedef struct {
    team *tm;
    int rank;         /* the helper's slice; the caller's is the last */
} helper_arg;

/* Slice `rank` of `size` over n ops, aligned to SLICE_ALIGN. */
static void slice(size_t n, int size, int rank, size_t *lo, size_t *hi)
{
    size_t per = (n + (size_t)size - 1) / (size_t)size;
    per = (per + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
    *lo = per * (size_t)rank < n ? per * (size_t)rank : n;
    *hi = *lo + per < n ? *lo + per : n;
}

static void *helper_main(void *p)
{
    helper_arg *h = p;
    team *tm = h->tm;
    unsigned seen = 0;
    pthread_mutex_lock(&tm->mu);
    for (;;) {
        while (tm->round == seen && !tm->quit)
            pthread_cond_wait(&tm->go, &tm->mu);
        if (tm->quit)
            break;
        seen = tm->round;
        pthread_mutex_unlock(&tm->mu);
        size_t lo, hi;
        slice(tm->n, tm->size, h->rank, &lo, &hi);
        if (lo < hi)
            tm->fn(tm->arg, lo, hi);
        pthread_mutex_lock(&tm->mu);
        if (--tm->running == 0)
            pthread_cond_signal(&tm->done);
    }
    pthread_mutex_unlock(&tm->mu);
    return NULL;
}

/* Starts up to threads - 1 helpers; the team is as large as what started
 * (a thread the system refuses only means fewer slices).  Returns 0, or
 * NFL_ENOMEM if the team's own state cannot be set up. */
static int team_start(team *tm, helper_arg *args, int threads)
{
    tm->round = 0;
    tm->running = 0;
    tm->quit = 0;
    tm->size = 1;
    if (pthread_mutex_init(&tm->mu, NULL) != 0)
        return NFL_ENOMEM;
    if (pthread_cond_init(&tm->go, NULL) != 0) {
        pthread_mutex_destroy(&tm->mu);
        return NFL_ENOMEM;
    }
    if (pthread_cond_init(&tm->done, NULL) != 0) {
        pthread_cond_destroy(&tm->go);
        pthread_mutex_destroy(&tm->mu);
        return NFL_ENOMEM;
    }
    for (int i = 0; i < threads - 1; i++) {
        args[i].tm = tm;
        args[i].rank = i;
        if (pthread_create(&tm->helper[i], NULL, helper_main, &args[i]) != 0)
            break;
        tm->size++;
    }
    return NFL_OK;
}

/* Runs fn over [0, n) split among the team; returns when every slice is done. */
static void team_run(team *tm, slice_fn fn, void *arg, size_t n)
{
    size_t lo, hi;
    if (tm->size > 1) {
        pthread_mutex_lock(&tm->mu);
        tm->fn = fn;
        tm->arg = arg;
        tm->n = n;
        tm->running = tm->size - 1;
        tm->round++;
        pthread_cond_broadcast(&tm->go);
        pthread_mutex_unlock(&tm->mu);
    }
    slice(n, tm->size, tm->size - 1, &lo, &hi);
    if (lo < hi)
        fn(arg, lo, hi);
    if (tm->size > 1) {
        pthread_mutex_lock(&tm->mu);
        while (tm->running)
            pthread_cond_wait(&tm->done, &tm->mu);
        pthread_mutex_unlock(&tm->mu);
    }
}

static void team_stop(team *tm)
{
    pthread_mutex_lock(&tm->mu);
    tm->quit = 1;
    pthread_cond_broadcast(&tm->go);
    pthread_mutex_unlock(&tm->mu);
    for (int i = 0; i < tm->size - 1; i++)
        pthread_join(tm->helper[i], NULL);
    pthread_cond_destroy(&tm->done);
    pthread_cond_destroy(&tm->go);
    pthread_mutex_destroy(&tm->mu);
}

/* Threads worth starting for n ops: threads within 1..NFL_MAX_THREADS, at
 * most one per SLICE_ALIGN ops. */
static int team_size(size_t n, int threads)
{
    size_t slices = (n + SLICE_ALIGN - 1) / SLICE_ALIGN;
    if (threads < 1 || slices <= 1)
        return 1;
    if (threads > NFL_MAX_THREADS)
        threads = NFL_MAX_THREADS;
    return (size_t)threads < slices ? threads : (int)slices;
}

/* ---- reads ----------------------------------------------------------------- */

typedef struct {
    const nfl_index *idx;
    const uint64_t *keys;
    uint64_t *values;
    uint8_t *found;
} get_job;

static void get_slice(void *p, size_t lo, size_t hi)
{
    get_job *j = p;
    index_get_many(j->idx, j->keys + lo, hi - lo, j->values ? j->values + lo : NULL,
                   j->found + lo);
}

void nfl_get_many_threads(nfl_index *idx, const uint64_t *keys, size_t n,
                          uint64_t *values, uint8_t *found, int threads)
{
    threads = team_size(n, threads);
    team tm;
    helper_arg args[NFL_MAX_THREADS];
    get_job job = {idx, keys, values, found};
    index_read_begin(idx);
    if (threads <= 1 || team_start(&tm, args, threads) != NFL_OK) {
        index_get_many(idx, keys, n, values, found);
    } else {
        team_run(&tm, get_slice, &job, n);
        team_stop(&tm);
    }
    index_read_end(idx);
}

/* ---- writes ---------------------------------------------------------------- */

/* Phase 1 of a write chunk: each op's code, z and value pointer (NULL: the
 * key is absent). */
typedef struct {
    const nfl_index *idx;
    const uint64_t *keys; /* the chunk's raw keys */
    uint64_t *enc;
    double *z;
    uint64_t **hit;
} find_job;

static void find_slice(void *p, size_t lo, size_t hi)
{
    find_job *j = p;
    for (size_t at = lo; at < hi;) {
        size_t m = index_prepare_chunk(j->idx, j->keys, hi, at, j->enc + at, j->z + at);
        afli_find_batch(&j->idx->tree, j->enc + at, j->z + at, m, j->idx->prefetch,
                        j->hit + at);
        at += m;
    }
}

/* A write batch's scratch and team; threads > 1. */
typedef struct {
    team tm;
    helper_arg args[NFL_MAX_THREADS];
    uint64_t *enc;
    double *z;
    uint64_t **hit;
} writer;

static int writer_start(writer *w, size_t n, int threads)
{
    size_t room = n < WRITE_CHUNK ? n : WRITE_CHUNK;
    w->enc = malloc(room * sizeof *w->enc);
    w->z = malloc(room * sizeof *w->z);
    w->hit = malloc(room * sizeof *w->hit);
    if (!w->enc || !w->z || !w->hit || team_start(&w->tm, w->args, threads) != NFL_OK) {
        free(w->enc);
        free(w->z);
        free(w->hit);
        return NFL_ENOMEM;
    }
    return NFL_OK;
}

static void writer_stop(writer *w)
{
    team_stop(&w->tm);
    free(w->enc);
    free(w->z);
    free(w->hit);
}

/* Phase 1 over keys[0..m): fills w's enc, z and hit. */
static void writer_find(writer *w, const nfl_index *idx, const uint64_t *keys, size_t m)
{
    find_job job = {idx, keys, w->enc, w->z, w->hit};
    team_run(&w->tm, find_slice, &job, m);
}

int nfl_put_many_threads(nfl_index *idx, const uint64_t *keys,
                         const uint64_t *values, size_t n, int mode,
                         uint8_t *existed, int threads)
{
    writer w;
    threads = team_size(n, threads);
    if (threads <= 1)
        return nfl_put_many(idx, keys, values, n, mode, existed);
    if (writer_start(&w, n, threads) != NFL_OK)
        return NFL_ENOMEM;
    int rc = NFL_OK;
    index_write_begin(idx);
    for (size_t at = 0; at < n && rc == NFL_OK; at += WRITE_CHUNK) {
        size_t m = n - at < WRITE_CHUNK ? n - at : WRITE_CHUNK;
        const uint64_t *v = values + at;
        writer_find(&w, idx, keys + at, m);
        for (size_t i = 0; i < m; i++) { /* present keys: no structural change */
            if (!w.hit[i])
                continue;
            if (mode != NFL_INSERT)
                *w.hit[i] = v[i];
            if (existed)
                existed[at + i] = 1;
        }
        for (size_t i = 0; i < m; i++) { /* absent keys, in order */
            if (w.hit[i])
                continue;
            int r = mode == NFL_UPDATE
                        ? 0 /* absent before the chunk, and no op here adds it */
                        : afli_put(&idx->tree, w.enc[i], w.z[i], v[i], mode, NULL);
            if (r < 0) {
                rc = r;
                break;
            }
            if (existed)
                existed[at + i] = (uint8_t)r;
        }
    }
    index_write_end(idx);
    writer_stop(&w);
    return rc;
}

int nfl_delete_many_threads(nfl_index *idx, const uint64_t *keys, size_t n,
                            uint8_t *deleted, int threads)
{
    writer w;
    threads = team_size(n, threads);
    if (threads <= 1) {
        nfl_delete_many(idx, keys, n, deleted);
        return NFL_OK;
    }
    if (writer_start(&w, n, threads) != NFL_OK)
        return NFL_ENOMEM;
    index_write_begin(idx);
    for (size_t at = 0; at < n; at += WRITE_CHUNK) {
        size_t m = n - at < WRITE_CHUNK ? n - at : WRITE_CHUNK;
        writer_find(&w, idx, keys + at, m);
        for (size_t i = 0; i < m; i++) /* a repeated key: removed by its first op */
            deleted[at + i] = w.hit[i] && afli_remove(&idx->tree, w.enc[i], w.z[i], NULL);
    }
    index_write_end(idx);
    writer_stop(&w);
    return NFL_OK;
}
