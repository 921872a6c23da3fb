/* enomem_insert.c - a failed insert must not lose another key (fuzzer finding).
 *
 * Seven keys fill the empty index's dense root; inserting 7 (below the
 * largest, 8) fills it and triggers a rebuild, whose first allocation fails
 * here.  The put may fail or succeed, but 8 must stay and the size must
 * agree with what is there.  Prints what it saw; exits 1 on a broken promise.
 * Linked with -Wl,--wrap=malloc (native/fuzz/build.py adds it).
 */
#include <stdio.h>
#include <stdlib.h>

#include "nfl.h"

void *__real_malloc(size_t size);
static int fail_next;

void *__wrap_malloc(size_t size)
{
    if (fail_next) {
        fail_next = 0;
        return NULL;
    }
    return __real_malloc(size);
}

int main(void)
{
    nfl_index *idx = nfl_create(NFL_KEY_UINT64, NULL, 0);
    uint64_t keys[] = {1, 2, 3, 4, 5, 6, 8}, v;
    for (int i = 0; i < 7; i++)
        nfl_put(idx, keys[i], keys[i], NFL_UPSERT);
    fail_next = 1;
    int rc = nfl_put(idx, 7, 7, NFL_UPSERT);
    int has7 = nfl_get(idx, 7, &v), has8 = nfl_get(idx, 8, &v);
    size_t size = nfl_size(idx);
    nfl_free(idx);
    printf("put(7) -> %d, size %zu, get(7) -> %d, get(8) -> %d\n", rc, size, has7, has8);
    int ok = has8 && size == 7u + (unsigned)has7 && (rc == 0) == (has7 == 1);
    return ok ? 0 : 1;
}
