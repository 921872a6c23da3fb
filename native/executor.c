/* executor.c - the op-stream executor: the timed batch path of the benchmark.
 *
 * Replays an op stream (read, update, insert, scan, read-modify-write,
 * delete) against an index in C, so that what is measured is the index and
 * not the Python interpreter.  Ops run in batches; each batch is timed, and
 * on request each op too, with the CPU's cycle counter.  Reads are checked
 * against the stream's expected values as they run.
 *
 * Two ways to run a batch:
 *
 * nfl_execute, the fused batch path.  A batch of reads only executes as one
 * fused, prefetching batch lookup (nfl_get_many: the tuned lookup path).  Any
 * other batch takes the write lock once, prepares the keys of all its ops and
 * brings their tree paths into cache together (index_prepare), so the misses
 * of its ops overlap too, then runs the ops in order on the tree.  Either way
 * the ops share the time of the fused pass equally.  Per-op timing is
 * chained: one timestamp per op, an op's latency being the time since the
 * previous timestamp, so the per-op latencies of a batch sum to its batch
 * latency and each includes exactly one read of the counter.
 *
 * nfl_execute_each, the per-op native path: one op at a time, each key
 * prepared alone (encode, flow transform) and its tree operation run, with
 * nothing fused, prefetched or shared.  Each op is timed alone, between two
 * reads of the counter taken just before and just after it, so its latency
 * is its own and includes the cost of one counter read
 * (nfl_timer_overhead_ticks, measured the same way with no op between).  The
 * index lock is taken once per batch, outside the timed ops, as a C++ index
 * without a lock is timed.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index.h"
#include "executor.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define NFL_HAVE_TSC 1
#endif

/* ---- The cycle counter -------------------------------------------------- */

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* rdtsc fenced on both sides: earlier work has finished before the read and
 * later work has not started, so a timed op is exactly the code between two
 * reads.  Without a TSC, the monotonic clock in ns. */
static inline uint64_t ticks_now(void)
{
#ifdef NFL_HAVE_TSC
    uint64_t t;
    _mm_lfence();
    t = __rdtsc();
    _mm_lfence();
    return t;
#else
    return monotonic_ns();
#endif
}

uint64_t nfl_ticks(void) { return ticks_now(); }

static double g_ticks_per_ns = 1.0;
static double g_overhead_ticks = 0.0;
static pthread_once_t g_timer_once = PTHREAD_ONCE_INIT;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *xs, size_t n)
{
    qsort(xs, n, sizeof *xs, cmp_double);
    return xs[n / 2];
}

/* Ticks per ns: the median of 5 windows of 10 ms against the monotonic
 * clock.  Timer overhead: the median gap between back-to-back reads. */
static void calibrate(void)
{
#ifdef NFL_HAVE_TSC
    double rates[5];
    for (int w = 0; w < 5; w++) {
        uint64_t ns0 = monotonic_ns(), t0 = ticks_now(), ns1;
        do {
            ns1 = monotonic_ns();
        } while (ns1 - ns0 < 10000000u);
        rates[w] = (double)(ticks_now() - t0) / (double)(ns1 - ns0);
    }
    g_ticks_per_ns = median(rates, 5);
#endif
    enum { SAMPLES = 1001 };
    static double gaps[SAMPLES];
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t a = ticks_now();
        uint64_t b = ticks_now();
        gaps[i] = (double)(b - a);
    }
    g_overhead_ticks = median(gaps, SAMPLES);
}

double nfl_ticks_per_ns(void)
{
    pthread_once(&g_timer_once, calibrate);
    return g_ticks_per_ns;
}

double nfl_timer_overhead_ticks(void)
{
    pthread_once(&g_timer_once, calibrate);
    return g_overhead_ticks;
}

/* ---- Executing ops ------------------------------------------------------ */

/* The arrays of an op stream (value, scan_len, expected may be NULL where no
 * op needs them; check_stream makes sure). */
typedef struct {
    const uint8_t *op;
    const uint64_t *key;
    const uint64_t *value;
    const int64_t *scan_len;
    const int64_t *expected;
} exec_stream;

/* What one op needs besides its own fields. */
typedef struct {
    nfl_index *index;
    uint64_t *scan_keys; /* scratch for scans, max scan_len entries each */
    uint64_t *scan_values;
    uint64_t *run_values; /* scratch for a fused run of reads, batch entries */
    uint8_t *run_found;
    index_key *prepared;  /* scratch: the keys of a batch, prepared */
    nfl_exec_report *report;
} exec_ctx;

static inline void fold(nfl_exec_report *r, uint64_t x)
{
    r->checksum = (r->checksum ^ x) * 0x100000001b3ull;
}

static inline void note_mismatch(nfl_exec_report *r, size_t i)
{
    if (r->first_mismatch < 0)
        r->first_mismatch = (int64_t)i;
}

/* A read's result as the stream states it: the value, or -1 when absent. */
static inline int64_t read_value(exec_ctx *c, index_key k)
{
    const uint64_t *v = afli_find(&c->index->tree, k.enc, k.z);
    int64_t got = v ? (int64_t)*v : -1;
    fold(c->report, (uint64_t)got);
    return got;
}

/* Runs op i of the stream on its prepared key, under the write lock, and
 * counts it.  Returns 0, or a negative NFL_ code on an index error (the op
 * then does not count); a result that differs from expected is noted in the
 * report. */
static inline int exec_op(exec_ctx *c, const exec_stream *s, size_t i,
                          index_key k)
{
    int rc = 0, bad = 0;
    switch (s->op[i]) {
    case NFL_OP_READ:
        bad = read_value(c, k) != s->expected[i];
        break;
    case NFL_OP_UPDATE:
    case NFL_OP_INSERT:
        rc = afli_put(&c->index->tree, k.enc, k.z, s->value[i], NFL_UPSERT, NULL);
        break;
    case NFL_OP_SCAN: {
        size_t got = index_range(c->index, s->key[i], 0, NFL_TO_END, c->scan_keys,
                                 c->scan_values, (size_t)s->scan_len[i]);
        c->report->scanned += got;
        if (got)
            fold(c->report, c->scan_keys[got - 1] ^ c->scan_values[got - 1]);
        break;
    }
    case NFL_OP_RMW:
        bad = read_value(c, k) != s->expected[i];
        rc = afli_put(&c->index->tree, k.enc, k.z, s->value[i], NFL_UPSERT, NULL);
        break;
    default: /* NFL_OP_DELETE; codes are checked before the run */
        fold(c->report, (uint64_t)afli_remove(&c->index->tree, k.enc, k.z, NULL));
    }
    if (rc < 0)
        return rc;
    if (bad)
        note_mismatch(c->report, i);
    c->report->ops_done++;
    return 0;
}

/* Runs reads i..end-1 as one fused batch lookup, recording the first whose
 * result differs from expected. */
static void exec_reads(exec_ctx *c, const exec_stream *s, size_t i, size_t end)
{
    nfl_get_many(c->index, s->key + i, end - i, c->run_values, c->run_found);
    for (size_t j = i; j < end; j++) {
        int64_t got = c->run_found[j - i] ? (int64_t)c->run_values[j - i] : -1;
        fold(c->report, (uint64_t)got);
        if (got != s->expected[j])
            note_mismatch(c->report, j);
    }
    c->report->ops_done += end - i;
}

static int all_reads(const uint8_t *op, size_t b, size_t end)
{
    for (size_t i = b; i < end; i++)
        if (op[i] != NFL_OP_READ)
            return 0;
    return 1;
}

/* Sets the ticks of ops [b, end) to equal shares of span (a fused pass). */
static void share(uint64_t *op_ticks, size_t b, size_t end, uint64_t span)
{
    for (size_t i = b; i < end; i++)
        op_ticks[i] = span / (end - b);
    op_ticks[end - 1] += span % (end - b);
}

/* The fused batch path on ops [b, end); see the top of the file. */
static int exec_batch_fused(exec_ctx *c, const exec_stream *s, size_t b,
                            size_t end, uint64_t *op_ticks)
{
    uint64_t start = ticks_now();
    int rc = NFL_OK;
    if (all_reads(s->op, b, end)) {
        exec_reads(c, s, b, end);
        if (op_ticks)
            share(op_ticks, b, end, ticks_now() - start);
        return rc;
    }
    index_write_begin(c->index);
    index_prepare(c->index, s->key + b, end - b, c->prepared);
    uint64_t prev = op_ticks ? ticks_now() : start;
    if (op_ticks)
        share(op_ticks, b, end, prev - start);
    for (size_t i = b; i < end && rc == NFL_OK; i++) {
        rc = exec_op(c, s, i, c->prepared[i - b]);
        if (op_ticks && rc == NFL_OK) {
            uint64_t now = ticks_now();
            op_ticks[i] += now - prev;
            prev = now;
        }
    }
    index_write_end(c->index);
    return rc;
}

/* The per-op native path on ops [b, end): each op alone, timed alone. */
static int exec_batch_each(exec_ctx *c, const exec_stream *s, size_t b,
                           size_t end, uint64_t *op_ticks)
{
    int rc = NFL_OK;
    index_write_begin(c->index);
    for (size_t i = b; i < end && rc == NFL_OK; i++) {
        if (op_ticks) {
            uint64_t start = ticks_now();
            rc = exec_op(c, s, i, index_prepare_key(c->index, s->key[i]));
            op_ticks[i] = ticks_now() - start;
        } else {
            rc = exec_op(c, s, i, index_prepare_key(c->index, s->key[i]));
        }
    }
    index_write_end(c->index);
    return rc;
}

/* Checks op codes and the arrays they need; sets the longest scan. */
static int check_stream(const exec_stream *s, size_t n, size_t *max_scan)
{
    *max_scan = 0;
    for (size_t i = 0; i < n; i++) {
        switch (s->op[i]) {
        case NFL_OP_READ:
            if (!s->expected)
                return NFL_EINVAL;
            break;
        case NFL_OP_RMW:
            if (!s->expected || !s->value)
                return NFL_EINVAL;
            break;
        case NFL_OP_UPDATE:
        case NFL_OP_INSERT:
            if (!s->value)
                return NFL_EINVAL;
            break;
        case NFL_OP_SCAN:
            if (!s->scan_len || s->scan_len[i] < 0)
                return NFL_EINVAL;
            if ((size_t)s->scan_len[i] > *max_scan)
                *max_scan = (size_t)s->scan_len[i];
            break;
        case NFL_OP_DELETE:
            break;
        default:
            return NFL_EINVAL;
        }
    }
    return NFL_OK;
}

typedef int (*exec_batch_fn)(exec_ctx *, const exec_stream *, size_t, size_t,
                             uint64_t *);

/* Checks the stream, then runs it batch by batch with run_batch. */
static int execute(exec_batch_fn run_batch, nfl_index *index,
                   const exec_stream *s, size_t n, size_t batch,
                   uint64_t *op_ticks, uint64_t *batch_ticks,
                   nfl_exec_report *report)
{
    size_t max_scan;
    int rc;

    if (!index || !report || batch == 0 || (n && (!s->op || !s->key)))
        return NFL_EINVAL;
    memset(report, 0, sizeof *report);
    report->first_mismatch = -1;
    rc = check_stream(s, n, &max_scan);
    if (rc != NFL_OK)
        return rc;

    exec_ctx c = {index, NULL, NULL, NULL, NULL, NULL, report};
    size_t room = (n < batch ? n : batch) + 1;
    c.run_values = malloc(room * sizeof(uint64_t));
    c.run_found = malloc(room);
    c.prepared = malloc(room * sizeof(index_key));
    if (max_scan) {
        c.scan_keys = malloc(2 * max_scan * sizeof(uint64_t));
        c.scan_values = c.scan_keys ? c.scan_keys + max_scan : NULL;
    }
    if (!c.run_values || !c.run_found || !c.prepared ||
        (max_scan && !c.scan_keys))
        rc = NFL_ENOMEM;
    if (op_ticks || batch_ticks)
        nfl_ticks_per_ns(); /* calibrate before the clock starts */

    for (size_t b = 0; b < n && rc == NFL_OK; b += batch) {
        size_t end = n - b < batch ? n : b + batch;
        uint64_t start = ticks_now();
        rc = run_batch(&c, s, b, end, op_ticks);
        if (batch_ticks)
            batch_ticks[b / batch] = ticks_now() - start;
    }
    free(c.scan_keys);
    free(c.run_values);
    free(c.run_found);
    free(c.prepared);
    return rc;
}

int nfl_execute(nfl_index *index, const uint8_t *op, const uint64_t *key,
                const uint64_t *value, const int64_t *scan_len,
                const int64_t *expected, size_t n, size_t batch,
                uint64_t *op_ticks, uint64_t *batch_ticks,
                nfl_exec_report *report)
{
    exec_stream s = {op, key, value, scan_len, expected};
    return execute(exec_batch_fused, index, &s, n, batch, op_ticks,
                   batch_ticks, report);
}

int nfl_execute_each(nfl_index *index, const uint8_t *op, const uint64_t *key,
                     const uint64_t *value, const int64_t *scan_len,
                     const int64_t *expected, size_t n, size_t batch,
                     uint64_t *op_ticks, uint64_t *batch_ticks,
                     nfl_exec_report *report)
{
    exec_stream s = {op, key, value, scan_len, expected};
    return execute(exec_batch_each, index, &s, n, batch, op_ticks,
                   batch_ticks, report);
}
