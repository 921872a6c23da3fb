/* flow.c - compiled flow inference (being written; no family accepted yet). */
#include <stdlib.h>

#include "nfl.h"

nfl_flow *nfl_flow_create(const double *params, size_t n_params)
{
    (void)params;
    (void)n_params;
    return NULL;
}

void nfl_flow_free(nfl_flow *flow)
{
    (void)flow;
}

void nfl_flow_transform(const nfl_flow *flow, const double *x, double *z,
                        size_t n)
{
    (void)flow;
    for (size_t i = 0; i < n; i++)
        z[i] = x[i];
}
