/* race_core.c - pthreads hammering one index, for ThreadSanitizer.
 *
 * Two readers and two writers share one index for a few seconds:
 *   - the generation writer rewrites every "stable" key in one nfl_put_many
 *     (value = the key's tag | generation << 40), toggles the prefetch
 *     option, and now and then reloads the stable keys with nfl_bulk_load
 *     (another bucket size);
 *   - the churn writer inserts and deletes "volatile" keys (point and batch
 *     calls, and through the op-stream executor);
 *     point calls also go through nfl_point as the Python extension calls it:
 *     first with wait 0, again with wait 1 if that returned NFL_EBUSY;
 *   - each reader repeatedly reads every stable key with one nfl_get_many and
 *     scans the whole index with one nfl_range, and also calls nfl_get,
 *     nfl_point (try, then wait),
 *     nfl_max, nfl_size, nfl_version, nfl_get_stats and nfl_memory_usage.
 * Readers check what the readers-writer lock promises: a batch read or a
 * scan sees every stable key with one single generation (a write is never
 * half-seen), every value carries its key's tag (no torn or misplaced
 * values), a scan is strictly ascending and holds only known keys, the size
 * stays within bounds and the version never goes back.  Built with
 * -fsanitize=thread by tests/test_threads.py, which fails on any report.
 *
 *   race_core [seconds]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor.h"

#define STABLE 4096
#define VOLATILE 2048
#define TAG_BITS 40
#define TAG_MASK ((1ull << TAG_BITS) - 1)

static nfl_index *idx;
static uint64_t stable[STABLE], volatile_keys[VOLATILE]; /* each sorted */
static int stop;        /* set by main; read with __atomic */
static int failed;      /* set by any thread on a broken promise */
static uint64_t reads, writes;

static int point_try_then_wait(int op, uint64_t key, uint64_t *value);

#define EXPECT(cond, what)                                                   \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "race_core: %s (%s:%d)\n", what, __FILE__,       \
                    __LINE__);                                               \
            __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);                  \
        }                                                                    \
    } while (0)

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint64_t value_of(uint64_t key, uint64_t gen) { return gen << TAG_BITS | (mix(key) & TAG_MASK); }
static int tagged(uint64_t key, uint64_t v) { return (v & TAG_MASK) == (mix(key) & TAG_MASK); }
static int running(void) { return !__atomic_load_n(&stop, __ATOMIC_RELAXED); }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int member(const uint64_t *set, size_t n, uint64_t key)
{
    return bsearch(&key, set, n, 8, cmp_u64) != NULL;
}

static void *generation_writer(void *arg)
{
    (void)arg;
    uint64_t *values = malloc(STABLE * 8), dup;
    for (uint64_t gen = 1; running(); gen++) {
        for (size_t i = 0; i < STABLE; i++)
            values[i] = value_of(stable[i], gen);
        if (gen % 16 == 0)
            EXPECT(nfl_bulk_load(idx, stable, values, STABLE, 1 + (int)(gen / 16) % NFL_MAX_BUCKET, &dup) == NFL_OK,
                   "bulk_load");
        else
            EXPECT(nfl_put_many(idx, stable, values, STABLE, NFL_UPSERT, NULL) == NFL_OK, "put_many");
        EXPECT(nfl_set_option(idx, NFL_OPT_PREFETCH, (int64_t)(gen & 1)) == NFL_OK, "option");
        __atomic_add_fetch(&writes, 1, __ATOMIC_RELAXED);
    }
    free(values);
    return NULL;
}

static void *churn_writer(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg, keys[64], values[64];
    uint8_t flags[64], ops[64];
    nfl_exec_report rep;
    while (running()) {
        seed = mix(seed + 1);
        size_t n = 1 + seed % 64;
        for (size_t i = 0; i < n; i++) {
            keys[i] = volatile_keys[mix(seed + i) % VOLATILE];
            values[i] = value_of(keys[i], seed & 0xffff);
            ops[i] = (uint8_t[]){NFL_OP_UPDATE, NFL_OP_INSERT, NFL_OP_DELETE, NFL_OP_SCAN}[i % 4];
        }
        switch (seed >> 60 & 3) {
        case 0:
            EXPECT(nfl_put_many(idx, keys, values, n, (int)(seed >> 8) % 3, flags) == NFL_OK,
                   "churn put_many");
            break;
        case 1:
            nfl_delete_many(idx, keys, n, flags);
            break;
        case 2:
            EXPECT(nfl_put(idx, keys[0], values[0], NFL_UPSERT) >= 0, "churn put");
            nfl_delete(idx, keys[n - 1]);
            {
                uint64_t v = values[0];
                int rc = point_try_then_wait((int)(seed >> 20) % 3, keys[0], &v);
                EXPECT(rc >= 0 && (rc == 0 || tagged(keys[0], v)), "churn point put");
                if (point_try_then_wait(NFL_POINT_DELETE, keys[n - 1], &v) == 1)
                    EXPECT(tagged(keys[n - 1], v), "churn point delete: the old value");
            }
            break;
        default: {
            int64_t scan_len[64];
            for (size_t i = 0; i < n; i++)
                scan_len[i] = 8;
            EXPECT(nfl_execute(idx, ops, keys, values, scan_len, NULL, n, 16, NULL, NULL, &rep) ==
                       NFL_OK, "execute");
        }
        }
        __atomic_add_fetch(&writes, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* One generation over all stable keys, every value tagged. */
static void check_stable(const uint64_t *keys, const uint64_t *values, const uint8_t *found,
                         size_t n, const char *what)
{
    uint64_t gen = values[0] >> TAG_BITS;
    for (size_t i = 0; i < n; i++) {
        EXPECT(!found || found[i], what);
        EXPECT(tagged(keys[i], values[i]), what);
        EXPECT(values[i] >> TAG_BITS == gen, what);
    }
}

/* nfl_point as nfl._index calls it: without blocking, then blocking. */
static int point_try_then_wait(int op, uint64_t key, uint64_t *value)
{
    uint64_t in = *value;
    int rc = nfl_point(idx, op, key, value, 0);
    if (rc == NFL_EBUSY) {
        EXPECT(*value == in, "a busy nfl_point changed its value");
        rc = nfl_point(idx, op, key, value, 1);
    }
    EXPECT(rc != NFL_EBUSY, "nfl_point with wait 1 was busy");
    return rc;
}

static void *reader(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg, last_version = 0;
    size_t room = STABLE + VOLATILE;
    uint64_t *values = malloc(room * 8), *keys = malloc(room * 8), *skeys = malloc(room * 8);
    uint8_t *found = malloc(STABLE);
    while (running()) {
        seed = mix(seed + 1);
        nfl_get_many(idx, stable, STABLE, values, found);
        check_stable(stable, values, found, STABLE, "get_many: one generation, tagged");

        size_t n = nfl_range(idx, 0, 0, NFL_FROM_START | NFL_TO_END, keys, values, room);
        size_t ns = 0;
        for (size_t i = 0; i < n; i++) {
            EXPECT(i == 0 || keys[i - 1] < keys[i], "range ascending");
            EXPECT(tagged(keys[i], values[i]), "range value tagged");
            if (member(stable, STABLE, keys[i]))
                skeys[ns] = keys[i], values[ns++] = values[i];
            else
                EXPECT(member(volatile_keys, VOLATILE, keys[i]), "range: unknown key");
        }
        EXPECT(ns == STABLE, "range: every stable key");
        check_stable(skeys, values, NULL, ns, "range: one generation");

        uint64_t v, k = stable[seed % STABLE];
        EXPECT(nfl_get(idx, k, &v) == 1 && tagged(k, v), "get");
        EXPECT(point_try_then_wait(NFL_POINT_GET, k, &v) == 1 && tagged(k, v), "point get");
        EXPECT(point_try_then_wait(NFL_POINT_SIZE, 0, &v) == NFL_OK && v >= STABLE, "point size");
        EXPECT(nfl_max(idx, &k, &v) == 1 && tagged(k, v), "max");
        size_t size = nfl_size(idx);
        EXPECT(size >= STABLE && size <= STABLE + VOLATILE, "size bounds");
        uint64_t version = nfl_version(idx);
        EXPECT(version >= last_version, "version went back");
        last_version = version;
        nfl_stats st;
        nfl_get_stats(idx, &st);
        EXPECT(st.size >= STABLE && nfl_memory_usage(idx) > 0, "stats");
        __atomic_add_fetch(&reads, 1, __ATOMIC_RELAXED);
    }
    free(values), free(keys), free(skeys), free(found);
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    for (size_t i = 0; i < STABLE; i++) /* distinct: mix is a bijection */
        stable[i] = mix(i + 1);
    for (size_t i = 0; i < VOLATILE; i++)
        volatile_keys[i] = mix(STABLE + i + 1);
    qsort(stable, STABLE, 8, cmp_u64);
    qsort(volatile_keys, VOLATILE, 8, cmp_u64);
    uint64_t values[STABLE], dup;
    for (size_t i = 0; i < STABLE; i++)
        values[i] = value_of(stable[i], 0);
    idx = nfl_create(NFL_KEY_UINT64, NULL, 0);
    if (!idx || nfl_bulk_load(idx, stable, values, STABLE, 4, &dup) != NFL_OK)
        return 2;

    pthread_t th[4];
    pthread_create(&th[0], NULL, generation_writer, NULL);
    pthread_create(&th[1], NULL, churn_writer, (void *)1);
    pthread_create(&th[2], NULL, reader, (void *)2);
    pthread_create(&th[3], NULL, reader, (void *)3);
    struct timespec pause = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&pause, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);

    /* quiescent: the volatile keys go, the last generation stays */
    uint8_t *gone = malloc(VOLATILE), found[STABLE];
    nfl_delete_many(idx, volatile_keys, VOLATILE, gone);
    EXPECT(nfl_size(idx) == STABLE, "final size");
    nfl_get_many(idx, stable, STABLE, values, found);
    check_stable(stable, values, found, STABLE, "final values");
    free(gone);
    nfl_free(idx);
    printf("race_core: %llu reads, %llu writes in %.1f s, %s\n", (unsigned long long)reads,
           (unsigned long long)writes, seconds, failed ? "FAILED" : "ok");
    return failed;
}
