/* afli.h - the AFLI tree (internal to the C core).
 *
 * A model node maps a key linearly to one of `capacity` slots; a slot is
 * empty, one entry, a bucket of up to bucket_size entries, or a child node.
 * Runs of adjacent over-full slots share one child.  The model reads one of
 * two inputs, chosen per node at build: z = f(x), the flow's output (or the
 * key's number without a flow), or the encoded key's offset from the node's
 * lowest key, an exact integer until the last multiply.  z is a double of
 * the whole key: near 2^63 it cannot tell apart keys closer than 2048, and
 * past the flow's trained range it is clamped to one value, so a node whose
 * keys z cannot spread uses the key model, which separates any two keys of a
 * node whose span is small enough to need it.  A node whose keys sit in
 * tight clusters far apart (runs of ids spread over the 64-bit range), which
 * one line would send down one child per cluster, uses the pieces model: the
 * top bits of the key offset pick a piece, each piece a line of its own over
 * its own share of the slots (amplification slots a key), so the clusters
 * stay in the node.  (For float keys the encoded
 * key grows with the exponent and mantissa, about like log |x|: keys across
 * many magnitudes spread evenly on it.)  A dense node is a sorted entry
 * array of at most a few keys (an empty tree, a node that shrank).  Keys are
 * encoded (order-preserving uint64) and compared exactly; the model only
 * chooses the slot.  Both models are monotone in the key, so an in-order
 * walk of the slots visits keys in ascending order.
 *
 * Nothing here locks: callers (index.c, executor.c) hold the index's lock.
 */
#ifndef NFL_AFLI_H
#define NFL_AFLI_H

#include <stddef.h>
#include <stdint.h>

#include "nfl.h"

enum { SLOT_EMPTY = 0, SLOT_ENTRY = 1, SLOT_BUCKET = 2, SLOT_CHILD = 3 };
#define SLOT_TAG_MASK ((uint64_t)3) /* a tagged slot's word: pointer | SLOT_* */

#define AFLI_AMPLIFICATION 2.0 /* slots of a model node per key it is built on */

typedef struct {
    uint64_t key; /* encoded */
    uint64_t value;
} afli_entry;

typedef struct {
    uint32_t count;
    uint32_t capacity;    /* grows by two entries, up to the tree's bucket_size;
                             BUCKET_IN_ARENA set: part of its node's arena */
    afli_entry entries[]; /* sorted by key */
} afli_bucket;

#define BUCKET_IN_ARENA 0x80000000u

typedef struct afli_node afli_node;

/* A slot of a model node: an entry, or, when its key is the slot's mark
 * (afli_mark), a tagged word in `value`: 0 (empty), or a bucket or child
 * pointer (8-byte aligned) | SLOT_BUCKET or SLOT_CHILD. */
typedef afli_entry afli_slot;
typedef union {
    double z0;     /* z model: the z that maps to slot 0 */
    uint64_t base; /* key and pieces models: the encoded key at offset 0 */
} afli_origin;

enum { MODEL_Z = 0, MODEL_KEY = 1, MODEL_PIECES = 2 };

/* One piece of a pieces model: the keys afli_piece_of gives its index map
 * linearly onto slots [first, end) (an empty piece: end == first, its keys
 * go to slot first, the next piece's first). */
typedef struct {
    uint64_t base; /* the piece's lowest key at build: maps to slot first */
    double scale;  /* slots per unit of key offset from base */
    uint64_t first, end;
} afli_piece;

struct afli_node { /* what a lookup reads comes first: one cache line */
    afli_origin origin;  /* model: the input at offset 0 */
    double scale;        /* slots (pieces: pieces) per unit of z or offset */
    size_t capacity;     /* model: slots; dense: allocated entries */
    afli_slot *slots;    /* model: the slots */
    afli_piece *pieces;  /* pieces model: last_piece + 1 pieces */
    int dense;
    uint8_t model;       /* model: MODEL_* */
    uint32_t last_piece; /* pieces model: higher indexes read this piece */
    afli_entry *entries; /* dense: size sorted entries */
    uint64_t size;       /* entries in this subtree */
    uint64_t build_size; /* size when the subtree was last built */
    uint64_t lo, hi;     /* model: the smallest and largest key at build (fixed
                            until the next build: the slots' marks) */
    uint64_t outside;    /* inserts below lo or above hi since the build */
    void *arena;         /* model: the buckets made at build, in slot order */
    size_t arena_bytes;
};

typedef struct {
    afli_node *root;  /* never NULL: an empty tree is an empty dense node */
    nfl_flow *flow;   /* NULL: the identity transform */
    /* The flow is flat past its trained range: keys <= flat_lo all have z
     * z_lo, keys >= flat_hi all have z_hi (found once at init; the
     * transform skips the flow for them). */
    uint64_t flat_lo, flat_hi;
    double z_lo, z_hi;
    int key_type;
    int bucket_size;  /* 1..NFL_MAX_BUCKET */
    int bulk_load;    /* set while afli_build builds (see pieces_count) */
    size_t size;
    size_t memory;    /* bytes held by nodes, slots, buckets */
} afli_tree;

/* The piece of a key in a pieces model: monotone non-decreasing in it. */
static inline size_t afli_piece_of(const afli_node *nd, uint64_t key)
{
    uint64_t off = key > nd->origin.base ? key - nd->origin.base : 0;
    double i = (double)off * nd->scale;
    return i < (double)nd->last_piece ? (size_t)i : nd->last_piece;
}

/* The slot of line position p among slots [first, last]: NaN-safe. */
static inline size_t afli_slot_in(double p, size_t first, size_t last)
{
    if (!(p > 0.0))
        return first;
    if (p >= (double)(last - first))
        return last;
    return first + (size_t)p;
}

/* The slot of a key (encoded, with its z) in a model node: monotone
 * non-decreasing in the key, NaN-safe.  Each model returns on its own path:
 * the z and key models, most nodes, cost one multiply and the clamp. */
static inline size_t afli_predict(const afli_node *nd, uint64_t key, double z)
{
    if (nd->model == MODEL_Z)
        return afli_slot_in((z - nd->origin.z0) * nd->scale, 0, nd->capacity - 1);
    if (nd->model == MODEL_KEY)
        return afli_slot_in(key > nd->origin.base
                                ? (double)(key - nd->origin.base) * nd->scale
                                : 0.0,
                            0, nd->capacity - 1);
    const afli_piece *pc = &nd->pieces[afli_piece_of(nd, key)];
    if (pc->end == pc->first) /* empty: the next piece's first slot */
        return pc->first < nd->capacity ? pc->first : nd->capacity - 1;
    return afli_slot_in(key > pc->base ? (double)(key - pc->base) * pc->scale : 0.0,
                        pc->first, pc->end - 1);
}

/* The mark of slot pos: a key whose slot in this node is not pos (lo
 * predicts slot 0, hi another: a build separates them), so an entry never
 * has it and a slot holding it is tagged.  A lookup that lands on pos
 * compares its key with the slot's and meets the mark only in a tagged slot. */
static inline uint64_t afli_mark(const afli_node *nd, size_t pos)
{
    return pos ? nd->lo : nd->hi;
}

/* SLOT_* of slot pos.  (A mark tagged SLOT_ENTRY reads as an entry whose
 * key predicts another slot: afli_check reports it.) */
static inline int afli_kind(const afli_node *nd, size_t pos)
{
    const afli_slot *s = &nd->slots[pos];
    return s->key != afli_mark(nd, pos) ? SLOT_ENTRY : (int)(s->value & SLOT_TAG_MASK);
}

static inline void *afli_pointer(const afli_slot *s)
{
    return (void *)(uintptr_t)(s->value & ~SLOT_TAG_MASK);
}

static inline afli_bucket *afli_bucket_at(const afli_node *nd, size_t pos)
{
    return afli_pointer(&nd->slots[pos]);
}

static inline afli_node *afli_child_at(const afli_node *nd, size_t pos)
{
    return afli_pointer(&nd->slots[pos]);
}

/* Writes a tagged slot: p (NULL for SLOT_EMPTY) with its kind. */
static inline void afli_set_tagged(afli_node *nd, size_t pos, const void *p,
                                   int kind)
{
    nd->slots[pos].key = afli_mark(nd, pos);
    nd->slots[pos].value = (uint64_t)(uintptr_t)p | (uint64_t)kind;
}

/* The child at slot pos (a SLOT_CHILD) unless the walk just came from it:
 * adjacent slots share a child, and a walk over the slots visits it once.
 * *last is the child seen last (NULL at the start of the walk); NULL when
 * slot pos leads to the same child. */
static inline afli_node *afli_new_child(const afli_node *nd, size_t pos,
                                        const afli_node **last)
{
    afli_node *child = afli_child_at(nd, pos);
    if (child == *last)
        return NULL;
    *last = child;
    return child;
}

/* Slots of a model node over n keys (amplification <= 0: the tree's). */
size_t afli_capacity(size_t n, double amplification);
/* Fits nd's model (capacity set) mapping zmin to slot 0, zmax to the last. */
void afli_fit(afli_node *nd, double zmin, double zmax);
/* Fits a model node (capacity set) to n >= 2 entries sorted by unique key,
 * with their z, as a build does: z, key or pieces model, router capacity.
 * A pieces table comes from t (counted in t->memory); release it with
 * afli_release_pieces.  Allocation failures only narrow the choice. */
void afli_choose_model(afli_tree *t, afli_node *nd, const afli_entry *e,
                       const double *z, size_t n);
void afli_release_pieces(afli_tree *t, afli_node *nd);
/* Sets the tree's flow (key_type set first) and where it is flat. */
void afli_set_flow(afli_tree *t, nfl_flow *flow);

int afli_init(afli_tree *t, int key_type, nfl_flow *flow);
void afli_destroy(afli_tree *t);

/* z[i] = f(number(enc[i])), with infinities clamped to +-DBL_MAX. */
void afli_transform(const afli_tree *t, const uint64_t *enc, double *z,
                    size_t n);
double afli_z(const afli_tree *t, uint64_t enc);

/* Replaces the contents by n entries sorted by unique key, with their z. */
int afli_build(afli_tree *t, const afli_entry *sorted, const double *z,
               size_t n);

/* The stored value of key, or NULL. */
uint64_t *afli_find(const afli_tree *t, uint64_t key, double z);
/* afli_find for n keys at once (batch.c): with prefetch, the descents of a
 * group of keys advance together so their cache misses overlap. */
void afli_find_batch(const afli_tree *t, const uint64_t *keys, const double *z,
                     size_t n, int prefetch, uint64_t **found);
/* Binary search of a sorted run: the first entry with key >= key. */
size_t afli_lower_bound(const afli_entry *e, size_t n, uint64_t key);
/* Semantics of nfl_put / nfl_delete on encoded keys; when the key was there,
 * *old (if old is not NULL) receives the value it had. */
int afli_put(afli_tree *t, uint64_t key, double z, uint64_t value, int mode,
             uint64_t *old);
int afli_remove(afli_tree *t, uint64_t key, double z, uint64_t *old);

/* nfl_range / nfl_max on encoded keys (ordered.c). */
size_t afli_range(const afli_tree *t, uint64_t lo, uint64_t hi, int flags,
                  uint64_t *keys, uint64_t *values, size_t max);
int afli_max(const afli_tree *t, afli_entry *out);

/* Walks the subtree in key order into out (room for nd->size entries). */
size_t afli_collect(const afli_node *nd, afli_entry *out);

void afli_stats(const afli_tree *t, nfl_stats *out); /* stats.c */
/* nfl_check on the tree (check.c): 0, or 1 and the first violation in msg. */
int afli_check(const afli_tree *t, char *msg, size_t room);

#endif
