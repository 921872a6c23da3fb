/* test_core.c - the C core alone against a sorted-array reference.
 *
 * Random op sequences (bulk load, upsert/insert/update, get, delete, batch
 * ops, range scans, max) over key sets that stress the tree: clustered keys,
 * consecutive integers near 2^53 and 2^63 (ties after conversion to double),
 * the key type's extremes, negative and tiny floats, dense runs of ids all
 * over the 64-bit range, keys across many magnitudes, inserts past either
 * end (descending, ascending), with and without a flow that is flat past
 * [0, 1e4] (so most keys share one clamped z).  Built and run under
 * AddressSanitizer and UBSan by tests/test_native_sanitized.py.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfl.h"
#include "harness.h"

/* ---- reference: sorted array of (encoded key, raw key, value) ---------- */
typedef struct { uint64_t enc, raw, value; } ref_entry;
typedef struct { ref_entry *e; size_t n, cap; int key_type; } ref_map;

static uint64_t enc1(int kt, uint64_t raw)
{
    uint64_t e;
    nfl_encode(kt, &raw, &e, 1);
    return e;
}

static size_t ref_lb(const ref_map *m, uint64_t enc)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->e[mid].enc < enc) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static ref_entry *ref_find(ref_map *m, uint64_t raw)
{
    uint64_t enc = enc1(m->key_type, raw);
    size_t i = ref_lb(m, enc);
    return i < m->n && m->e[i].enc == enc ? &m->e[i] : NULL;
}

/* Returns 1 if the key existed (semantics of nfl_put). */
static int ref_put(ref_map *m, uint64_t raw, uint64_t value, int mode)
{
    ref_entry *f = ref_find(m, raw);
    if (f) {
        if (mode != NFL_INSERT) f->value = value;
        return 1;
    }
    if (mode == NFL_UPDATE) return 0;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->e = realloc(m->e, m->cap * sizeof *m->e);
    }
    uint64_t enc = enc1(m->key_type, raw);
    size_t i = ref_lb(m, enc);
    memmove(m->e + i + 1, m->e + i, (m->n - i) * sizeof *m->e);
    uint64_t canon;
    nfl_decode(m->key_type, &enc, &canon, 1);
    m->e[i] = (ref_entry){enc, canon, value};
    m->n++;
    return 0;
}

static int ref_delete(ref_map *m, uint64_t raw)
{
    ref_entry *f = ref_find(m, raw);
    if (!f) return 0;
    size_t i = (size_t)(f - m->e);
    memmove(m->e + i, m->e + i + 1, (m->n - i - 1) * sizeof *m->e);
    m->n--;
    return 1;
}

/* ---- key generators -------------------------------------------------------- */
static uint64_t from_double(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

/* A raw key of the given type drawn from one of several hard patterns. */
static uint64_t gen_key(int kt, int pattern)
{
    uint64_t r = rnd();
    switch (pattern) {
    case 0: /* uniform over the whole type */
        if (kt == NFL_KEY_FLOAT64) {
            double d = (double)(int64_t)r * ldexp(1.0, (int)(rnd() % 200) - 100);
            return from_double(d);
        }
        return r;
    case 1: /* consecutive integers near 2^53 / 2^63 / the top (ties in z) */
        if (kt == NFL_KEY_UINT64) {
            uint64_t bases[] = {0, 1ull << 53, 1ull << 63, UINT64_MAX - 5000};
            return bases[r % 4] + (rnd() % 5000);
        } else if (kt == NFL_KEY_INT64) {
            int64_t bases[] = {-2500, (int64_t)1 << 53, INT64_MAX - 5000, INT64_MIN};
            return (uint64_t)(bases[r % 4] + (int64_t)(rnd() % 5000));
        } else {
            double bases[] = {0.0, 1e-300, -1.0, 9007199254740992.0};
            double b = bases[r % 4];
            double d = b;
            for (uint64_t k = rnd() % 50; k > 0; k--) d = nextafter(d, INFINITY);
            return from_double(d);
        }
    case 2: /* clustered: dense clusters of very different widths */
        {
            uint64_t c = r % 8;
            uint64_t width = 1ull << (c * 7);
            uint64_t base = c * (1ull << 58);
            uint64_t k = base + rnd() % (width ? width : 1);
            if (kt == NFL_KEY_FLOAT64) return from_double((double)k * 1e-10 - 3e7);
            if (kt == NFL_KEY_INT64) return k - (1ull << 61);
            return k;
        }
    case 4: /* dense runs: consecutive ids at 64 bases spread over the range */
        {
            uint64_t base = (r % 64) * 0x9E3779B97F4A7C15ull;
            uint64_t k = base + rnd() % 300;
            if (kt == NFL_KEY_FLOAT64) return from_double((double)(int64_t)k);
            return k;
        }
    case 5: /* many magnitudes */
        if (kt == NFL_KEY_FLOAT64) {
            double d = ldexp(1.0 + (double)(rnd() % 1024) / 1024.0, (int)(r % 2000) - 1000);
            return from_double(rnd() % 2 ? d : -d);
        }
        return (1ull << (r % 64)) + rnd() % 16;
    default: /* extremes and specials */
        {
            if (kt == NFL_KEY_FLOAT64) {
                double sp[] = {0.0, -0.0, INFINITY, -INFINITY, 5e-324, -5e-324,
                               1.7976931348623157e308, -1.7976931348623157e308, 1.0, -1.0};
                return from_double(sp[r % 10]);
            }
            uint64_t sp[] = {0, 1, 2, UINT64_MAX, UINT64_MAX - 1, 1ull << 63,
                             (1ull << 63) - 1, (1ull << 63) + 1, 1ull << 53, (1ull << 53) + 1};
            return sp[r % 10];
        }
    }
}

/* ---- checks ---------------------------------------------------------------- */
static void check_all(nfl_index *idx, ref_map *m)
{
    CHECK(nfl_size(idx) == m->n, "size %zu != %zu", nfl_size(idx), m->n);
    size_t n = m->n;
    uint64_t *keys = malloc((n + 1) * 8), *vals = malloc((n + 1) * 8);
    size_t got = nfl_range(idx, 0, 0, NFL_FROM_START | NFL_TO_END, keys, vals, n + 1);
    CHECK(got == n, "full scan %zu != %zu", got, n);
    for (size_t i = 0; i < got && i < n; i++)
        CHECK(keys[i] == m->e[i].raw && vals[i] == m->e[i].value,
              "scan item %zu differs", i);
    uint64_t k, v;
    int has = nfl_max(idx, &k, &v);
    CHECK(has == (n > 0), "max presence");
    if (has && n) CHECK(k == m->e[n - 1].raw && v == m->e[n - 1].value, "max value");
    char why[NFL_CHECK_MESSAGE];
    CHECK(nfl_check(idx, why, sizeof why) == 0, "tree invariants: %s", why);
    free(keys);
    free(vals);
}

static void check_range(nfl_index *idx, ref_map *m, uint64_t lo, uint64_t hi, int flags, size_t max)
{
    uint64_t keys[64], vals[64];
    if (max > 64) max = 64;
    size_t got = nfl_range(idx, lo, hi, flags, keys, vals, max);
    uint64_t elo = enc1(m->key_type, lo), ehi = enc1(m->key_type, hi);
    size_t a = (flags & NFL_FROM_START) ? 0 : ref_lb(m, elo);
    if (!(flags & NFL_FROM_START) && (flags & NFL_LO_EXCLUSIVE) && a < m->n && m->e[a].enc == elo) a++;
    size_t b = (flags & NFL_TO_END) ? m->n : ref_lb(m, ehi);
    if (!(flags & NFL_TO_END) && (flags & NFL_HI_INCLUSIVE) && b < m->n && m->e[b].enc == ehi) b++;
    size_t expect = b > a ? b - a : 0;
    if (expect > max) expect = max;
    for (size_t j = 0; j < expect && j < got; j++) {
        size_t i = (flags & NFL_REVERSE) ? b - 1 - j : a + j;
        CHECK(keys[j] == m->e[i].raw && vals[j] == m->e[i].value, "range item %zu (flags %d)", j, flags);
    }
    CHECK(got == expect, "range count %zu != %zu (flags %d)", got, expect, flags);
}

/* A key next to the one at e (step -1, 0 or +1 in code order; the key itself
 * at either end of the codes or where the neighbour is a NaN code). */
static uint64_t key_beside(const ref_map *m, const ref_entry *e, int step)
{
    uint64_t enc = e->enc + (uint64_t)(int64_t)step, raw = 0;
    if ((step < 0 && enc > e->enc) || (step > 0 && enc < e->enc))
        return e->raw;
    nfl_decode(m->key_type, &enc, &raw, 1);
    double number;
    memcpy(&number, &raw, sizeof number);
    return m->key_type == NFL_KEY_FLOAT64 && isnan(number) ? e->raw : raw;
}

/* Ranges whose bounds are the index's own keys or their neighbours, so that
 * the bounds fall on every kind of slot (entry, bucket, child, the ends of a
 * child's run), spanning up to 80 keys either way (a negative span: lo above
 * hi), with every flag and short and long reads. */
static void check_ranges_at_keys(nfl_index *idx, ref_map *m)
{
    if (m->n == 0)
        return;
    for (int t = 0; t < 150; t++) {
        size_t i = rnd() % m->n, j = i + rnd() % 80;
        if (rnd() % 8 == 0)
            j = i >= 3 ? i - 3 : 0;
        if (j >= m->n)
            j = m->n - 1;
        uint64_t lo = key_beside(m, &m->e[i], (int)(rnd() % 3) - 1);
        uint64_t hi = key_beside(m, &m->e[j], (int)(rnd() % 3) - 1);
        for (int flags = 0; flags < 32; flags++)
            check_range(idx, m, lo, hi, flags, flags % 3 ? 64 : 1 + rnd() % 8);
    }
}

/* A flow that is linear on [0, 1e4] and flat outside it. */
static const double FLAT_FLOW[] = {1313229894.0, 1, 1, 0, 1e-4, 0.0, 2, 0.0, 0.5, 1.0, 1.0, 3.0};
#define FLAT_FLOW_N (sizeof FLAT_FLOW / sizeof FLAT_FLOW[0])

static nfl_index *make_index(int kt, int with_flow)
{
    return with_flow ? nfl_create(kt, FLAT_FLOW, FLAT_FLOW_N) : nfl_create(kt, NULL, 0);
}

/* Inserts n keys past one end of the index, one at a time, in one direction;
 * checks the whole contents after each quarter. */
static void insert_beyond(nfl_index *idx, ref_map *m, int above, int ascending, size_t n)
{
    int kt = m->key_type;
    uint64_t edge = m->n ? m->e[above ? m->n - 1 : 0].enc : (1ull << 63);
    for (size_t i = 1; i <= n; i++) {
        size_t d = ascending == above ? i : n + 1 - i;
        uint64_t enc = above ? edge + 7 * d : edge - 7 * d;
        if (above ? enc <= edge : enc >= edge)
            continue; /* past the end of the codes */
        uint64_t raw = 0;
        nfl_decode(kt, &enc, &raw, 1);
        double number;
        memcpy(&number, &raw, sizeof number);
        if (kt == NFL_KEY_FLOAT64 && isnan(number))
            continue;
        int was = ref_put(m, raw, i, NFL_UPSERT);
        CHECK(nfl_put(idx, raw, i, NFL_UPSERT) == was, "insert beyond");
        if (i % (n / 4 + 1) == 0)
            check_all(idx, m);
    }
    check_all(idx, m);
}

static void run_sequence(int kt, int pattern, int bucket, unsigned ops, size_t load,
                         int with_flow)
{
    ref_map m = {NULL, 0, 0, kt};
    nfl_index *idx = make_index(kt, with_flow);
    CHECK(idx != NULL, "create");
    /* bulk load `load` distinct keys */
    uint64_t *lk = malloc((load + 1) * 8), *lv = malloc((load + 1) * 8);
    size_t nl = 0;
    for (size_t i = 0; i < load; i++) {
        uint64_t k = gen_key(kt, pattern);
        if (ref_put(&m, k, i, NFL_INSERT) == 0) {
            lk[nl] = k; lv[nl] = i; nl++;
        }
    }
    uint64_t dup;
    CHECK(nfl_bulk_load(idx, lk, lv, nl, bucket, &dup) == NFL_OK, "bulk load");
    check_all(idx, &m);
    check_ranges_at_keys(idx, &m);
    if (nl > 1) { /* a duplicate is refused and leaves the index empty */
        lk[nl] = lk[0];
        nfl_index *d = make_index(kt, with_flow);
        CHECK(nfl_bulk_load(d, lk, lv, nl + 1, bucket, &dup) == NFL_EDUPLICATE, "dup");
        CHECK(nfl_size(d) == 0, "dup leaves empty");
        nfl_free(d);
    }
    for (unsigned op = 0; op < ops; op++) {
        uint64_t k = rnd() % 3 == 0 && m.n ? m.e[rnd() % m.n].raw : gen_key(kt, (rnd() % 5 == 0) ? 3 : pattern);
        uint64_t v = rnd(), got;
        switch (rnd() % 8) {
        case 0: case 1: {
            int mode = (int)(rnd() % 3);
            int e = ref_put(&m, k, v, mode);
            CHECK(nfl_put(idx, k, v, mode) == e, "put mode %d", mode);
            break;
        }
        case 2: case 3:
            CHECK(nfl_delete(idx, k) == ref_delete(&m, k), "delete");
            break;
        case 4: {
            ref_entry *f = ref_find(&m, k);
            int found = nfl_get(idx, k, &got);
            CHECK(found == (f != NULL), "get presence");
            if (found && f) CHECK(got == f->value, "get value");
            break;
        }
        case 5: {
            uint64_t hi = gen_key(kt, pattern);
            check_range(idx, &m, k, hi, (int)(rnd() % 32), 1 + rnd() % 64);
            break;
        }
        case 6: { /* batches */
            uint64_t bk[40], bv[40], out[40];
            uint8_t flag[40], flag2[40];
            size_t bn = rnd() % 40;
            for (size_t i = 0; i < bn; i++) {
                bk[i] = rnd() % 2 && m.n ? m.e[rnd() % m.n].raw : gen_key(kt, pattern);
                bv[i] = rnd();
            }
            int kind = (int)(rnd() % 3);
            if (kind == 0) {
                nfl_get_many(idx, bk, bn, out, flag);
                for (size_t i = 0; i < bn; i++) {
                    ref_entry *f = ref_find(&m, bk[i]);
                    CHECK(flag[i] == (f != NULL), "get_many presence");
                    if (f && flag[i]) CHECK(out[i] == f->value, "get_many value");
                }
            } else if (kind == 1) {
                int mode = (int)(rnd() % 3);
                CHECK(nfl_put_many(idx, bk, bv, bn, mode, flag) == NFL_OK, "put_many");
                for (size_t i = 0; i < bn; i++)
                    CHECK(flag[i] == ref_put(&m, bk[i], bv[i], mode), "put_many existed");
            } else {
                nfl_delete_many(idx, bk, bn, flag2);
                for (size_t i = 0; i < bn; i++)
                    CHECK(flag2[i] == ref_delete(&m, bk[i]), "delete_many");
            }
            break;
        }
        default:
            if (rnd() % 200 == 0) check_all(idx, &m);
            break;
        }
    }
    check_all(idx, &m);
    check_ranges_at_keys(idx, &m);
    /* delete everything, then re-insert */
    size_t n0 = m.n;
    uint64_t *all = malloc((n0 + 1) * 8);
    for (size_t i = 0; i < n0; i++) all[i] = m.e[i].raw;
    for (size_t i = 0; i < n0; i++) {
        CHECK(nfl_delete(idx, all[i]) == 1, "delete all");
        ref_delete(&m, all[i]);
    }
    check_all(idx, &m);
    for (size_t i = 0; i < n0; i++) {
        CHECK(nfl_put(idx, all[n0 - 1 - i], i, NFL_INSERT) == 0, "reinsert");
        ref_put(&m, all[n0 - 1 - i], i, NFL_INSERT);
    }
    check_all(idx, &m);
    insert_beyond(idx, &m, (int)(rnd() % 2), (int)(rnd() % 2), 1 + rnd() % 2000);
    nfl_stats st;
    nfl_get_stats(idx, &st);
    CHECK(st.size == m.n, "stats size");
    uint64_t at_depth = 0;
    for (int d = 0; d < NFL_DEPTH_BINS; d++)
        at_depth += st.depth_keys[d];
    CHECK(at_depth == m.n, "depth histogram counts every key");
    CHECK(st.dense_keys <= m.n && st.max_dense <= st.dense_keys, "dense counts");
    free(all);
    free(lk);
    free(lv);
    free(m.e);
    nfl_free(idx);
}

int main(int argc, char **argv)
{
    unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 3;
    for (unsigned r = 0; r < rounds; r++)
        for (int kt = 0; kt < 3; kt++)
            for (int pattern = 0; pattern < 6; pattern++)
                for (int bucket = 1; bucket <= NFL_MAX_BUCKET; bucket += NFL_MAX_BUCKET - 1) {
                    size_t load = (size_t)(rnd() % 3000);
                    run_sequence(kt, pattern, bucket, 6000, load, (int)(rnd() % 2));
                }
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("test_core: %u rounds passed\n", rounds);
    return 0;
}
