/* flow.c - compiled inference of the numerical normalizing flow.
 *
 * The flow (the "spline" family of nfl.flow) is a monotone linear spline with
 * free knots on a scalar feature of the key x:
 *
 *     u = clamp(scale * g(x) + offset, 0, 1)        the feature
 *     z = P(u)                                      in [0, 1]
 *
 * g is the identity (feature 0, "linear") or the order-preserving integer of
 * x's IEEE bits as a double (feature 1, "log": a piecewise-linear log2 scale,
 * 2^52 steps per octave, exact order, no libm).
 *
 * P has knots 0 = e_0 < e_1 < ... < e_K = 1 (placed at sample quantiles by
 * training) and bin masses m_j: the CDF of a piecewise-constant density with
 * free bin edges, so it resolves clusters far narrower than any uniform grid.
 * The bin of u is found with a radix table over [0, 1] (built here, M cells,
 * M a power of two, so u * M is exact) followed by a fixed number of
 * branch-free binary-lifting steps, enough for the fullest cell.
 *
 * Flat parameter vector, version 1 (all doubles, as nfl/flow/layout.py
 * writes it):
 *
 *     [0]  magic 1313229894 ("NFLF")
 *     [1]  family: 1 = spline
 *     [2]  layout version: 1
 *     [3]  feature g: 0 linear, 1 log
 *     [4]  scale, finite and > 0
 *     [5]  offset, finite
 *     [6]  K, the number of bins, an integer in 1..NFL_FLOW_MAX_BINS
 *     [7 .. 7+K]        knots e_j: finite, strictly increasing, e_0 = 0, e_K = 1
 *     [8+K .. 8+2K)     masses m_j: finite, >= 0, with a positive finite sum
 *     Nothing may follow.  Every bin's slope (Y_j+1 - Y_j) / (e_j+1 - e_j)
 *     must be finite (create returns NULL otherwise).
 *
 * Exact monotonicity in floating point, for any valid parameters.  Every
 * step is non-decreasing under IEEE round-to-nearest: multiplying by a
 * non-negative constant, adding or subtracting a constant, int64->double
 * conversion, min and max.  The bin j (the largest with e_j <= u) is
 * monotone in u.  Within it
 *     z = min(Y_j + (u - e_j) * slope_j, Y_j+1),
 * with u - e_j >= 0 and slope_j >= 0, so Y_j <= z <= Y_j+1; the knot values
 * Y are running sums of non-negative masses, normalized and capped at 1, so
 * non-decreasing, and a larger u in a later bin never maps lower.  No exp,
 * tanh or log is involved.  The build uses -ffp-contract=off so the multiply
 * and add are not fused; nfl/flow/reference.py (numba) runs the same
 * operations in the same order.
 *
 * The flow is immutable after nfl_flow_create: transform is thread-safe and
 * allocates nothing.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nfl.h"

#define NFL_FLOW_MAGIC 1313229894.0
#define NFL_FLOW_FAMILY_SPLINE 1.0
#define NFL_FLOW_VERSION 1.0
#define NFL_FLOW_HEADER 7
#define NFL_FLOW_BLOCK 64 /* keys carried through the steps together */

struct nfl_flow {
    int feature;
    double scale;
    double offset;
    int32_t bins;
    int32_t cells;        /* radix cells M, a power of two */
    int32_t step;         /* first binary-lifting step (0: none) */
    double fcells;
    double *edge;   /* e_0..e_K, then 2 * step entries of +inf for the lifting */
    double *coef;   /* (Y_j, slope_j), j = 0..K (the last: Y_K, 0) */
    int32_t *first; /* first[r]: the bin of r / M */
};

/* The largest j in [0, k-1] with e[j] <= v, scanning on from j. */
static int32_t advance(const double *e, int32_t k, int32_t j, double v)
{
    while (j + 1 < k && e[j + 1] <= v)
        j++;
    return j;
}

/* Checks knots e[0..k] and masses m[0..k-1]; fills the knot values and
 * slopes.  Returns 0 on invalid parameters. */
static int prepare_bins(const double *e, const double *m, int32_t k,
                        double *coef)
{
    if (e[0] != 0.0 || e[k] != 1.0)
        return 0;
    for (int32_t j = 0; j < k; j++)
        if (!(e[j] < e[j + 1]))
            return 0;
    double total = 0.0;
    for (int32_t j = 0; j < k; j++) {
        if (!(m[j] >= 0.0) || !isfinite(m[j]))
            return 0;
        total = total + m[j];
    }
    double inv = 1.0 / total;
    if (!(total > 0.0) || !isfinite(total) || !isfinite(inv))
        return 0;
    double run = 0.0;
    for (int32_t j = 0; j <= k; j++) {
        double y = run * inv;
        coef[2 * j] = y < 1.0 ? y : 1.0;
        if (j < k)
            run = run + m[j];
    }
    for (int32_t j = 0; j < k; j++) {
        double slope = (coef[2 * j + 2] - coef[2 * j]) / (e[j + 1] - e[j]);
        if (!isfinite(slope))
            return 0;
        coef[2 * j + 1] = slope;
    }
    coef[2 * k + 1] = 0.0;
    return 1;
}

/* Fills the radix table and returns the first lifting step: the largest
 * power of two <= the most bins one cell can span (0 if none). */
static int32_t prepare_radix(const double *e, int32_t k, int32_t cells,
                             int32_t *first)
{
    double inv_cells = 1.0 / (double)cells;
    int32_t lo = 0, hi = 0, widest = 0;
    for (int32_t r = 0; r < cells; r++) {
        lo = advance(e, k, lo, (double)r * inv_cells);
        hi = advance(e, k, hi > lo ? hi : lo, (double)(r + 1) * inv_cells);
        first[r] = lo;
        widest = hi - lo > widest ? hi - lo : widest;
    }
    int32_t step = 1;
    while (step <= widest)
        step <<= 1;
    return step >> 1;
}

/* Radix cells for K bins: the power of two >= 2 * K, at most 2^21. */
static int32_t cells_for(int32_t k)
{
    int32_t cells = 1;
    while (cells < 2 * k && cells < (1 << 21))
        cells <<= 1;
    return cells;
}

nfl_flow *nfl_flow_create(const double *params, size_t n_params)
{
    const double *p = params;
    if (!p || n_params < NFL_FLOW_HEADER)
        return NULL;
    if (p[0] != NFL_FLOW_MAGIC || p[1] != NFL_FLOW_FAMILY_SPLINE ||
        p[2] != NFL_FLOW_VERSION)
        return NULL;
    if (!(p[3] == 0.0 || p[3] == 1.0))
        return NULL;
    if (!(p[4] > 0.0) || !isfinite(p[4]) || !isfinite(p[5]))
        return NULL;
    if (!(p[6] >= 1.0 && p[6] <= NFL_FLOW_MAX_BINS && p[6] == floor(p[6])))
        return NULL;
    int32_t k = (int32_t)p[6];
    if (n_params != NFL_FLOW_HEADER + 2 * (size_t)k + 1)
        return NULL;

    nfl_flow *flow = calloc(1, sizeof(nfl_flow));
    if (!flow)
        return NULL;
    const double *e = p + NFL_FLOW_HEADER;
    flow->cells = cells_for(k);
    flow->coef = malloc(2 * ((size_t)k + 1) * sizeof(double));
    flow->first = malloc((size_t)flow->cells * sizeof(int32_t));
    if (!flow->coef || !flow->first || !prepare_bins(e, e + k + 1, k, flow->coef))
        goto fail;
    flow->step = prepare_radix(e, k, flow->cells, flow->first);
    size_t n_edge = (size_t)k + 1 + 2 * (size_t)flow->step;
    flow->edge = malloc(n_edge * sizeof(double));
    if (!flow->edge)
        goto fail;
    memcpy(flow->edge, e, ((size_t)k + 1) * sizeof(double));
    for (size_t i = (size_t)k + 1; i < n_edge; i++)
        flow->edge[i] = INFINITY;
    flow->feature = (int)p[3];
    flow->scale = p[4];
    flow->offset = p[5];
    flow->bins = k;
    flow->fcells = (double)flow->cells;
    return flow;
fail:
    nfl_flow_free(flow);
    return NULL;
}

size_t nfl_flow_table_bytes(const nfl_flow *flow)
{
    size_t k = (size_t)flow->bins;
    return (k + 1 + 2 * (size_t)flow->step) * sizeof(double) /* edge */
           + 2 * (k + 1) * sizeof(double)                    /* coef */
           + (size_t)flow->cells * sizeof(int32_t);          /* first */
}

int nfl_flow_lifting_step(const nfl_flow *flow)
{
    return flow->step;
}

void nfl_flow_free(nfl_flow *flow)
{
    if (!flow)
        return;
    free(flow->edge);
    free(flow->coef);
    free(flow->first);
    free(flow);
}

/* The order-preserving integer of x's bits, as a double: -0.0 and 0.0 give 0,
 * negative x the negated magnitude bits.  Never overflows (|bits| < 2^63). */
static inline double ordinal(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int64_t mag = (int64_t)(bits & 0x7fffffffffffffffULL);
    return (double)((bits >> 63) ? -mag : mag);
}

/* clamp to [0, 1]; NaN goes to 0 so that every bin index is defined. */
static inline double unit(double v)
{
    v = v > 0.0 ? v : 0.0;
    return v < 1.0 ? v : 1.0;
}

/* P over a block of m values in [0, 1]: radix cell, lifting, linear piece.
 * The lifting keeps e[j] <= u: it starts at the bin of the cell's left edge
 * and its steps (step, step/2, ..., 1) can reach the cell's last bin; the
 * padding makes every probe past e_K fail. */
static void apply_bins(const nfl_flow *f, double *u, size_t m)
{
    int32_t j[NFL_FLOW_BLOCK];
    for (size_t i = 0; i < m; i++) {
        int32_t r = (int32_t)(u[i] * f->fcells);
        j[i] = f->first[r < f->cells ? r : f->cells - 1];
    }
    for (int32_t s = f->step; s > 0; s >>= 1)
        for (size_t i = 0; i < m; i++)
            j[i] += s & -(int32_t)(f->edge[j[i] + s] <= u[i]);
    for (size_t i = 0; i < m; i++) {
        int32_t b = j[i] < f->bins ? j[i] : f->bins - 1;
        const double *c = f->coef + 2 * (size_t)b;
        double y = c[0] + (u[i] - f->edge[b]) * c[1];
        u[i] = y < c[2] ? y : c[2];
    }
}

void nfl_flow_transform(const nfl_flow *flow, const double *x, double *z,
                        size_t n)
{
    double u[NFL_FLOW_BLOCK];
    const double scale = flow->scale, offset = flow->offset;
    for (size_t start = 0; start < n; start += NFL_FLOW_BLOCK) {
        size_t m = n - start < NFL_FLOW_BLOCK ? n - start : NFL_FLOW_BLOCK;
        const double *xb = x + start;
        if (flow->feature == 0) {
            for (size_t i = 0; i < m; i++)
                u[i] = unit(xb[i] * scale + offset);
        } else {
            for (size_t i = 0; i < m; i++)
                u[i] = unit(ordinal(xb[i]) * scale + offset);
        }
        apply_bins(flow, u, m);
        memcpy(z + start, u, m * sizeof(double));
    }
}
