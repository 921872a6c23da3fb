/* stats.c - structure statistics of the AFLI tree (nodes, buckets, depth). */
#include "afli.h"

typedef struct {
    uint64_t model_nodes, dense_nodes, buckets, max_depth, depth_sum;
} tally;

static void count_node(const afli_node *nd, uint64_t depth, tally *c)
{
    if (depth > c->max_depth && nd->size > 0)
        c->max_depth = depth;
    if (nd->dense) {
        c->dense_nodes++;
        c->depth_sum += depth * nd->size;
        return;
    }
    c->model_nodes++;
    const afli_node *last = NULL, *child;
    for (size_t pos = 0; pos < nd->capacity; pos++) {
        switch (nd->kinds[pos]) {
        case SLOT_ENTRY:
            c->depth_sum += depth;
            break;
        case SLOT_BUCKET:
            c->buckets++;
            c->depth_sum += depth * nd->slots[pos].bucket->count;
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
    tally c = {0, 0, 0, 0, 0};
    count_node(t->root, 1, &c);
    out->size = t->size;
    out->model_nodes = c.model_nodes;
    out->dense_nodes = c.dense_nodes;
    out->buckets = c.buckets;
    out->max_depth = c.max_depth;
    out->avg_depth = t->size ? (double)c.depth_sum / (double)t->size : 0.0;
    out->memory_bytes = t->memory;
    out->bucket_size = t->bucket_size;
    out->flow_enabled = t->flow != NULL;
}
