/* check.c - structural self-check of the AFLI tree and the root's slot counts.
 *
 * afli_check walks the whole tree once, in key order, and reports the first
 * broken invariant (the tree's counterpart of sortedcontainers' _check and
 * ALEX's validate_structure); tests run it after every step of their op
 * sequences.  It allocates nothing, so it also runs where allocations fail.
 * nfl_slot_counts is the conflict count the auto switch, flow training and
 * `nfl analyze` judge a tree by: it fits the same model the build fits, so
 * what they judge is the tree that gets built.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afli.h"
#include "index.h"
#include "scratch.h"

/* The slots of an ancestor model node that hold the subtree being checked:
 * each of its keys must predict one of them there. */
typedef struct bound {
    const afli_node *nd;
    size_t first, last;
    const struct bound *up;
} bound;

typedef struct {
    const afli_tree *t;
    char *msg;
    size_t room;
    int broken;     /* 1 once a violation is written */
    size_t seen;    /* entries met so far, in walk order */
    uint64_t prev;  /* the last of them: the walk meets keys in ascending order */
    double prev_z;
} checker;

/* Records the first violation; returns 1 so callers can `return fail(...)`. */
static int fail(checker *c, unsigned depth, const char *fmt, ...)
{
    if (c->broken)
        return 1;
    c->broken = 1;
    int at = snprintf(c->msg, c->room, "depth %u: ", depth);
    if (at >= 0 && (size_t)at < c->room) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg + at, c->room - (size_t)at, fmt, ap);
        va_end(ap);
    }
    return 1;
}

/* One entry, met in walk order: above the previous key, with a z no lower
 * (the transform is monotone), and in its slots in every ancestor. */
static int check_entry(checker *c, unsigned depth, const afli_entry *e,
                       const bound *path)
{
    double z = afli_z(c->t, e->key);
    if (c->seen && !(c->prev < e->key))
        return fail(c, depth, "entry %zu: keys not strictly ascending", c->seen);
    if (c->seen && !(c->prev_z <= z))
        return fail(c, depth, "entry %zu: the transform decreases", c->seen);
    c->seen++;
    c->prev = e->key;
    c->prev_z = z;
    unsigned level = depth;
    for (const bound *b = path; b; b = b->up, level--) {
        size_t p = afli_predict(b->nd, e->key, z);
        if (p < b->first || p > b->last)
            return fail(c, level, "entry %zu is held in slots %zu..%zu but "
                        "predicts slot %zu", c->seen - 1, b->first, b->last, p);
    }
    return 0;
}

static int check_run(checker *c, unsigned depth, const afli_entry *e, size_t n,
                     const bound *path)
{
    for (size_t i = 0; i < n; i++)
        if (check_entry(c, depth, e + i, path))
            return 1;
    return 0;
}

static int check_node(checker *c, const afli_node *nd, unsigned depth,
                      const bound *path);

static int check_bucket(checker *c, const afli_bucket *b, size_t pos,
                        unsigned depth, const bound *path)
{
    if (!b)
        return fail(c, depth, "slot %zu: NULL bucket", pos);
    size_t cap = b->capacity & ~BUCKET_IN_ARENA;
    if (b->count < 2 || b->count > cap || cap > (size_t)c->t->bucket_size)
        return fail(c, depth, "slot %zu: bucket of %u entries, capacity %zu, "
                    "bucket size %d", pos, b->count, cap, c->t->bucket_size);
    return check_run(c, depth, b->entries, b->count, path);
}

/* A child over the slots [pos, last] of nd: check it with that bound. */
static int check_child(checker *c, const afli_node *nd, size_t pos, size_t last,
                       unsigned depth, const bound *path)
{
    const afli_node *child = afli_child_at(nd, pos);
    if (!child)
        return fail(c, depth, "slot %zu: NULL child", pos);
    bound b = {nd, pos, last, path};
    return check_node(c, child, depth + 1, &b);
}

/* A pieces table: pieces in slot order, each over slots [first, end) with a
 * finite scale >= 0, together exactly the node's slots. */
static int check_pieces(checker *c, const afli_node *nd, unsigned depth)
{
    const afli_piece *pc = nd->pieces;
    if (!pc)
        return fail(c, depth, "pieces model without a table");
    for (size_t k = 0; k <= nd->last_piece; k++)
        if (pc[k].first != (k ? pc[k - 1].end : 0) || pc[k].end < pc[k].first ||
            !(pc[k].scale >= 0.0 && isfinite(pc[k].scale)))
            return fail(c, depth, "piece %zu: slots %llu..%llu after %llu, scale %g",
                        k, (unsigned long long)pc[k].first,
                        (unsigned long long)pc[k].end,
                        (unsigned long long)(k ? pc[k - 1].end : 0), pc[k].scale);
    if (pc[nd->last_piece].end != nd->capacity)
        return fail(c, depth, "pieces end at slot %llu of %zu",
                    (unsigned long long)pc[nd->last_piece].end, nd->capacity);
    return 0;
}

static int check_model(checker *c, const afli_node *nd, unsigned depth,
                       const bound *path)
{
    static const char *const names[] = {"z", "key", "pieces"};
    if (nd->model > MODEL_PIECES)
        return fail(c, depth, "model node: unknown model %u", nd->model);
    if (!(nd->capacity >= 2 && (nd->model != MODEL_Z || isfinite(nd->origin.z0)) &&
          nd->scale > 0.0 && isfinite(nd->scale) &&
          (nd->model == MODEL_PIECES) == (nd->pieces != NULL)))
        return fail(c, depth, "model node: capacity %zu, %s model, scale %g, "
                    "pieces %p (needs >= 2 slots, a finite z0, finite scale > 0, "
                    "a table for the pieces model only)",
                    nd->capacity, names[nd->model], nd->scale, (const void *)nd->pieces);
    if (nd->model == MODEL_PIECES && check_pieces(c, nd, depth))
        return 1;
    size_t lo_pos = afli_predict(nd, nd->lo, afli_z(c->t, nd->lo));
    size_t hi_pos = afli_predict(nd, nd->hi, afli_z(c->t, nd->hi));
    if (lo_pos != 0 || hi_pos == 0) /* the slots' marks (afli_mark) */
        return fail(c, depth, "model node: lo predicts slot %zu, hi slot %zu "
                    "(needs 0 and another)", lo_pos, hi_pos);
    size_t before = c->seen;
    for (size_t pos = 0; pos < nd->capacity; pos++) {
        const afli_slot *s = &nd->slots[pos];
        bound here = {nd, pos, pos, path};
        int bad = 0;
        int kind = afli_kind(nd, pos);
        switch (kind) {
        case SLOT_EMPTY:
            if (s->value != 0)
                bad = fail(c, depth, "slot %zu: empty with word %#llx", pos,
                           (unsigned long long)s->value);
            break;
        case SLOT_ENTRY: /* an entry holding the mark predicts another slot */
            bad = check_entry(c, depth, s, &here);
            break;
        case SLOT_BUCKET:
            bad = check_bucket(c, afli_bucket_at(nd, pos), pos, depth, &here);
            break;
        case SLOT_CHILD: {
            size_t last = pos; /* the run of slots sharing this child */
            while (last + 1 < nd->capacity && afli_kind(nd, last + 1) == SLOT_CHILD &&
                   afli_child_at(nd, last + 1) == afli_child_at(nd, pos))
                last++;
            bad = check_child(c, nd, pos, last, depth, path);
            pos = last;
            break;
        }
        default:
            bad = fail(c, depth, "slot %zu: unknown kind %d", pos, kind);
        }
        if (bad)
            return 1;
    }
    if (c->seen - before != nd->size)
        return fail(c, depth, "model node records %llu entries, its slots hold %zu",
                    (unsigned long long)nd->size, c->seen - before);
    return 0;
}

static int check_node(checker *c, const afli_node *nd, unsigned depth,
                      const bound *path)
{
    if (!nd->dense)
        return check_model(c, nd, depth, path);
    if (nd->size > nd->capacity)
        return fail(c, depth, "dense node of %llu entries in room for %zu",
                    (unsigned long long)nd->size, nd->capacity);
    return check_run(c, depth, nd->entries, nd->size, path);
}

int afli_check(const afli_tree *t, char *msg, size_t room)
{
    checker c = {t, msg, room, 0, 0, 0, 0.0};
    if (room)
        msg[0] = '\0';
    if (t->bucket_size < 1 || t->bucket_size > NFL_MAX_BUCKET)
        return fail(&c, 0, "bucket size %d outside 1..%d", t->bucket_size,
                    NFL_MAX_BUCKET);
    if (t->root->size != t->size)
        return fail(&c, 0, "tree records %zu entries, its root %llu", t->size,
                    (unsigned long long)t->root->size);
    return check_node(&c, t->root, 1, NULL);
}

int nfl_check(nfl_index *idx, char *msg, size_t room)
{
    index_read_begin(idx);
    int rc = afli_check(&idx->tree, msg, room);
    index_read_end(idx);
    return rc;
}

/* ---- slot counts ------------------------------------------------------- */

size_t nfl_model_capacity(size_t n, double amplification)
{
    return afli_capacity(n, amplification);
}

int nfl_slot_counts(int key_type, const nfl_flow *flow, const uint64_t *keys,
                    size_t n, double amplification, uint32_t *per_slot)
{
    afli_tree t = {0};
    t.key_type = key_type;
    t.bucket_size = NFL_DEFAULT_BUCKET;
    t.bulk_load = 1; /* the root a bulk load builds */
    afli_set_flow(&t, (nfl_flow *)flow); /* the transform only reads it */
    afli_node model = {0};
    model.capacity = afli_capacity(n, amplification);
    memset(per_slot, 0, model.capacity * sizeof *per_slot);
    if (n == 0)
        return NFL_OK;
    /* The bulk load's steps, in one scratch block the load then reuses. */
    afli_entry *e = index_sorted_entries(key_type, keys, NULL, n);
    if (!e)
        return NFL_ENOMEM;
    double *z = (double *)(e + n);
    index_entries_z(&t, e, n, z); /* a flow not monotone here is counted as it is */
    int rc = NFL_OK;
    if (n >= 2 && model.capacity >= 2) { /* the model the root's build fits */
        afli_choose_model(&t, &model, e, z, n);
        rc = model.model == MODEL_PIECES ? NFL_SLOTS_PIECES : NFL_OK;
        for (size_t i = 0; i < n; i++)
            per_slot[afli_predict(&model, e[i].key, z[i])]++;
        afli_release_pieces(&t, &model);
    } else {
        per_slot[0] = (uint32_t)n;
    }
    scratch_give(e, 1); /* for the bulk load that follows */
    return rc;
}

size_t nfl_root_slot_counts(nfl_index *idx, uint32_t *per_slot, size_t room)
{
    index_read_begin(idx);
    const afli_tree *t = &idx->tree;
    const afli_node *root = t->root;
    size_t capacity = root->dense ? 1 : root->capacity, n = 0;
    afli_entry *e = malloc((t->size ? t->size : 1) * sizeof *e);
    if (room < capacity || !e) {
        capacity = 0;
    } else if (root->dense) {
        per_slot[0] = (uint32_t)root->size;
    } else { /* each key's slot by the root's model, as nfl_slot_counts finds it */
        memset(per_slot, 0, capacity * sizeof *per_slot);
        n = afli_collect(root, e);
        for (size_t i = 0; i < n; i++)
            per_slot[afli_predict(root, e[i].key, afli_z(t, e[i].key))]++;
    }
    index_read_end(idx);
    free(e);
    return capacity;
}
