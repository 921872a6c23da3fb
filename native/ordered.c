/* ordered.c - ordered reads of the AFLI tree: range scans and the maximum.
 *
 * A model node's slots are in key order (the slot function is monotone in z
 * and z in the key), buckets and dense nodes are sorted, so an in-order walk
 * that starts at the lower bound's slot yields keys in ascending order.  Only
 * the nodes on the lower bound's path start past slot 0; every other node the
 * walk enters holds keys above the bound.  A child shared by adjacent slots is
 * walked once.
 */
#include <string.h>

#include "afli.h"

/* Slots ahead of the walk whose bucket or child is prefetched. */
#define LOOKAHEAD 6

typedef struct {
    uint64_t lo, hi;
    double zlo;
    int flags;
    uint64_t *keys, *values;
    size_t max, count;
} range_walk;

/* Emits one entry if it is in range; returns 1 when the walk must stop. */
static int emit(range_walk *w, const afli_entry *e)
{
    if (!(w->flags & NFL_FROM_START) &&
        (e->key < w->lo || (e->key == w->lo && (w->flags & NFL_LO_EXCLUSIVE))))
        return 0;
    if (!(w->flags & NFL_TO_END) && e->key >= w->hi)
        return 1;
    w->keys[w->count] = e->key;
    w->values[w->count] = e->value;
    return ++w->count == w->max;
}

static int emit_run(range_walk *w, const afli_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (emit(w, &e[i]))
            return 1;
    return 0;
}

/* The first occupied slot at or after pos (eight empty slots at a time). */
static size_t skip_empty(const afli_node *nd, size_t pos)
{
    uint64_t word;
    while (pos + 8 <= nd->capacity) {
        memcpy(&word, nd->kinds + pos, sizeof word);
        if (word)
            break;
        pos += 8;
    }
    while (pos < nd->capacity && nd->kinds[pos] == SLOT_EMPTY)
        pos++;
    return pos;
}

/* Walks a subtree; on_bound says whether the lower bound's path runs here. */
static int walk(range_walk *w, const afli_node *nd, int on_bound)
{
    if (nd->dense) {
        size_t i = 0;
        if (on_bound)
            i = afli_lower_bound(nd->entries, nd->size, w->lo);
        return emit_run(w, nd->entries + i, nd->size - i);
    }
    size_t start = on_bound ? afli_predict(nd, w->zlo) : 0;
    const afli_node *last_child = NULL;
    for (size_t pos = skip_empty(nd, start); pos < nd->capacity;
         pos = skip_empty(nd, pos + 1)) {
        const afli_slot *s = &nd->slots[pos];
        if (pos + LOOKAHEAD < nd->capacity &&
            nd->kinds[pos + LOOKAHEAD] >= SLOT_BUCKET) /* overlap its miss */
            __builtin_prefetch(nd->slots[pos + LOOKAHEAD].bucket, 0, 3);
        int stop = 0;
        switch (nd->kinds[pos]) {
        case SLOT_ENTRY:
            stop = emit(w, &s->entry);
            break;
        case SLOT_BUCKET:
            stop = emit_run(w, s->bucket->entries, s->bucket->count);
            break;
        case SLOT_CHILD:
            if (s->child != last_child) {
                last_child = s->child;
                stop = walk(w, s->child, on_bound && pos == start);
            }
            break;
        }
        if (stop)
            return 1;
    }
    return 0;
}

size_t afli_range(const afli_tree *t, uint64_t lo, uint64_t hi, int flags,
                  uint64_t *keys, uint64_t *values, size_t max)
{
    if (max == 0)
        return 0;
    range_walk w = {lo, hi, 0.0, flags, keys, values, max, 0};
    int from_start = (flags & NFL_FROM_START) != 0;
    if (!from_start)
        w.zlo = afli_z(t, lo);
    walk(&w, t->root, !from_start);
    return w.count;
}

static int max_of(const afli_node *nd, afli_entry *out)
{
    if (nd->dense) {
        if (nd->size == 0)
            return 0;
        *out = nd->entries[nd->size - 1];
        return 1;
    }
    for (size_t pos = nd->capacity; pos-- > 0;) {
        const afli_slot *s = &nd->slots[pos];
        switch (nd->kinds[pos]) {
        case SLOT_ENTRY:
            *out = s->entry;
            return 1;
        case SLOT_BUCKET:
            *out = s->bucket->entries[s->bucket->count - 1];
            return 1;
        case SLOT_CHILD:
            if (max_of(s->child, out))
                return 1;
            break;
        }
    }
    return 0;
}

int afli_max(const afli_tree *t, afli_entry *out)
{
    return max_of(t->root, out);
}
