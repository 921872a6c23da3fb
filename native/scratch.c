/* scratch.c - large temporaries, one kept from a call to the next (see
 * scratch.h). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "scratch.h"

#if defined(__SANITIZE_ADDRESS__)
#define SCRATCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCRATCH_ASAN 1
#endif
#endif
#ifdef SCRATCH_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A block: this header, then the caller's bytes. */
typedef struct {
    size_t bytes; /* the caller's bytes this block holds */
    size_t pad;   /* keeps the caller's bytes 16-byte aligned */
} block;

static block *kept; /* the one kept block, payload poisoned; swapped atomically */
static int at_exit_set;

static block *swap_kept(block *b)
{
    return __atomic_exchange_n(&kept, b, __ATOMIC_ACQ_REL);
}

static void drop(block *b)
{
    if (b) {
        UNPOISON(b + 1, b->bytes);
        free(b);
    }
}

static void drop_kept(void)
{
    drop(swap_kept(NULL));
}

void *scratch_take(size_t bytes)
{
    block *b = swap_kept(NULL);
    if (b && b->bytes >= bytes) {
        UNPOISON(b + 1, b->bytes);
        return b + 1;
    }
    drop(b);
    if (bytes > SIZE_MAX - sizeof(block))
        return NULL;
    b = malloc(sizeof(block) + bytes);
    if (!b)
        return NULL;
    b->bytes = bytes;
    scratch_advise_huge(b + 1, bytes); /* the caller writes all of it */
    return b + 1;
}

void scratch_give(void *p, int keep)
{
    if (!p)
        return;
    block *b = (block *)p - 1;
    if (!keep || b->bytes > SCRATCH_KEEP) {
        free(b);
        return;
    }
    if (!__atomic_exchange_n(&at_exit_set, 1, __ATOMIC_ACQ_REL))
        atexit(drop_kept);
    POISON(b + 1, b->bytes);
    block *other = swap_kept(NULL);
    if (other && other->bytes > b->bytes) { /* keep the larger */
        block *t = b;
        b = other;
        other = t;
    }
    drop(other);
    drop(swap_kept(b));
}

size_t scratch_kept(void)
{
    block *b = swap_kept(NULL);
    size_t bytes = b ? b->bytes : 0;
    if (b)
        drop(swap_kept(b)); /* put back; another thread's block, if any, freed */
    return bytes;
}

#define HUGE_PAGE ((uintptr_t)2 << 20)

void scratch_advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (!p || bytes < 2 * HUGE_PAGE)
        return;
    uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + bytes) & ~(HUGE_PAGE - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}
