/* test_check.c - afli_check catches a broken slot: every kind of tagged
 * slot a bulk load of clustered keys makes is corrupted in turn (a mark
 * tagged as an entry, an empty slot with a stray word, a bucket with a NULL
 * pointer, an entry moved to another slot, a node whose marks predict the
 * wrong slots), and the check must name it; restored, the tree checks clean.
 * Built and run under AddressSanitizer and UBSan by
 * tests/test_native_sanitized.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "index.h"

static int check_fails(nfl_index *idx, const char *what)
{
    char why[256];
    int broken = nfl_check(idx, why, sizeof why) != 0;
    CHECK(broken, "check missed %s", what);
    return broken;
}

/* The first slot of a model node of the given kind at or after from, or
 * capacity if none. */
static size_t find_kind(const afli_node *nd, int kind, size_t from)
{
    for (size_t pos = from; pos < nd->capacity; pos++)
        if (afli_kind(nd, pos) == kind)
            return pos;
    return nd->capacity;
}

/* A model node of the subtree holding an entry, an empty slot and a bucket
 * (past slot 0), or NULL. */
static afli_node *find_varied(afli_node *nd)
{
    if (nd->dense)
        return NULL;
    if (find_kind(nd, SLOT_ENTRY, 1) < nd->capacity &&
        find_kind(nd, SLOT_EMPTY, 1) < nd->capacity &&
        find_kind(nd, SLOT_BUCKET, 1) < nd->capacity)
        return nd;
    for (size_t pos = 0; pos < nd->capacity; pos++) {
        afli_node *found = afli_kind(nd, pos) == SLOT_CHILD ? find_varied(afli_child_at(nd, pos)) : NULL;
        if (found)
            return found;
    }
    return NULL;
}

int main(void)
{
    enum { N = 20000 };
    uint64_t *keys = malloc(N * sizeof *keys), *values = malloc(N * sizeof *values);
    for (size_t i = 0; i < N; i++) { /* clusters of 50 ids, dense at their start */
        keys[i] = (i / 50) * 1000003ull + (i % 50) * (i % 50) * 3 + rnd() % 2;
        values[i] = i;
    }
    nfl_index *idx = nfl_create(NFL_KEY_UINT64, NULL, 0);
    uint64_t dup;
    CHECK(idx && nfl_bulk_load(idx, keys, values, N, 4, &dup) == NFL_OK, "bulk load");
    char why[256];
    CHECK(nfl_check(idx, why, sizeof why) == 0, "fresh tree: %s", why);
    afli_node *root = find_varied(idx->tree.root); /* not the root: a node */
    CHECK(root, "clustered keys make a node of entries, empty slots and buckets");
    if (failures)
        return 1;
    size_t e = find_kind(root, SLOT_ENTRY, 1), m = find_kind(root, SLOT_EMPTY, 1);
    size_t b = find_kind(root, SLOT_BUCKET, 1);
    afli_slot saved;

    saved = root->slots[m]; /* a mark tagged SLOT_ENTRY: reads as an entry */
    root->slots[m].value = SLOT_ENTRY;
    check_fails(idx, "a mark tagged as an entry");
    root->slots[m] = saved;

    saved = root->slots[m]; /* an empty slot with a stray pointer word */
    root->slots[m].value = 0x1000;
    check_fails(idx, "an empty slot with a word");
    root->slots[m] = saved;

    saved = root->slots[b]; /* a bucket tag on no bucket */
    afli_set_tagged(root, b, NULL, SLOT_BUCKET);
    check_fails(idx, "a NULL bucket");
    root->slots[b] = saved;

    afli_slot held = root->slots[e], empty = root->slots[m]; /* an entry moved */
    root->slots[m] = held;
    afli_set_tagged(root, e, NULL, SLOT_EMPTY);
    check_fails(idx, "an entry in a slot it does not predict");
    root->slots[e] = held;
    root->slots[m] = empty;

    uint64_t lo = root->lo; /* marks that do not separate: lo past slot 0 */
    root->lo = root->hi;
    check_fails(idx, "marks predicting the wrong slots");
    root->lo = lo;

    CHECK(nfl_check(idx, why, sizeof why) == 0, "restored tree: %s", why);
    nfl_free(idx);
    free(keys);
    free(values);
    if (failures)
        return 1;
    printf("passed\n");
    return 0;
}
