/* flow.c - compiled inference of the numerical normalizing flow.
 *
 * The flow is a stack of monotone piecewise-quadratic spline layers (the
 * "spline" family of nfl.flow) on one scalar feature of the key:
 *
 *     u_0 = clamp(scale * g(x) + offset, 0, 1)
 *     u_l = S_l(u_{l-1})          l = 1..L,   z = u_L in [0, 1]
 *
 * g is the identity (feature 0, "linear") or the order-preserving integer of
 * x's IEEE bits converted to double (feature 1, "log": a piecewise-linear
 * log2 scale with 2^52 steps per octave, exact order, no libm).
 *
 * S_l has K_l uniform bins over [0, 1] and a continuous piecewise-linear
 * density with knot densities d_0..d_K, so it is a C^1 monotone quadratic
 * spline (the integral of that density, normalized to end at 1).
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
 *     [6]  L, the number of layers, 1..NFL_FLOW_MAX_LAYERS
 *     [7 .. 7+L)          K_l, bins of layer l, integers 1..NFL_FLOW_MAX_BINS
 *     then for each layer K_l + 1 knot densities, finite and >= 0, with a
 *     positive finite integral.  Nothing may follow.
 *
 * Exact monotonicity in floating point, for any valid parameters.  Every
 * step is non-decreasing under IEEE round-to-nearest: multiplying by a
 * non-negative constant, adding a constant, int64->double conversion, min and
 * max.  Inside bin j the spline is evaluated as
 *     y = min(Y_j + (xi*(a + b*xi) + c*(1 - s*s)), Y_{j+1}),   s = 1 - xi,
 * with a, b, c >= 0: the increasing quadratic split into terms that are each
 * non-decreasing in xi (a product of non-negative non-decreasing factors, or
 * one minus a non-increasing square), added to Y_j (so y >= Y_j) and clamped
 * above.  The
 * knot values Y are a running sum of non-negative terms capped at 1, so
 * non-decreasing.  A larger input lands in the same bin (non-decreasing
 * there) or a later one (whose outputs are >= Y_{j+1}).  No exp, tanh or log
 * is involved.  The build uses -ffp-contract=off so no step is fused into an
 * FMA, and nfl/flow/reference.py (numba) runs the same operations in the
 * same order.
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
#define NFL_FLOW_MAX_LAYERS 8
#define NFL_FLOW_MAX_BINS (1 << 20)
#define NFL_FLOW_BLOCK 64 /* keys carried through the layers together */

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

typedef struct {
    int32_t bins;
    double fbins;
    const double *coef; /* (Y_j, a_j, b_j, c_j), j = 0..bins */
} flow_layer;

struct nfl_flow {
    int feature;
    double scale;
    double offset;
    int n_layers;
    flow_layer layer[NFL_FLOW_MAX_LAYERS];
    double coef[]; /* every layer's coefficients, back to back */
};

static int is_count(double v, double lo, double hi)
{
    return v >= lo && v <= hi && v == floor(v);
}

/* Turns a layer's knot densities d[0..k] into per-bin coefficients
 * (Y_j, a_j, b_j, c_j), j = 0..k (the last entry only carries Y_k): Y is the
 * running integral, normalized to end at 1 and capped there; with q the
 * normalized densities, a_j = min(q_j, q_j+1), b_j = max(dq, 0) / 2 and
 * c_j = max(-dq, 0) / 2 for dq = q_j+1 - q_j, so the quadratic of bin j is
 * Y_j + xi*(a + b*xi) + c*(1 - (1-xi)^2), every coefficient >= 0.  Returns 0
 * unless the integral and its inverse are positive and finite. */
static int prepare_layer(const double *d, int32_t k, double *out)
{
    double total = 0.0;
    for (int32_t j = 0; j < k; j++)
        total = total + (d[j] + d[j + 1]) * 0.5;
    double inv = 1.0 / total;
    if (!(total > 0.0) || !isfinite(total) || !isfinite(inv))
        return 0;
    double run = 0.0;
    for (int32_t j = 0; j <= k; j++) {
        double y = run * inv;
        double *o = out + 4 * (size_t)j;
        o[0] = y < 1.0 ? y : 1.0;
        o[1] = o[2] = o[3] = 0.0;
        if (j < k) {
            double q0 = d[j] * inv, q1 = d[j + 1] * inv;
            double dq = q1 - q0;
            o[1] = q0 < q1 ? q0 : q1;
            o[2] = dq > 0.0 ? dq * 0.5 : 0.0;
            o[3] = dq < 0.0 ? dq * -0.5 : 0.0;
            run = run + (d[j] + d[j + 1]) * 0.5;
        }
    }
    return 1;
}

nfl_flow *nfl_flow_create(const double *params, size_t n_params)
{
    if (!params || n_params < NFL_FLOW_HEADER + 2)
        return NULL;
    const double *p = params;
    if (p[0] != NFL_FLOW_MAGIC || p[1] != NFL_FLOW_FAMILY_SPLINE ||
        p[2] != NFL_FLOW_VERSION)
        return NULL;
    if (!(p[3] == 0.0 || p[3] == 1.0))
        return NULL;
    if (!(p[4] > 0.0) || !isfinite(p[4]) || !isfinite(p[5]))
        return NULL;
    if (!is_count(p[6], 1, NFL_FLOW_MAX_LAYERS))
        return NULL;
    int n_layers = (int)p[6];
    if (n_params < (size_t)NFL_FLOW_HEADER + (size_t)n_layers)
        return NULL;
    size_t knots = 0;
    for (int l = 0; l < n_layers; l++) {
        double k = p[NFL_FLOW_HEADER + l];
        if (!is_count(k, 1, NFL_FLOW_MAX_BINS))
            return NULL;
        knots += (size_t)k + 1;
    }
    if (n_params != (size_t)NFL_FLOW_HEADER + (size_t)n_layers + knots)
        return NULL;
    const double *dens = p + NFL_FLOW_HEADER + n_layers;
    for (size_t i = 0; i < knots; i++)
        if (!(dens[i] >= 0.0) || !isfinite(dens[i]))
            return NULL;

    nfl_flow *flow = malloc(sizeof(nfl_flow) + 4 * knots * sizeof(double));
    if (!flow)
        return NULL;
    flow->feature = (int)p[3];
    flow->scale = p[4];
    flow->offset = p[5];
    flow->n_layers = n_layers;
    double *out = flow->coef;
    for (int l = 0; l < n_layers; l++) {
        int32_t k = (int32_t)p[NFL_FLOW_HEADER + l];
        if (!prepare_layer(dens, k, out)) {
            free(flow);
            return NULL;
        }
        flow->layer[l].bins = k;
        flow->layer[l].fbins = (double)k;
        flow->layer[l].coef = out;
        dens += k + 1;
        out += 4 * ((size_t)k + 1);
    }
    return flow;
}

void nfl_flow_free(nfl_flow *flow)
{
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

/* clamp to [0, 1]; NaN goes to 0 so the bin index below is always defined. */
static inline double unit(double v)
{
    v = v > 0.0 ? v : 0.0;
    return v < 1.0 ? v : 1.0;
}

/* The bin of u in [0, 1] (the feature is clamped and every layer ends at
 * Y_K <= 1), so t <= K exactly and xi = t - j lies in [0, 1]. */
static inline int32_t bin_of(const flow_layer *ly, double u)
{
    int32_t j = (int32_t)(u * ly->fbins);
    return j < ly->bins ? j : ly->bins - 1;
}

/* One spline layer at u, in bin j.  y >= Y_j needs no clamp: a non-negative
 * sum is added to Y_j.  Only the rounding above Y_j+1 is clamped. */
static inline double spline(const flow_layer *ly, double u, int32_t j)
{
    double xi = u * ly->fbins - (double)j;
    const double *c = ly->coef + 4 * (size_t)j;
    double s = 1.0 - xi;
    double y = c[0] + (xi * (c[1] + c[2] * xi) + c[3] * (1.0 - s * s));
    return y < c[4] ? y : c[4];
}

void nfl_flow_transform(const nfl_flow *flow, const double *x, double *z,
                        size_t n)
{
    double u[NFL_FLOW_BLOCK];
    int32_t bin[NFL_FLOW_BLOCK];
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
        for (int l = 0; l < flow->n_layers; l++) {
            const flow_layer *ly = &flow->layer[l];
            for (size_t i = 0; i < m; i++) {
                bin[i] = bin_of(ly, u[i]);
                PREFETCH(ly->coef + 4 * (size_t)bin[i]);
            }
            for (size_t i = 0; i < m; i++)
                u[i] = spline(ly, u[i], bin[i]);
        }
        memcpy(z + start, u, m * sizeof(double));
    }
}
