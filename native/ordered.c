/* ordered.c - ordered reads of the AFLI tree: range scans and the maximum.
 *
 * A model node's slots are in key order (the slot function is monotone in z
 * and z in the key), buckets and dense nodes are sorted, so an in-order walk
 * of the slots yields keys in ascending order.  Monotone also means that in
 * a node on a bound's path only the bound's own slot (the one its key
 * predicts) can hold keys on both sides of it: every slot before the upper
 * bound's holds keys below it, every slot after the lower bound's keys above
 * it.  So a walk finds the two slots once per node, walks the slots between
 * them with no per-key bound check, checks the bounds in those two slots
 * alone (or descends into the child there), and stops after the upper
 * bound's slot.  A child shared by adjacent slots is walked once.  A
 * descending read (NFL_REVERSE) is the mirror image.
 *
 * The slots are read 64 at a time: a first pass over them builds the masks
 * of the occupied slots and of those holding a bucket or child pointer
 * (four slots a step with SSE2 where the compiler has it), and prefetches
 * every pointer, so the window's bucket reads overlap instead of queueing
 * one cache miss behind the other (buckets are a tenth of the slots, and
 * their misses were most of a short scan's time).  The second pass copies
 * the window's entries and buckets with the output pointers in registers.
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "afli.h"

#define WINDOW 64 /* slots a mask covers */

typedef struct {
    uint64_t lo, hi;
    double zlo, zhi;
    int lo_exclusive, hi_inclusive;
    uint64_t *keys, *values; /* where the next entry goes */
    size_t room;             /* entries still wanted; the walk stops at 0 */
} range_walk;

static int above_lo(const range_walk *w, uint64_t key)
{
    return key > w->lo || (key == w->lo && !w->lo_exclusive);
}

static int below_hi(const range_walk *w, uint64_t key)
{
    return key < w->hi || (key == w->hi && w->hi_inclusive);
}

/* Copies the in-range part of a sorted run (ascending, or from its last
 * entry down when desc), checking the lower bound if check_lo and the upper
 * if check_hi; returns 1 when the walk has all it wants. */
static int emit_run(range_walk *w, const afli_entry *e, size_t n, int check_lo,
                    int check_hi, int desc)
{
    size_t i = 0;
    if (check_lo)
        while (i < n && !above_lo(w, e[i].key))
            i++;
    if (check_hi)
        while (n > i && !below_hi(w, e[n - 1].key))
            n--;
    size_t m = n - i;
    int full = m >= w->room;
    if (full)
        m = w->room;
    uint64_t *keys = w->keys, *values = w->values;
    if (desc)
        e += n - 1;
    else
        e += i;
    for (size_t j = 0; j < m; j++) {
        const afli_entry *x = desc ? e - j : e + j;
        keys[j] = x->key;
        values[j] = x->value;
    }
    w->keys = keys + m;
    w->values = values + m;
    w->room -= m;
    return full;
}

/* Prefetches the slots [from, to): a window's slots before the walk needs
 * them, so their misses overlap. */
static void prefetch_slots(const afli_node *nd, size_t from, size_t to)
{
    const char *p = (const char *)&nd->slots[from], *end = (const char *)&nd->slots[to];
    for (; p < end; p += 64)
        __builtin_prefetch(p);
}

/* The slots [from, to) (at most WINDOW) as two masks, bit i for slot from+i:
 * the occupied ones (returned; an empty slot is the mark with a zero word)
 * and, in *pointers, those holding a bucket or child, whose pointers it
 * prefetches.  The SSE2 steps compare four slots' 32-bit halves with (mark,
 * 0) at once, for slots past 0 (slot 0's mark differs): a slot's four
 * compare bits land 4 apart, and a multiply gathers bits 0, 4, 8, 12 into
 * bits 9..12 (no two partial products share a bit, so nothing carries). */
static uint64_t occupied(const afli_node *nd, size_t from, size_t to,
                         uint64_t *pointers)
{
    uint64_t occ = 0, ptr = 0;
    size_t pos = from;
#ifdef __SSE2__
    if (pos > 0) {
        const __m128i mark = _mm_set_epi64x(0, (long long)nd->lo); /* key: the mark, value: 0 */
        for (; pos + 4 <= to; pos += 4) {
            const __m128i *p = (const __m128i *)&nd->slots[pos];
            __m128i e0 = _mm_cmpeq_epi32(_mm_loadu_si128(p), mark);
            __m128i e1 = _mm_cmpeq_epi32(_mm_loadu_si128(p + 1), mark);
            __m128i e2 = _mm_cmpeq_epi32(_mm_loadu_si128(p + 2), mark);
            __m128i e3 = _mm_cmpeq_epi32(_mm_loadu_si128(p + 3), mark);
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_packs_epi16(_mm_packs_epi32(e0, e1),
                                                                     _mm_packs_epi32(e2, e3)));
            unsigned tagged = m & m >> 1, zero = m >> 2 & m >> 3; /* bit 4j: slot pos+j */
            unsigned o = ~(tagged & zero) & 0x1111u, q = tagged & ~zero & 0x1111u;
            occ |= (uint64_t)((o * 0x249u) >> 9 & 0xFu) << (pos - from);
            ptr |= (uint64_t)((q * 0x249u) >> 9 & 0xFu) << (pos - from);
        }
    }
#endif
    for (; pos < to; pos++) {
        const afli_slot *s = &nd->slots[pos];
        uint64_t tagged = s->key == afli_mark(nd, pos), filled = s->value != 0;
        occ |= ((tagged ^ 1) | filled) << (pos - from);
        ptr |= (tagged & filled) << (pos - from);
    }
    for (uint64_t p = ptr; p; p &= p - 1)
        __builtin_prefetch(afli_pointer(&nd->slots[from + (size_t)__builtin_ctzll(p)]));
    *pointers = ptr;
    return occ;
}

/* A dense node's part of the walk: on_lo / on_hi say whether the lower /
 * upper bound's path runs here. */
static int walk_dense(range_walk *w, const afli_node *nd, int on_lo, int on_hi,
                      int desc)
{
    size_t i = on_lo ? afli_lower_bound(nd->entries, nd->size, w->lo) : 0;
    size_t n = on_hi ? afli_lower_bound(nd->entries, nd->size, w->hi) : nd->size;
    if (n < nd->size && nd->entries[n].key == w->hi)
        n++; /* the bound itself, checked in emit_run */
    if (i > n)
        i = n;
    return emit_run(w, nd->entries + i, n - i, on_lo, on_hi, desc) ||
           (desc ? on_lo : on_hi);
}

static int walk_asc(range_walk *w, const afli_node *nd, int on_lo, int on_hi);
static int walk_desc(range_walk *w, const afli_node *nd, int on_lo, int on_hi);

/* The child at slot pos, or NULL if it holds none. */
static const afli_node *child_at_slot(const afli_node *nd, size_t pos)
{
    return afli_kind(nd, pos) == SLOT_CHILD ? afli_child_at(nd, pos) : NULL;
}

/* One occupied slot of a walk's window that walk_window does not copy
 * itself (a bucket, a child, a bound's slot): pos its index, pointer whether it
 * holds a bucket or child, lo_slot / hi_slot the slots whose keys need the
 * bound checks (SIZE_MAX: none), *last the child walked last.  A child is
 * on a bound's path if it is the one at that bound's slot (a child spans
 * adjacent slots: the walk may meet it before the upper bound's slot).
 * Returns 1 when the walk must stop. */
static int walk_slot(range_walk *w, const afli_node *nd, size_t pos,
                     int pointer, size_t lo_slot, size_t hi_slot,
                     const afli_node **last, int desc)
{
    const afli_slot *s = &nd->slots[pos];
    int check_lo = pos == lo_slot, check_hi = pos == hi_slot;
    if (!pointer)
        return emit_run(w, s, 1, check_lo, check_hi, desc);
    if ((s->value & SLOT_TAG_MASK) == SLOT_BUCKET) {
        const afli_bucket *b = afli_pointer(s);
        return emit_run(w, b->entries, b->count, check_lo, check_hi, desc);
    }
    const afli_node *child = afli_new_child(nd, pos, last);
    if (!child)
        return 0;
    int child_lo = lo_slot != SIZE_MAX && child == child_at_slot(nd, lo_slot);
    int child_hi = hi_slot != SIZE_MAX && child == child_at_slot(nd, hi_slot);
    return desc ? walk_desc(w, child, child_lo, child_hi)
                : walk_asc(w, child, child_lo, child_hi);
}

/* Walks the occupied slots of the window from base (masks of occupied), in
 * ascending order (descending if desc): an entry outside the bounds' slots
 * is copied here, with the output pointers in registers; any other slot
 * goes to walk_slot.  1 when the walk must stop. */
static int walk_window(range_walk *w, const afli_node *nd, size_t base,
                       uint64_t occ, uint64_t ptr, size_t lo_slot,
                       size_t hi_slot, const afli_node **last, int desc)
{
    uint64_t *keys = w->keys, *values = w->values;
    size_t room = w->room;
    while (occ) {
        size_t bit = desc ? (size_t)(63 - __builtin_clzll(occ)) : (size_t)__builtin_ctzll(occ);
        size_t pos = base + bit;
        int pointer = (int)(ptr >> bit & 1);
        occ &= ~((uint64_t)1 << bit);
        const afli_slot *s = &nd->slots[pos];
        if (pos != lo_slot && pos != hi_slot) {
            if (!pointer) {
                *keys++ = s->key;
                *values++ = s->value;
                if (--room == 0)
                    break;
                continue;
            }
            const afli_bucket *b = afli_pointer(s);
            size_t n;
            if ((s->value & SLOT_TAG_MASK) == SLOT_BUCKET && (n = b->count) < room) {
                for (size_t j = 0; j < n; j++) {
                    const afli_entry *e = &b->entries[desc ? n - 1 - j : j];
                    keys[j] = e->key;
                    values[j] = e->value;
                }
                keys += n, values += n, room -= n;
                continue;
            }
        }
        w->keys = keys, w->values = values, w->room = room;
        if (walk_slot(w, nd, pos, pointer, lo_slot, hi_slot, last, desc))
            return 1;
        keys = w->keys, values = w->values, room = w->room;
    }
    w->keys = keys, w->values = values, w->room = room;
    return room == 0;
}

/* Walks a subtree in ascending order; returns 1 when the walk must stop
 * (it has all it wants, or it passed the upper bound). */
static int walk_asc(range_walk *w, const afli_node *nd, int on_lo, int on_hi)
{
    if (nd->dense)
        return walk_dense(w, nd, on_lo, on_hi, 0);
    size_t first = on_lo ? afli_predict(nd, w->lo, w->zlo) : 0;
    size_t end = on_hi ? afli_predict(nd, w->hi, w->zhi) : nd->capacity - 1;
    if (first > end) /* lo above hi: an empty range */
        return 1;
    size_t lo_slot = on_lo ? first : SIZE_MAX, hi_slot = on_hi ? end : SIZE_MAX;
    const afli_node *last = NULL;
    end++;
    prefetch_slots(nd, first, end - first > WINDOW ? first + WINDOW : end);
    for (size_t base = first; base < end; base += WINDOW) {
        size_t next = end - base > WINDOW ? base + WINDOW : end; /* this window's end */
        prefetch_slots(nd, next, end - next > WINDOW ? next + WINDOW : end);
        uint64_t ptr, occ = occupied(nd, base, next, &ptr);
        if (walk_window(w, nd, base, occ, ptr, lo_slot, hi_slot, &last, 0))
            return 1;
    }
    return on_hi;
}

/* walk_asc in descending order: it stops when it passed the lower bound. */
static int walk_desc(range_walk *w, const afli_node *nd, int on_lo, int on_hi)
{
    if (nd->dense)
        return walk_dense(w, nd, on_lo, on_hi, 1);
    size_t top = on_hi ? afli_predict(nd, w->hi, w->zhi) : nd->capacity - 1;
    size_t first = on_lo ? afli_predict(nd, w->lo, w->zlo) : 0;
    if (first > top)
        return 1;
    size_t lo_slot = on_lo ? first : SIZE_MAX, hi_slot = on_hi ? top : SIZE_MAX;
    const afli_node *last = NULL;
    prefetch_slots(nd, top + 1 - first > WINDOW ? top + 1 - WINDOW : first, top + 1);
    for (size_t end = top + 1; end > first;) {
        size_t base = end - first > WINDOW ? end - WINDOW : first;
        prefetch_slots(nd, base - first > WINDOW ? base - WINDOW : first, base);
        uint64_t ptr, occ = occupied(nd, base, end, &ptr);
        if (walk_window(w, nd, base, occ, ptr, lo_slot, hi_slot, &last, 1))
            return 1;
        end = base;
    }
    return on_lo;
}

size_t afli_range(const afli_tree *t, uint64_t lo, uint64_t hi, int flags,
                  uint64_t *keys, uint64_t *values, size_t max)
{
    if (max == 0)
        return 0;
    int on_lo = !(flags & NFL_FROM_START), on_hi = !(flags & NFL_TO_END);
    range_walk w = {lo, hi, 0.0, 0.0, (flags & NFL_LO_EXCLUSIVE) != 0,
                    (flags & NFL_HI_INCLUSIVE) != 0, keys, values, max};
    if (on_lo)
        w.zlo = afli_z(t, lo);
    if (on_hi)
        w.zhi = afli_z(t, hi);
    if (flags & NFL_REVERSE)
        walk_desc(&w, t->root, on_lo, on_hi);
    else
        walk_asc(&w, t->root, on_lo, on_hi);
    return max - w.room;
}

/* The largest entry of a subtree; 0 if it holds none. */
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
