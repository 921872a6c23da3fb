/* batch.c - fused, prefetching batch lookups.
 *
 * A lone descent stalls on a cache miss at every level (the slot, then the
 * bucket or the child node).  The caller transforms a whole group of keys
 * first (the flow's block transform overlaps its own table loads); then the
 * group descends together, AMAC style: each key is a small state machine
 * that does one step, prefetches the memory its next step needs and yields
 * to the next key, so the misses of the whole group are in flight at once.
 * A key enters at the root with its slot already predicted and prefetched
 * (or, in a pieces model, its piece: the slot needs it).
 */
#include "afli.h"

#define GROUP 16

enum { AT_NODE, AT_PIECE, AT_SLOT, AT_BUCKET, DONE };

typedef struct {
    const afli_node *nd;
    const afli_slot *slot;
    size_t pos;
    int stage;
} probe;

static inline void prefetch(const void *p)
{
    __builtin_prefetch(p, 0, 3);
}

/* At a model node: prefetches the slot of the key (a pieces model: first
 * its piece). */
static void at_model(probe *p, uint64_t key, double z)
{
    const afli_node *nd = p->nd;
    if (nd->model == MODEL_PIECES && p->stage != AT_PIECE) {
        prefetch(&nd->pieces[afli_piece_of(nd, key)]);
        p->stage = AT_PIECE;
        return;
    }
    p->pos = afli_predict(nd, key, z);
    p->slot = &nd->slots[p->pos];
    prefetch(p->slot);
    p->stage = AT_SLOT;
}

/* Starts a descent at the root (its header is hot: every key reads it). */
static void enter(const afli_node *root, probe *p, uint64_t key, double z)
{
    p->nd = root;
    p->stage = AT_NODE;
    if (!root->dense)
        at_model(p, key, z);
}

/* One step of one key's descent; returns 1 when the key is resolved. */
static int step(probe *p, uint64_t key, double z, uint64_t **found)
{
    switch (p->stage) {
    case AT_NODE: {
        const afli_node *nd = p->nd;
        if (nd->dense) {
            size_t i = afli_lower_bound(nd->entries, nd->size, key);
            *found = i < nd->size && nd->entries[i].key == key
                         ? &nd->entries[i].value
                         : NULL;
            return 1;
        }
        at_model(p, key, z);
        return 0;
    }
    case AT_PIECE:
        at_model(p, key, z);
        return 0;
    case AT_SLOT:
        if (p->slot->key == key) { /* never the mark: see afli_mark */
            *found = (uint64_t *)&p->slot->value;
            return 1;
        }
        switch (afli_kind(p->nd, p->pos)) {
        case SLOT_BUCKET: {
            const afli_bucket *b = afli_pointer(p->slot);
            prefetch(b);
            prefetch((const char *)b + 64);
            p->stage = AT_BUCKET;
            return 0;
        }
        case SLOT_CHILD:
            p->nd = afli_pointer(p->slot);
            prefetch(p->nd);
            p->stage = AT_NODE;
            return 0;
        default:
            *found = NULL;
            return 1;
        }
    default: { /* AT_BUCKET */
        afli_bucket *b = afli_pointer(p->slot);
        *found = NULL;
        for (uint32_t i = 0; i < b->count; i++)
            if (b->entries[i].key == key)
                *found = &b->entries[i].value;
        return 1;
    }
    }
}

void afli_find_batch(const afli_tree *t, const uint64_t *keys, const double *z,
                     size_t n, int use_prefetch, uint64_t **found)
{
    if (!use_prefetch) {
        for (size_t i = 0; i < n; i++)
            found[i] = afli_find(t, keys[i], z[i]);
        return;
    }
    /* GROUP lanes; a lane whose key is resolved takes the next key. */
    probe p[GROUP];
    size_t lane_key[GROUP];
    size_t next = 0, active = 0;
    for (; active < GROUP && next < n; active++, next++) {
        lane_key[active] = next;
        enter(t->root, &p[active], keys[next], z[next]);
    }
    size_t lanes = active;
    while (active) {
        for (size_t j = 0; j < lanes; j++) {
            if (p[j].stage == DONE)
                continue;
            size_t k = lane_key[j];
            if (!step(&p[j], keys[k], z[k], &found[k]))
                continue;
            if (next < n) {
                lane_key[j] = next;
                enter(t->root, &p[j], keys[next], z[next]);
                next++;
            } else {
                p[j].stage = DONE;
                active--;
            }
        }
    }
}
