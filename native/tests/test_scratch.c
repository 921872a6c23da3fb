/* test_scratch.c - scratch.c's kept block: reuse, the larger of two kept, the
 * size bound, overflow, threads that never share a block, and the huge-page
 * hint on a fresh block (read back from /proc/self/smaps).  Run under
 * ASan/UBSan by tests/test_scratch.py.  With the argument "poisoned" it
 * writes into a block after giving it back, which ASan must report. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "scratch.h"

#define THREADS 4
#define ROUNDS 20000

static void test_reuse_and_bounds(void)
{
    scratch_give(scratch_take(0), 1); /* whatever an earlier call kept */
    void *a = scratch_take(scratch_kept() + 1000);
    size_t a_bytes = scratch_kept() + 1000;
    CHECK(a != NULL && scratch_kept() == 0, "a fresh block; none kept while it is out");
    CHECK(((uintptr_t)a & 15) == 0, "16-byte aligned");
    memset(a, 1, a_bytes);
    scratch_give(a, 1);
    CHECK(scratch_kept() == a_bytes, "the given block is kept");
    void *b = scratch_take(a_bytes / 2);
    CHECK(b == a, "a block that fits is reused");
    memset(b, 2, a_bytes); /* all of it is the taker's again */
    void *c = scratch_take(2 * a_bytes);
    CHECK(c != NULL && c != b, "a second block while the first is out");
    memset(c, 3, 2 * a_bytes);
    scratch_give(b, 1);
    scratch_give(c, 1);
    CHECK(scratch_kept() == 2 * a_bytes, "of two given back, the larger is kept");
    void *d = scratch_take(4 * a_bytes); /* the kept one is too small: freed */
    CHECK(d != NULL && scratch_kept() == 0, "a block too small is not kept aside");
    memset(d, 4, 4 * a_bytes);
    scratch_give(d, 1);
    CHECK(scratch_kept() == 4 * a_bytes, "kept");

    void *one = scratch_take(16); /* the kept block: it fits */
    CHECK(scratch_kept() == 0, "a small take reuses the kept block");
    scratch_give(one, 0);
    CHECK(scratch_kept() == 0, "a block given without keep is freed, not kept");
    void *big = scratch_take(SCRATCH_KEEP + 1);
    CHECK(big != NULL, "a block larger than SCRATCH_KEEP");
    scratch_give(big, 1);
    CHECK(scratch_kept() == 0, "a block larger than SCRATCH_KEEP is freed, not kept");
    scratch_give(scratch_take(100), 1);
    CHECK(scratch_take(SIZE_MAX - 8) == NULL, "a size that overflows is refused");
    CHECK(scratch_kept() == 0, "... and the kept block was freed for it");
}

static void *churn(void *arg)
{
    uint8_t tag = (uint8_t)(uintptr_t)arg;
    uint64_t s = 0x9E3779B97F4A7C15ull * (tag + 1);
    for (int i = 0; i < ROUNDS; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t bytes = 1 + s % 8192;
        uint8_t *p = scratch_take(bytes);
        if (!p) {
            CHECK(0, "scratch_take failed");
            return NULL;
        }
        memset(p, tag, bytes);
        for (size_t k = 0; k < bytes; k += 61) /* another thread's writes show */
            if (p[k] != tag) {
                CHECK(0, "a block handed to two threads at once");
                break;
            }
        scratch_give(p, 1);
    }
    return NULL;
}

/* 1 if the mapping holding p has the huge-page hint (VmFlags "hg"), 0 if not,
 * -1 if /proc/self/smaps cannot say. */
static int hinted_huge(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int inside = 0, found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            inside = lo <= (uintptr_t)p && (uintptr_t)p < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0)
            found = strstr(line, " hg") != NULL;
    }
    fclose(f);
    return found;
}

static void test_huge_hint(void)
{
#ifdef MADV_HUGEPAGE
    scratch_give(scratch_take(0), 0); /* nothing kept: the next take is fresh */
    size_t bytes = (size_t)16 << 20;
    char *p = scratch_take(bytes);
    CHECK(p != NULL, "a 16 MiB block");
    CHECK(hinted_huge(p + bytes / 2) == 1, "a fresh block's inner 2 MiB pages are hinted huge");
    scratch_give(p, 0);
#endif
}

static void test_threads(void)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "poisoned") == 0) {
        char *p = scratch_take(100);
        scratch_give(p, 1);
        p[10] = 1; /* the kept block is not the caller's any more */
        printf("not caught\n");
        return 0;
    }
    test_reuse_and_bounds();
    test_huge_hint();
    test_threads();
    if (failures)
        return 1;
    printf("passed\n");
    return 0;
}
