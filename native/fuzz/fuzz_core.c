/* fuzz_core.c - libFuzzer target: the C core against a sorted-array model.
 *
 * The input bytes are decoded into one index (key type, bucket size, and an
 * optional flow whose parameters come from the input) and a sequence of
 * operations: bulk loads (with planted duplicates and invalid bucket sizes),
 * point puts in the three modes, gets, deletes, their batch forms, runs of
 * skewed inserts and deletes that force subtree rebuilds, range scans with
 * every flag combination, max, options, stats, the op-stream executor (timed
 * or not), and flows built from damaged parameter vectors.  Each result is
 * compared with a sorted array that orders keys with its own comparison (not
 * the core's encoding), and after every op the tree must pass nfl_check (its
 * structural invariants); any difference aborts, and so does
 * any memory error, leak or undefined behaviour (built with ASan and UBSan).
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc, the core's allocations pass
 * through this file, and one op makes the n-th of them fail during a write:
 * the write may then fail with NFL_ENOMEM, but every key it did not target
 * must keep its value, and the tree must stay whole (and leak nothing).
 *
 *   python native/fuzz/build.py fuzz_core.c -o fuzz_core   (adds those flags)
 *   ./fuzz_core -max_total_time=60 native/fuzz/corpus
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

#define MAX_KEYS 6000 /* model size cap: keeps executions fast */
#define MAX_BATCH 64

#define REQUIRE(cond, what)                                                  \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_core mismatch at %s:%d: %s\n", __FILE__,   \
                    __LINE__, what);                                         \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* ---- allocation failures -------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
static __thread long fail_countdown = -1; /* allocations until one fails; -1: none */

static int injected_failure(void)
{
    return fail_countdown >= 0 && fail_countdown-- == 0;
}

void *__wrap_malloc(size_t size) { return injected_failure() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t count, size_t size)
{
    return injected_failure() ? NULL : __real_calloc(count, size);
}

/* ---- input bytes --------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, at;
    uint64_t rng; /* xorshift state for generated key runs, seeded by input */
} input;

static uint8_t u8(input *in) { return in->at < in->n ? in->p[in->at++] : 0; }
static uint16_t u16(input *in) { return (uint16_t)(u8(in) | u8(in) << 8); }
static uint64_t u64(input *in)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)u8(in) << (8 * i);
    return x;
}
static int more(const input *in) { return in->at < in->n; }

static uint64_t rnd(input *in)
{
    in->rng ^= in->rng >> 12;
    in->rng ^= in->rng << 25;
    in->rng ^= in->rng >> 27;
    return in->rng * 2685821657736338717ull;
}

/* ---- keys of the three types, compared independently of the core ---------- */

static int kt; /* key type of the current input */
static const double *flow_p; /* its flow parameters (NULL: no flow) */
static size_t flow_n;

static double as_double(uint64_t raw)
{
    double d;
    memcpy(&d, &raw, 8);
    return d;
}

static uint64_t from_double(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static int key_less(uint64_t a, uint64_t b)
{
    if (kt == NFL_KEY_UINT64)
        return a < b;
    if (kt == NFL_KEY_INT64)
        return (int64_t)a < (int64_t)b;
    return as_double(a) < as_double(b);
}

static int key_eq(uint64_t a, uint64_t b) { return !key_less(a, b) && !key_less(b, a); }

/* The raw key the core hands back for raw (-0.0 comes back as 0.0). */
static uint64_t canon(uint64_t raw)
{
    return kt == NFL_KEY_FLOAT64 && raw == (1ull << 63) ? 0 : raw;
}

/* NaN is not a key (Python rejects it before the core). */
static uint64_t valid(uint64_t raw)
{
    return kt == NFL_KEY_FLOAT64 && isnan(as_double(raw)) ? from_double(1.5) : raw;
}

/* ---- the model: keys sorted by key_less, canonical raw keys -------------- */

typedef struct {
    uint64_t *k, *v;
    size_t n;
} model;

static size_t lower(const model *m, uint64_t key)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_less(m->k[mid], key))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static long find(const model *m, uint64_t key)
{
    size_t i = lower(m, key);
    return i < m->n && key_eq(m->k[i], key) ? (long)i : -1;
}

/* nfl_put's semantics; returns 1 if the key existed.  A full model refuses
 * new keys with -1 (the caller then skips the op). */
static int model_put(model *m, uint64_t key, uint64_t value, int mode)
{
    size_t i = lower(m, key);
    if (i < m->n && key_eq(m->k[i], key)) {
        if (mode != NFL_INSERT)
            m->v[i] = value;
        return 1;
    }
    if (mode == NFL_UPDATE)
        return 0;
    if (m->n == MAX_KEYS)
        return -1;
    memmove(m->k + i + 1, m->k + i, (m->n - i) * 8);
    memmove(m->v + i + 1, m->v + i, (m->n - i) * 8);
    m->k[i] = canon(key);
    m->v[i] = value;
    m->n++;
    return 0;
}

static int model_delete(model *m, uint64_t key)
{
    long i = find(m, key);
    if (i < 0)
        return 0;
    memmove(m->k + i, m->k + i + 1, (m->n - (size_t)i - 1) * 8);
    memmove(m->v + i, m->v + i + 1, (m->n - (size_t)i - 1) * 8);
    m->n--;
    return 1;
}

/* nfl_range's semantics into keys/values; returns the count. */
static size_t model_range(const model *m, uint64_t lo, uint64_t hi, int flags,
                          uint64_t *keys, uint64_t *values, size_t max)
{
    size_t i = 0, c = 0;
    if (!(flags & NFL_FROM_START)) {
        i = lower(m, lo);
        if ((flags & NFL_LO_EXCLUSIVE) && i < m->n && key_eq(m->k[i], lo))
            i++;
    }
    for (; i < m->n && c < max; i++, c++) {
        if (!(flags & NFL_TO_END) && !key_less(m->k[i], hi))
            break;
        if (keys) {
            keys[c] = m->k[i];
            values[c] = m->v[i];
        }
    }
    return c;
}

/* ---- key generation ------------------------------------------------------ */

/* A key from a hard pattern: whole-type uniform, consecutive integers near
 * 2^53 / 2^63 / the top (ties after conversion to double), narrow clusters,
 * or the type's specials. */
static uint64_t pattern_key(input *in, int pattern, uint64_t i)
{
    uint64_t r = rnd(in);
    switch (pattern & 3) {
    case 0:
        if (kt == NFL_KEY_FLOAT64)
            return from_double((double)(int64_t)r * ldexp(1.0, (int)(r % 200) - 100));
        return r;
    case 1:
        if (kt == NFL_KEY_FLOAT64) {
            double d = (r & 1) ? 9007199254740992.0 : -1e-300;
            for (uint64_t k = i % 64; k > 0; k--)
                d = nextafter(d, INFINITY);
            return from_double(d);
        }
        if (kt == NFL_KEY_INT64)
            return (uint64_t)(((r & 1) ? INT64_MAX - 4096 : INT64_MIN) + (int64_t)(i % 4096));
        return ((r & 1) ? UINT64_MAX - 4096 : (1ull << 53)) + i % 4096;
    case 2: {
        uint64_t c = r % 8, k = c * (1ull << 58) + rnd(in) % (1ull << (c * 7));
        if (kt == NFL_KEY_FLOAT64)
            return from_double((double)k * 1e-10 - 3e7);
        return kt == NFL_KEY_INT64 ? k - (1ull << 61) : k;
    }
    default: {
        static const double fs[] = {0.0, -0.0, INFINITY, -INFINITY, 5e-324, -5e-324,
                                    1.7976931348623157e308, -1.7976931348623157e308};
        static const uint64_t is[] = {0, 1, UINT64_MAX, UINT64_MAX - 1, 1ull << 63,
                                      (1ull << 63) - 1, 1ull << 53, (1ull << 53) + 1};
        return kt == NFL_KEY_FLOAT64 ? from_double(fs[r % 8]) : is[r % 8];
    }
    }
}

/* One key named by the input: a present key, a neighbour of one, a small
 * number, 8 raw bytes or a pattern key. */
static uint64_t read_key(input *in, const model *m)
{
    uint8_t b = u8(in);
    uint64_t near = m->n ? m->k[u16(in) % m->n] : 0;
    switch (b & 7) {
    case 0:
    case 1:
        return near;
    case 2: { /* a neighbour: the next or previous representable keys */
        int steps = (int8_t)u8(in) % 4;
        if (kt != NFL_KEY_FLOAT64)
            return near + (uint64_t)(int64_t)steps;
        double d = as_double(near);
        for (; steps > 0; steps--)
            d = nextafter(d, INFINITY);
        for (; steps < 0; steps++)
            d = nextafter(d, -INFINITY);
        return valid(from_double(d));
    }
    case 3:
        if (kt == NFL_KEY_FLOAT64)
            return from_double((int8_t)u8(in) / 4.0);
        return kt == NFL_KEY_INT64 ? (uint64_t)(int64_t)(int8_t)u8(in) : u8(in);
    case 4:
        return valid(u64(in));
    default:
        return valid(pattern_key(in, b >> 3, u8(in)));
    }
}

/* The core's encoding agrees with key_less and round-trips canonically. */
static void check_encoding(uint64_t a, uint64_t b)
{
    uint64_t raw[2] = {a, b}, enc[2], back[2];
    nfl_encode(kt, raw, enc, 2);
    nfl_decode(kt, enc, back, 2);
    REQUIRE(back[0] == canon(a) && back[1] == canon(b), "decode(encode(key))");
    REQUIRE(key_less(a, b) == (enc[0] < enc[1]), "encoding order");
    REQUIRE(key_eq(a, b) == (enc[0] == enc[1]), "encoding equality");
}

/* ---- checks against the model -------------------------------------------- */

static uint64_t *scratch_k, *scratch_v, *want_k, *want_v; /* MAX_KEYS + 1 each */

static void check_range(nfl_index *idx, const model *m, uint64_t lo, uint64_t hi,
                        int flags, size_t max)
{
    size_t got = nfl_range(idx, lo, hi, flags, scratch_k, scratch_v, max);
    size_t want = model_range(m, lo, hi, flags, want_k, want_v, max);
    REQUIRE(got == want, "range count");
    REQUIRE(memcmp(scratch_k, want_k, got * 8) == 0, "range keys");
    REQUIRE(memcmp(scratch_v, want_v, got * 8) == 0, "range values");
}

/* The tree's own invariants (nfl_check), after every op. */
static void check_structure(nfl_index *idx)
{
    char why[NFL_CHECK_MESSAGE];
    int rc = nfl_check(idx, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "nfl_check: %s\n", rc == 1 ? why : "out of memory");
    REQUIRE(rc == 0, "tree invariants");
}

static void check_all(nfl_index *idx, const model *m)
{
    REQUIRE(nfl_size(idx) == m->n, "size");
    check_range(idx, m, 0, 0, NFL_FROM_START | NFL_TO_END, MAX_KEYS + 1);
    uint64_t k, v;
    int has = nfl_max(idx, &k, &v);
    REQUIRE(has == (m->n > 0), "max presence");
    REQUIRE(!has || (k == m->k[m->n - 1] && v == m->v[m->n - 1]), "max entry");
    nfl_stats st;
    nfl_get_stats(idx, &st);
    REQUIRE(st.size == m->n && st.memory_bytes < nfl_memory_usage(idx), "stats");
}

/* ---- operations ------------------------------------------------------------ */

/* Bulk load of generated keys, maybe with a planted duplicate or an invalid
 * bucket size; the model follows what the core must do. */
static void op_bulk_load(input *in, nfl_index *idx, model *m)
{
    size_t n = u16(in) % (MAX_KEYS / 2);
    uint8_t pattern = u8(in), how = u8(in);
    int bucket = how % 8; /* 0 and 7 are invalid */
    uint64_t *keys = malloc((n + 1) * 8), *values = malloc((n + 1) * 8);
    for (size_t i = 0; i < n; i++) {
        keys[i] = valid(pattern_key(in, pattern >> (2 * (i % 4)), i));
        values[i] = rnd(in);
    }
    if (n && (how & 8)) { /* plant a duplicate: a copy, or 0.0 and -0.0 */
        if (kt == NFL_KEY_FLOAT64 && (how & 16)) {
            keys[0] = 0;
            keys[n] = 1ull << 63;
        } else {
            keys[n] = keys[rnd(in) % n];
        }
        values[n] = 7;
        n++;
    }
    model fresh = {want_k, want_v, 0};
    int dup = 0;
    uint64_t dup_key = 0;
    for (size_t i = 0; i < n; i++) {
        if (model_put(&fresh, keys[i], values[i], NFL_INSERT) == 1)
            dup = 1;
    }
    uint64_t before = nfl_version(idx);
    int rc = nfl_bulk_load(idx, keys, values, n, bucket, &dup_key);
    if (bucket < 1 || bucket > 6) {
        REQUIRE(rc == NFL_EINVAL, "invalid bucket size accepted");
    } else if (dup) {
        REQUIRE(rc == NFL_EDUPLICATE, "duplicate not reported");
        long at = find(&fresh, dup_key);
        REQUIRE(at >= 0 && fresh.k[at] == dup_key, "reported duplicate is not a key");
        size_t copies = 0;
        for (size_t i = 0; i < n; i++)
            copies += key_eq(keys[i], dup_key);
        REQUIRE(copies >= 2, "reported duplicate is unique");
        /* the model keeps its contents: a failed load changes nothing */
    } else {
        REQUIRE(rc == NFL_OK, "bulk load failed");
        /* memory accounting: the replaced tree was released in full */
        nfl_index *twin = nfl_create(kt, flow_p, flow_n);
        REQUIRE(twin && nfl_bulk_load(twin, keys, values, n, bucket, &dup_key) == NFL_OK &&
                    nfl_memory_usage(twin) - nfl_memory_usage(idx) == 0,
                "memory after a bulk load that replaced a tree");
        nfl_free(twin);
        memcpy(m->k, fresh.k, fresh.n * 8);
        memcpy(m->v, fresh.v, fresh.n * 8);
        m->n = fresh.n;
        REQUIRE(nfl_version(idx) > before, "version after bulk load");
    }
    free(keys);
    free(values);
    check_all(idx, m);
}

static void op_batch(input *in, nfl_index *idx, model *m, int kind)
{
    uint64_t keys[MAX_BATCH], values[MAX_BATCH], out[MAX_BATCH];
    uint8_t flags[MAX_BATCH];
    size_t n = u8(in) % (MAX_BATCH + 1);
    int mode = u8(in) % 3;
    for (size_t i = 0; i < n; i++) {
        keys[i] = read_key(in, m);
        values[i] = rnd(in);
    }
    if (kind == 0) { /* get_many, with values or as a contains test */
        int with_values = mode != 0;
        nfl_get_many(idx, keys, n, with_values ? out : NULL, flags);
        for (size_t i = 0; i < n; i++) {
            long at = find(m, keys[i]);
            REQUIRE(flags[i] == (at >= 0), "get_many found");
            REQUIRE(!with_values || out[i] == (at >= 0 ? m->v[at] : 0), "get_many value");
        }
    } else if (kind == 1) {
        if (m->n + n > MAX_KEYS)
            return;
        REQUIRE(nfl_put_many(idx, keys, values, n, mode, mode == 1 ? NULL : flags) == NFL_OK,
                "put_many failed");
        for (size_t i = 0; i < n; i++) {
            int existed = model_put(m, keys[i], values[i], mode);
            REQUIRE(mode == 1 || flags[i] == existed, "put_many existed");
        }
    } else {
        nfl_delete_many(idx, keys, n, flags);
        for (size_t i = 0; i < n; i++)
            REQUIRE(flags[i] == model_delete(m, keys[i]), "delete_many");
    }
}

/* A run of keys rising by a stride (skewed inserts grow one subtree until it
 * is rebuilt), or deletes of every step-th present key (shrinking rebuilds). */
static void op_run(input *in, nfl_index *idx, model *m, int insert)
{
    size_t count = (size_t)u8(in) * 8;
    uint64_t start = read_key(in, m), stride = 1 + u8(in) % 16;
    if (!insert) {
        size_t step = 1 + stride % 4, from = m->n ? lower(m, start) : 0;
        for (size_t i = from, done = 0; i < m->n && done < count; i += step - 1, done++) {
            uint64_t k = m->k[i];
            REQUIRE(nfl_delete(idx, k) == 1 && model_delete(m, k) == 1, "run delete");
        }
        return;
    }
    double d = as_double(start);
    for (size_t i = 0; i < count && m->n < MAX_KEYS; i++) {
        uint64_t k = start + i * stride;
        if (kt == NFL_KEY_FLOAT64) {
            for (uint64_t s = 0; s < stride; s++)
                d = nextafter(d, INFINITY);
            k = valid(from_double(d));
        }
        uint64_t v = i;
        REQUIRE(nfl_put(idx, k, v, NFL_UPSERT) == model_put(m, k, v, NFL_UPSERT), "run put");
    }
}

/* The op-stream executor on a short stream, its expectations from the model. */
static void op_execute(input *in, nfl_index *idx, model *m)
{
    enum { N = 48 };
    uint8_t op[N];
    uint64_t key[N], value[N];
    int64_t scan_len[N], expected[N];
    size_t n = u8(in) % (N + 1), batch = 1 + u8(in) % 8;
    uint64_t scanned = 0;
    for (size_t i = 0; i < n; i++) {
        op[i] = u8(in) % 6;
        key[i] = read_key(in, m);
        value[i] = rnd(in);
        scan_len[i] = u8(in) % 40;
        long at = find(m, key[i]);
        expected[i] = at >= 0 ? (int64_t)m->v[at] : -1;
        if (op[i] == NFL_OP_SCAN)
            scanned += model_range(m, key[i], 0, NFL_TO_END, NULL, NULL, (size_t)scan_len[i]);
        else if (op[i] == NFL_OP_DELETE)
            model_delete(m, key[i]);
        else if (op[i] != NFL_OP_READ && model_put(m, key[i], value[i], NFL_UPSERT) < 0)
            op[i] = NFL_OP_READ; /* the model is full: read instead */
    }
    nfl_exec_report rep;
    uint64_t op_ticks[N], batch_ticks[N];
    uint8_t how = n ? u8(in) : 0; /* bit 0: timed; bit 1: one op at a time (nfl_execute_each) */
    int timed = how & 1;
    REQUIRE((how & 2 ? nfl_execute_each : nfl_execute)(idx, op, key, value, scan_len, expected, n, batch,
                                                      timed ? op_ticks : NULL, timed ? batch_ticks : NULL,
                                                      &rep) == NFL_OK, "execute failed");
    REQUIRE(rep.ops_done == n && rep.first_mismatch == -1, "execute result");
    REQUIRE(rep.scanned == scanned, "execute scanned");
    uint64_t op_sum = 0, batch_sum = 0; /* ops' times (chained or each alone) fit in their batches' */
    for (size_t i = 0; timed && i < n; i++)
        op_sum += op_ticks[i], batch_sum += i % batch ? 0 : batch_ticks[i / batch];
    REQUIRE(op_sum <= batch_sum, "execute: op ticks exceed batch ticks");
}

/* A valid flow from the input (the layout documented in native/flow.c): a
 * linear spline of 1-16 bins whose widths span up to 2^47 : 1 (narrow
 * clusters, steep slopes) and whose masses may be zero (flat stretches,
 * hence ties in z), over either feature, at a scale that may squash every
 * key into 0 or 1. */
static size_t flow_params(input *in, double *p)
{
    uint8_t b = u8(in);
    int bins = 1 + (b >> 1) % 16;
    p[0] = 1313229894.0, p[1] = 1.0, p[2] = 1.0, p[3] = b & 1;
    p[4] = ldexp(1.0 + u8(in) / 256.0, -(u8(in) % 72));
    p[5] = ((int)u8(in) - 128) / 64.0;
    p[6] = bins;
    double *edge = p + 7, *mass = edge + bins + 1, sum = 0.0;
    edge[0] = 0.0;
    for (int j = 1; j <= bins; j++) /* exact sums of powers of two: increasing */
        edge[j] = edge[j - 1] + ldexp(1.0, u8(in) % 48);
    for (int j = 1; j <= bins; j++)
        edge[j] /= edge[bins];
    for (int j = 0; j < bins; j++)
        sum += mass[j] = u8(in) % 4 == 0 ? 0.0 : u8(in);
    if (sum == 0.0)
        mass[0] = 1.0;
    return 7 + 2 * (size_t)bins + 1;
}

/* nfl_flow_create on a valid vector with one entry changed (to NaN, an
 * infinity, a negative, a count off by one...) and maybe one entry short:
 * either NULL, or a flow whose transform is finite, in [0, 1] and monotone
 * over keys from -inf to +inf. */
static void op_flow_params(input *in)
{
    static const double odd[] = {NAN, INFINITY, -INFINITY, -1.0, 0.0, -0.0, 0.5, 1.0,
                                 2.0, 1e300, 5e-324, 1313229894.0, 1048577.0};
    double p[7 + 2 * 16 + 1];
    size_t n = flow_params(in, p), at = u8(in) % n;
    uint8_t how = u8(in);
    p[at] = how % 16 < 13 ? odd[how % 16] : p[at] + (how & 16 ? 1.0 : -1.0);
    nfl_flow *flow = nfl_flow_create(p, n - (how >> 7));
    if (!flow)
        return;
    static const double x[] = {-INFINITY, -1.7976931348623157e308, -1e10, -1.0, -5e-324, 0.0,
                               5e-324, 1e-300, 0.25, 1.0, 3.0, 1e10, 9007199254740993.0,
                               1.8446744073709552e19, 1.7976931348623157e308, INFINITY};
    double z[16];
    nfl_flow_transform(flow, x, z, 16);
    for (size_t i = 0; i < 16; i++)
        REQUIRE(z[i] >= 0.0 && z[i] <= 1.0 && (i == 0 || z[i - 1] <= z[i]),
                "flow: z not monotone in [0, 1]");
    nfl_flow_free(flow);
}

/* A write with its n-th allocation failing (n from the input: maybe none).
 * Afterwards the tree must hold every key the write did not target, with its
 * value; a targeted key holds its old value, a value written, or is gone only
 * if a delete targeted it; nothing else appears.  The model then follows the
 * index. */
static void op_failing_write(input *in, nfl_index *idx, model *m)
{
    static uint64_t keys[512], values[512], before_k[MAX_KEYS + 1], before_v[MAX_KEYS + 1];
    model before = {before_k, before_v, m->n};
    memcpy(before_k, m->k, m->n * 8);
    memcpy(before_v, m->v, m->n * 8);
    uint8_t kind = u8(in) % 4, mode = u8(in) % 3;
    long countdown = u8(in) % 24;
    size_t n = kind == 1 ? (size_t)u8(in) * 2 : u8(in) % 65;
    uint64_t start = read_key(in, m), stride = 1 + u8(in) % 8, dup;
    for (size_t i = 0; i < n; i++) {
        keys[i] = kind == 1 && kt != NFL_KEY_FLOAT64 ? start + i * stride : read_key(in, m);
        values[i] = rnd(in);
    }
    if (m->n + n > MAX_KEYS)
        return;
    uint8_t flags[512];
    int rc = NFL_OK;
    fail_countdown = countdown;
    if (kind == 0)
        rc = nfl_put_many(idx, keys, values, n, mode, flags);
    else if (kind == 1)
        for (size_t i = 0; i < n && rc >= 0; i++)
            rc = nfl_put(idx, keys[i], values[i], NFL_UPSERT);
    else if (kind == 2)
        nfl_delete_many(idx, keys, n, flags);
    else
        rc = nfl_bulk_load(idx, keys, values, n, 1 + mode, &dup);
    fail_countdown = -1;
    REQUIRE(rc >= 0 || rc == NFL_ENOMEM || (kind == 3 && rc == NFL_EDUPLICATE), "failing write: rc");
    if (kind == 3 && rc == NFL_OK)
        before.n = 0; /* replaced: only the loaded keys may remain */

    size_t got = nfl_range(idx, 0, 0, NFL_FROM_START | NFL_TO_END, scratch_k, scratch_v, MAX_KEYS + 1);
    REQUIRE(got == nfl_size(idx), "failing write: size vs scan");
    for (size_t i = 0; i < got; i++) {
        REQUIRE(i == 0 || key_less(scratch_k[i - 1], scratch_k[i]), "failing write: scan order");
        long was = find(&before, scratch_k[i]);
        int targeted = 0, written = 0;
        for (size_t j = 0; j < n; j++)
            if (key_eq(keys[j], scratch_k[i])) {
                targeted = 1;
                written |= kind != 2 && values[j] == scratch_v[i];
            }
        REQUIRE(written || (was >= 0 && before.v[was] == scratch_v[i]), "failing write: a value from nowhere");
        REQUIRE(targeted || was >= 0, "failing write: a key from nowhere");
        uint64_t v;
        REQUIRE(nfl_get(idx, scratch_k[i], &v) == 1 && v == scratch_v[i], "failing write: scanned key not found");
    }
    for (size_t i = 0; (kind != 3 || rc != NFL_OK) && i < before.n; i++) {
        int targeted = 0;
        for (size_t j = 0; j < n && !targeted; j++)
            targeted = key_eq(keys[j], before.k[i]);
        uint64_t v;
        REQUIRE(targeted || (nfl_get(idx, before.k[i], &v) == 1 && v == before.v[i]),
                "failing write: an untouched key lost or changed");
    }
    memcpy(m->k, scratch_k, got * 8);
    memcpy(m->v, scratch_v, got * 8);
    m->n = got;
}

static void run(input *in, nfl_index *idx, model *m)
{
    uint64_t version = nfl_version(idx);
    while (more(in)) {
        uint8_t op = u8(in);
        int writes = 1;
        uint64_t k = read_key(in, m), v = rnd(in), got = 0;
        switch (op % 16) {
        case 0:
        case 1: {
            int mode = (op >> 4) % 3, want = model_put(m, k, v, mode);
            if (want >= 0)
                REQUIRE(nfl_put(idx, k, v, mode) == want, "put");
            break;
        }
        case 2:
        case 3:
            REQUIRE(nfl_delete(idx, k) == model_delete(m, k), "delete");
            break;
        case 4:
        case 5: {
            long at = find(m, k);
            int found = nfl_get(idx, k, &got);
            REQUIRE(found == (at >= 0) && (!found || got == m->v[at]), "get");
            writes = 0;
            break;
        }
        case 6:
        case 7: {
            uint64_t hi = read_key(in, m);
            check_encoding(k, hi);
            check_range(idx, m, k, hi, (op >> 4) & 7, u16(in) % 300);
            writes = 0;
            break;
        }
        case 8:
            op_batch(in, idx, m, 0);
            writes = 0;
            break;
        case 9:
            op_batch(in, idx, m, 1);
            break;
        case 10:
            op_batch(in, idx, m, 2);
            break;
        case 11:
            op_run(in, idx, m, op & 16);
            break;
        case 12:
            op_bulk_load(in, idx, m);
            break;
        case 13: { /* options: the bucket size only changes an empty index */
            int64_t bucket = (op >> 4) % 8;
            int want = bucket >= 1 && bucket <= NFL_MAX_BUCKET && m->n == 0 ? NFL_OK : NFL_EINVAL;
            REQUIRE(nfl_set_option(idx, NFL_OPT_BUCKET_SIZE, bucket) == want, "option");
            REQUIRE(nfl_set_option(idx, NFL_OPT_PREFETCH, op >> 7) == NFL_OK, "prefetch");
            break;
        }
        case 14:
            op_execute(in, idx, m);
            break;
        default:
            if (op & 16) {
                op_failing_write(in, idx, m);
            } else if (op & 32) {
                op_flow_params(in);
                writes = 0;
            } else {
                check_all(idx, m);
                writes = 0;
            }
        }
        REQUIRE(nfl_size(idx) == m->n, "size after op");
        check_structure(idx);
        uint64_t now = nfl_version(idx);
        REQUIRE(writes ? now >= version : now == version, "version after op");
        version = now;
    }
    check_all(idx, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size, 0, 0x9E3779B97F4A7C15ull};
    uint8_t head = u8(&in);
    kt = head % 3;
    in.rng ^= u64(&in) | 1;
    double params[7 + 2 * 16 + 1];
    flow_n = (head & 4) ? flow_params(&in, params) : 0;
    flow_p = flow_n ? params : NULL;
    nfl_index *idx = nfl_create(kt, flow_p, flow_n);
    REQUIRE(idx != NULL, "create refused the flow: does flow_params() still follow native/flow.c?");
    REQUIRE(nfl_set_option(idx, NFL_OPT_BUCKET_SIZE, 1 + (head >> 3) % NFL_MAX_BUCKET) == NFL_OK,
            "bucket size of an empty index");
    model m = {malloc((MAX_KEYS + 1) * 8), malloc((MAX_KEYS + 1) * 8), 0};
    scratch_k = malloc((MAX_KEYS + 1) * 8), scratch_v = malloc((MAX_KEYS + 1) * 8);
    want_k = malloc((MAX_KEYS + 1) * 8), want_v = malloc((MAX_KEYS + 1) * 8);
    run(&in, idx, &m);
    nfl_free(idx);
    free(m.k), free(m.v), free(scratch_k), free(scratch_v), free(want_k), free(want_v);
    return 0;
}

#ifdef FUZZ_REPLAY
/* Without libFuzzer (gcc, valgrind, a debugger): runs each file named. */
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_core: %d inputs replayed\n", argc - 1);
    return 0;
}
#endif
