/* ordered.c - ordered reads of the AFLI tree: range scans and the maximum.
 *
 * A model node's slots are in key order (the slot function is monotone in z
 * and z in the key), buckets and dense nodes are sorted, so an in-order walk
 * that starts at the lower bound's slot yields keys in ascending order.  Only
 * the nodes on the lower bound's path start past slot 0; every other node the
 * walk enters holds keys above the bound.  A child shared by adjacent slots is
 * walked once.  A descending read (NFL_REVERSE) is the mirror image: it starts
 * at the upper bound's slot and walks the slots downwards.
 */
#include <string.h>

#include "afli.h"

typedef struct {
    uint64_t lo, hi;
    double zlo, zhi;
    int check_lo;            /* ascending: nothing copied yet, keys below lo may
                                still come; descending: a lower bound applies */
    int check_hi;            /* ascending: an upper bound applies; descending:
                                nothing copied yet, keys above hi may still come */
    int lo_exclusive, hi_inclusive;
    uint64_t *keys, *values; /* where the next entry goes */
    size_t room;             /* entries still wanted; the walk stops at 0 */
} range_walk;

/* How many entries of a sorted run lie below the lower bound. */
static size_t count_below_lo(const range_walk *w, const afli_entry *e, size_t n)
{
    size_t i = 0;
    while (i < n && (e[i].key < w->lo || (e[i].key == w->lo && w->lo_exclusive)))
        i++;
    return i;
}

/* How many entries of a sorted run lie below the upper bound. */
static size_t count_below_hi(const range_walk *w, const afli_entry *e, size_t n)
{
    size_t i = 0;
    while (i < n && (e[i].key < w->hi || (e[i].key == w->hi && w->hi_inclusive)))
        i++;
    return i;
}

/* Copies the in-range part of a sorted run; returns 1 when the walk must stop.
 * The walk meets keys in ascending order, so once one entry is copied no
 * later one can be below lo: the lower bound is checked only until then. */
static int emit_run(range_walk *w, const afli_entry *e, size_t n)
{
    if (w->check_lo) {
        size_t skip = count_below_lo(w, e, n);
        e += skip;
        n -= skip;
        if (n == 0)
            return 0;
        w->check_lo = 0;
    }
    int stop = 0;
    if (w->check_hi) {
        size_t below = count_below_hi(w, e, n);
        stop = below < n;
        n = below;
    }
    if (n >= w->room) {
        n = w->room;
        stop = 1;
    }
    uint64_t *keys = w->keys, *values = w->values;
    for (size_t i = 0; i < n; i++) {
        keys[i] = e[i].key;
        values[i] = e[i].value;
    }
    w->keys = keys + n;
    w->values = values + n;
    w->room -= n;
    return stop;
}

/* emit_run of a single entry, the commonest slot, without bound checks once
 * none apply (a scan past its first entry). */
static inline int emit_one(range_walk *w, const afli_entry *e)
{
    if (__builtin_expect(w->check_lo | w->check_hi, 0))
        return emit_run(w, e, 1);
    *w->keys++ = e->key;
    *w->values++ = e->value;
    return --w->room == 0;
}

/* Buckets up to this many entries are copied by a jump on their count: the
 * cases of emit_bucket's switch, one per bucket size. */
#define JUMP_COPY_MAX 6
#if NFL_MAX_BUCKET > JUMP_COPY_MAX
#error "emit_bucket's cases must cover every bucket size"
#endif

/* emit_run of a bucket that fits with no bound to check: one jump on its
 * count, cheaper than a copy loop whose exit the branch predictor misses. */
static inline int emit_bucket(range_walk *w, const afli_bucket *b)
{
    size_t n = b->count;
    const afli_entry *e = b->entries;
    if (__builtin_expect(w->check_lo | w->check_hi, 0) || n >= w->room || n > JUMP_COPY_MAX)
        return emit_run(w, e, n);
    uint64_t *k = w->keys, *v = w->values;
    switch (n) {
    case 6: k[5] = e[5].key; v[5] = e[5].value; /* fall through */
    case 5: k[4] = e[4].key; v[4] = e[4].value; /* fall through */
    case 4: k[3] = e[3].key; v[3] = e[3].value; /* fall through */
    case 3: k[2] = e[2].key; v[2] = e[2].value; /* fall through */
    case 2: k[1] = e[1].key; v[1] = e[1].value; /* fall through */
    case 1: k[0] = e[0].key; v[0] = e[0].value; /* fall through */
    default: break;
    }
    w->keys = k + n;
    w->values = v + n;
    w->room -= n;
    return 0;
}

/* The occupied slots among the `width` (8 or 64) from base: bit i for slot
 * base+i, so the walk's loop runs over occupied slots only (an empty slot
 * is the mark with a zero word). */
static uint64_t occupied(const afli_node *nd, size_t base, size_t width)
{
    uint64_t mask = 0;
    size_t end = base + width < nd->capacity ? base + width : nd->capacity;
    for (size_t pos = base; pos < end; pos++) {
        const afli_slot *s = &nd->slots[pos];
        mask |= (uint64_t)(s->value != 0 || s->key != afli_mark(nd, pos)) << (pos - base);
    }
    return mask;
}

/* Walks a subtree; on_bound says whether the lower bound's path runs here.
 * The first window is 8 slots (a lower_bound needs no more), then 64. */
static int walk(range_walk *w, const afli_node *nd, int on_bound)
{
    if (nd->dense) {
        size_t i = 0;
        if (on_bound)
            i = afli_lower_bound(nd->entries, nd->size, w->lo);
        return emit_run(w, nd->entries + i, nd->size - i);
    }
    size_t start = on_bound ? afli_predict(nd, w->lo, w->zlo) : 0;
    const afli_node *last = NULL, *child;
    for (size_t base = start, width = 8; base < nd->capacity; base += width, width = 64) {
        for (uint64_t occ = occupied(nd, base, width); occ; occ &= occ - 1) {
            size_t pos = base + (size_t)__builtin_ctzll(occ);
            const afli_slot *s = &nd->slots[pos];
            int kind = afli_kind(nd, pos), stop = 0;
            if (kind == SLOT_ENTRY)
                stop = emit_one(w, s);
            else if (kind == SLOT_BUCKET)
                stop = emit_bucket(w, afli_pointer(s));
            else if ((child = afli_new_child(nd, pos, &last)))
                stop = walk(w, child, on_bound && pos == start);
            if (stop)
                return 1;
        }
    }
    return 0;
}

/* emit_run in descending order: copies the in-range part of a sorted run from
 * its last entry down; returns 1 when the walk must stop.  The walk meets keys
 * in descending order, so the upper bound is checked only until one entry is
 * copied, the lower bound always. */
static int emit_run_desc(range_walk *w, const afli_entry *e, size_t n)
{
    if (w->check_hi) {
        n = count_below_hi(w, e, n);
        if (n == 0)
            return 0;
        w->check_hi = 0;
    }
    int stop = 0;
    size_t below = 0;
    if (w->check_lo) {
        below = count_below_lo(w, e, n);
        stop = below > 0;
    }
    size_t m = n - below;
    if (m >= w->room) {
        m = w->room;
        stop = 1;
    }
    uint64_t *keys = w->keys, *values = w->values;
    for (size_t i = 0; i < m; i++) {
        keys[i] = e[n - 1 - i].key;
        values[i] = e[n - 1 - i].value;
    }
    w->keys = keys + m;
    w->values = values + m;
    w->room -= m;
    return stop;
}

/* walk in descending order; on_bound says whether the upper bound's path
 * runs here. */
static int walk_desc(range_walk *w, const afli_node *nd, int on_bound)
{
    if (nd->dense) {
        size_t n = nd->size;
        if (on_bound) {
            n = afli_lower_bound(nd->entries, nd->size, w->hi);
            if (n < nd->size && nd->entries[n].key == w->hi && w->hi_inclusive)
                n++;
        }
        return emit_run_desc(w, nd->entries, n);
    }
    size_t start = on_bound ? afli_predict(nd, w->hi, w->zhi) : nd->capacity - 1;
    const afli_node *last_child = NULL;
    for (size_t pos = start + 1; pos-- > 0;) {
        const afli_slot *s = &nd->slots[pos];
        int stop = 0;
        const afli_bucket *b = afli_pointer(s);
        switch (afli_kind(nd, pos)) {
        case SLOT_ENTRY:
            stop = emit_run_desc(w, s, 1);
            break;
        case SLOT_BUCKET:
            stop = emit_run_desc(w, b->entries, b->count);
            break;
        case SLOT_CHILD:
            if (afli_child_at(nd, pos) != last_child) { /* a child spans its slots */
                last_child = afli_child_at(nd, pos);
                stop = walk_desc(w, last_child, on_bound && pos == start);
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
    int from_start = (flags & NFL_FROM_START) != 0;
    int to_end = (flags & NFL_TO_END) != 0;
    range_walk w = {lo, hi, 0.0, 0.0, !from_start, !to_end,
                    (flags & NFL_LO_EXCLUSIVE) != 0,
                    (flags & NFL_HI_INCLUSIVE) != 0, keys, values, max};
    if (flags & NFL_REVERSE) {
        if (!to_end)
            w.zhi = afli_z(t, hi);
        walk_desc(&w, t->root, !to_end);
    } else {
        if (!from_start)
            w.zlo = afli_z(t, lo);
        walk(&w, t->root, !from_start);
    }
    return max - w.room;
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
        const afli_bucket *b = afli_pointer(s);
        switch (afli_kind(nd, pos)) {
        case SLOT_ENTRY:
            *out = *s;
            return 1;
        case SLOT_BUCKET:
            *out = b->entries[b->count - 1];
            return 1;
        case SLOT_CHILD:
            if (max_of(afli_child_at(nd, pos), out))
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
