/* stats.c - structure statistics of the AFLI tree (nodes, buckets, depth,
 * the dense nodes and depth histogram that show a degenerate tree). */
#include <string.h>

#include "afli.h"

typedef struct {
    uint64_t model_nodes, dense_nodes, buckets, max_depth, depth_sum;
    uint64_t dense_keys, max_dense;
    uint64_t depth_keys[NFL_DEPTH_BINS];
} tally;

/* Counts `keys` entries at depth (root = 1). */
static void at_depth(tally *c, uint64_t depth, uint64_t keys)
{
    c->depth_sum += depth * keys;
    c->depth_keys[depth < NFL_DEPTH_BINS ? depth - 1 : NFL_DEPTH_BINS - 1] += keys;
}

static void count_node(const afli_node *nd, uint64_t depth, tally *c)
{
    if (depth > c->max_depth && nd->size > 0)
        c->max_depth = depth;
    if (nd->dense) {
        c->dense_nodes++;
        c->dense_keys += nd->size;
        if (nd->size > c->max_dense)
            c->max_dense = nd->size;
        at_depth(c, depth, nd->size);
        return;
    }
    c->model_nodes++;
    const afli_node *last = NULL, *child;
    for (size_t pos = 0; pos < nd->capacity; pos++) {
        switch (afli_kind(nd, pos)) {
        case SLOT_ENTRY:
            at_depth(c, depth, 1);
            break;
        case SLOT_BUCKET:
            c->buckets++;
            at_depth(c, depth, afli_bucket_at(nd, pos)->count);
            break;
        case SLOT_CHILD:
            if ((child = afli_new_child(nd, pos, &last)))
                count_node(child, depth + 1, c);
            break;
        }
    }
}

void afli_stats(const afli_tree *t, nfl_stats *out)
{
    tally c;
    memset(&c, 0, sizeof c);
    count_node(t->root, 1, &c);
    out->size = t->size;
    out->model_nodes = c.model_nodes;
    out->dense_nodes = c.dense_nodes;
    out->buckets = c.buckets;
    out->max_depth = c.max_depth;
    out->avg_depth = t->size ? (double)c.depth_sum / (double)t->size : 0.0;
    out->dense_keys = c.dense_keys;
    out->max_dense = c.max_dense;
    memcpy(out->depth_keys, c.depth_keys, sizeof c.depth_keys);
    out->memory_bytes = t->memory;
    out->bucket_size = t->bucket_size;
    out->flow_enabled = t->flow != NULL;
}
