/* test_parallel.c - batch operations over threads against the one-thread calls.
 *
 * Two indexes get the same bulk load and the same batches: one through
 * nfl_*_many, the other through nfl_*_many_threads with 2 to 5 threads.
 * Batches mix present keys, misses and repeats of a key (within a write
 * chunk and across chunks), so every flag, every value and the final
 * contents must agree, and both trees must pass nfl_check.  Built and run
 * under AddressSanitizer and UBSan by tests/test_native_sanitized.py and
 * under ThreadSanitizer by tests/test_threads_batch.py.
 *
 *     test_parallel [rounds] [max batch]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfl.h"
#include "harness.h"

/* A raw key of key type kt from a pool of about `span` keys: clustered so
 * that batches hit, miss and repeat keys, and inserts grow buckets and
 * children. */
static uint64_t pool_key(int kt, uint64_t span)
{
    uint64_t r = rnd() % span;
    uint64_t k = (r / 64) * 1000 + (r % 64) * (r % 3 + 1);
    if (kt == NFL_KEY_FLOAT64) {
        double d = (double)k * 0.25 - 1e5;
        memcpy(&k, &d, 8);
    } else if (kt == NFL_KEY_INT64) {
        k -= span * 8;
    }
    return k;
}

/* Both indexes hold the same entries (a full ordered read of each). */
static void check_same(nfl_index *a, nfl_index *b)
{
    size_t n = nfl_size(a);
    CHECK(nfl_size(b) == n, "sizes %zu != %zu", nfl_size(b), n);
    uint64_t *ka = malloc((n + 1) * 8), *va = malloc((n + 1) * 8);
    uint64_t *kb = malloc((n + 1) * 8), *vb = malloc((n + 1) * 8);
    size_t ga = nfl_range(a, 0, 0, NFL_FROM_START | NFL_TO_END, ka, va, n + 1);
    size_t gb = nfl_range(b, 0, 0, NFL_FROM_START | NFL_TO_END, kb, vb, n + 1);
    CHECK(ga == gb && ga == n, "scans %zu, %zu of %zu", ga, gb, n);
    CHECK(memcmp(ka, kb, ga * 8) == 0 && memcmp(va, vb, ga * 8) == 0, "contents differ");
    char why[NFL_CHECK_MESSAGE];
    CHECK(nfl_check(a, why, sizeof why) == 0, "one-thread tree: %s", why);
    CHECK(nfl_check(b, why, sizeof why) == 0, "threaded tree: %s", why);
    free(ka);
    free(va);
    free(kb);
    free(vb);
}

static void run(int kt, size_t load, size_t max_batch, unsigned batches)
{
    uint64_t span = 4 * (load + max_batch) + 64;
    nfl_index *a = nfl_create(kt, NULL, 0), *b = nfl_create(kt, NULL, 0);
    CHECK(a && b, "create");
    uint64_t *keys = malloc((max_batch + load + 1) * 8), *vals = malloc((max_batch + load + 1) * 8);
    uint64_t *va = malloc((max_batch + 1) * 8), *vb = malloc((max_batch + 1) * 8);
    uint8_t *fa = malloc(max_batch + 1), *fb = malloc(max_batch + 1);

    /* bulk load distinct keys: the one-thread index tells which are new */
    size_t nl = 0;
    for (size_t i = 0; i < load; i++) {
        uint64_t k = pool_key(kt, span), one = i;
        if (nfl_put(a, k, one, NFL_INSERT) == 0) {
            keys[nl] = k;
            vals[nl++] = one;
        }
    }
    uint64_t dup;
    int bucket = 1 + (int)(rnd() % NFL_MAX_BUCKET);
    CHECK(nfl_bulk_load(a, keys, vals, nl, bucket, &dup) == NFL_OK, "load a");
    CHECK(nfl_bulk_load(b, keys, vals, nl, bucket, &dup) == NFL_OK, "load b");

    for (unsigned r = 0; r < batches; r++) {
        size_t n = (size_t)(rnd() % (max_batch + 1));
        /* 2..5 threads, now and then a count the call must bring into range */
        int odd[] = {0, -3, NFL_MAX_THREADS + 7};
        int threads = rnd() % 16 ? 2 + (int)(rnd() % 4) : odd[rnd() % 3];
        for (size_t i = 0; i < n; i++) {
            /* a run of repeats now and then: the last write must win */
            keys[i] = i && rnd() % 8 == 0 ? keys[rnd() % i] : pool_key(kt, span);
            vals[i] = rnd();
        }
        switch (rnd() % 4) {
        case 0: { /* get, or a contains test */
            int with_values = (int)(rnd() % 2);
            nfl_get_many(a, keys, n, with_values ? va : NULL, fa);
            nfl_get_many_threads(b, keys, n, with_values ? vb : NULL, fb, threads);
            CHECK(memcmp(fa, fb, n) == 0, "get found flags (threads %d)", threads);
            CHECK(!with_values || memcmp(va, vb, n * 8) == 0, "get values (threads %d)", threads);
            break;
        }
        case 1:
        case 2: { /* upsert, insert or update */
            int mode = (int)(rnd() % 3);
            uint8_t *ea = rnd() % 4 ? fa : NULL, *eb = ea ? fb : NULL;
            CHECK(nfl_put_many(a, keys, vals, n, mode, ea) == NFL_OK, "put a");
            CHECK(nfl_put_many_threads(b, keys, vals, n, mode, eb, threads) == NFL_OK, "put b");
            CHECK(!ea || memcmp(fa, fb, n) == 0, "existed flags (mode %d, threads %d)", mode, threads);
            break;
        }
        default:
            nfl_delete_many(a, keys, n, fa);
            CHECK(nfl_delete_many_threads(b, keys, n, fb, threads) == NFL_OK, "delete b");
            CHECK(memcmp(fa, fb, n) == 0, "deleted flags (threads %d)", threads);
            break;
        }
        if (r % 8 == 7)
            check_same(a, b);
    }
    check_same(a, b);
    free(keys);
    free(vals);
    free(va);
    free(vb);
    free(fa);
    free(fb);
    nfl_free(a);
    nfl_free(b);
}

int main(int argc, char **argv)
{
    unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
    size_t max_batch = argc > 2 ? (size_t)atol(argv[2]) : 70000; /* > 2 write chunks */
    for (unsigned r = 0; r < rounds; r++)
        for (int kt = 0; kt < 3; kt++) {
            run(kt, (size_t)(rnd() % 50000), 600, 48);  /* small batches: slices of 64 */
            run(kt, (size_t)(rnd() % 100000), max_batch, 16);
        }
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("test_parallel: %u rounds passed\n", rounds);
    return 0;
}
