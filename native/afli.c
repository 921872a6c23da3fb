/* afli.c - building, searching and changing the AFLI tree.
 *
 * Build: a model node fits z linearly onto capacity = amplification * n slots
 * (smallest z to slot 0, largest to the last slot).  A slot that receives
 * one key holds an entry, up to bucket_size keys a bucket, more a child node
 * built recursively; adjacent over-full slots share one child.  The model
 * reads z where z spreads the keys (the flow's point) and the key offset
 * where it does not (see afli.h); a node of fewer than two keys is dense.
 *
 * Insert turns an entry into a bucket, a full bucket into a child node; a
 * subtree that grew or shrank by REBUILD_FACTOR since it was built is rebuilt
 * in place, which bounds depth under skewed inserts (LIPP's adjustment).  So
 * is a node below the root that took OUTSIDE_SHARE of its build size in keys
 * beyond the range it was fitted to (ascending or descending inserts, keys
 * past the flow's trained range): those all land in its first or last slot,
 * and would otherwise stack a chain of small children there.  Every rebuild
 * of n keys follows at least n / 2 inserts or deletes below it, so its cost
 * is amortised.  A dense node becomes a model node when it fills its first
 * allocation, so no insert pays for a long sorted array.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "afli.h"
#include "keys.h"
#include "scratch.h"

#define REBUILD_FACTOR 4
#define REBUILD_MIN_SIZE 64
#define DENSE_MIN_CAPACITY 4
#define DENSE_MAX_SIZE 8 /* a dense node this full is rebuilt as a model node */
#define OUTSIDE_SHARE 2  /* rebuild once build_size / OUTSIDE_SHARE keys fell outside */
#define OUTSIDE_MIN 8    /* ... and at least this many */
#define OUTSIDE_DENSER 16.0 /* outside keys this much denser: a child of their own */
#define ROUTER_SLOTS 32  /* slots per unit of a node that sends most keys down */
#define PIECES_KEPT_DOWN 7 /* a pieces model is kept if it sends at most this
                              many tenths of the keys the line sends down: on
                              osm (1M / 4M keys) pieces that sent 53 / 64 % as
                              many made depth 1.36 / 1.49 (2.28 / 2.26 as a
                              router), 98 / 87 B a key (105 / 107), get_many
                              10 % faster */
#define Z_GOOD_SHARE 8   /* a z model with at most n / Z_GOOD_SHARE keys in
                            over-full slots is kept without trying the key model */
#define PIECES_MIN_KEYS 1024 /* smaller router nodes stay one line */
#define KEYS_PER_PIECE 4
#define PIECES_PER_UNIT 16   /* pieces per unit of the line that found the clusters:
                                few clusters share a piece */

/* ---- memory, counted so stats() can report it ---------------------------- */

#define SMALL_PAGE 4096
#define MMAP_MIN_BYTES ((size_t)128 << 10) /* malloc maps blocks this large */

/* The bytes an allocation of `bytes` takes from the heap, as glibc's malloc
 * lays it out: an 8-byte header, 16-byte alignment and a 32-byte minimum
 * (a 16-byte bucket holds 32), or whole pages for a block it maps on its
 * own.  A formula, not malloc_usable_size: the same tree counts the same. */
static size_t held_bytes(size_t bytes)
{
    if (bytes >= MMAP_MIN_BYTES)
        return (bytes + 2 * sizeof(size_t) + SMALL_PAGE - 1) & ~(size_t)(SMALL_PAGE - 1);
    size_t chunk = (bytes + sizeof(size_t) + 15) & ~(size_t)15;
    return chunk < 32 ? 32 : chunk;
}

static void *tree_alloc(afli_tree *t, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (p)
        t->memory += held_bytes(bytes);
    return p;
}

static void *tree_calloc(afli_tree *t, size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size);
    if (p)
        t->memory += held_bytes(count * size);
    return p;
}

static void tree_release(afli_tree *t, void *p, size_t bytes)
{
    if (p) {
        t->memory -= held_bytes(bytes);
        free(p);
    }
}

static size_t bucket_capacity(const afli_bucket *b)
{
    return b->capacity & ~BUCKET_IN_ARENA;
}

static size_t bucket_bytes(size_t capacity)
{
    return sizeof(afli_bucket) + capacity * sizeof(afli_entry);
}

/* Frees a bucket made on its own; one in an arena goes with its node. */
static void bucket_release(afli_tree *t, afli_bucket *b)
{
    if (!(b->capacity & BUCKET_IN_ARENA))
        tree_release(t, b, bucket_bytes(bucket_capacity(b)));
}

/* ---- transform ------------------------------------------------------------ */

/* z of one key through the whole flow (or none), infinities clamped. */
static double flow_z(const afli_tree *t, uint64_t enc)
{
    double z = nfl_key_number(t->key_type, enc);
    if (t->flow)
        nfl_flow_transform(t->flow, &z, &z, 1);
    return z > DBL_MAX ? DBL_MAX : z < -DBL_MAX ? -DBL_MAX : z;
}

/* The last encoded key in [lo, hi] whose z is that of lo (z is monotone). */
static uint64_t flat_end(const afli_tree *t, uint64_t lo, uint64_t hi, int down)
{
    double z = flow_z(t, down ? hi : lo);
    while (hi - lo > 1) { /* invariant: the flat side's end is in [lo, hi] */
        uint64_t mid = lo + (hi - lo) / 2;
        if ((flow_z(t, mid) == z) != down)
            lo = mid;
        else
            hi = mid;
    }
    return down ? hi : lo;
}

/* Finds where the flow is flat at both ends of the key range. */
static void find_flat_ends(afli_tree *t)
{
    uint64_t lo = 0, hi = UINT64_MAX; /* the valid codes: no NaN */
    if (t->key_type == NFL_KEY_FLOAT64) {
        lo = nfl_key_encode(NFL_KEY_FLOAT64, 0xFFF0000000000000ull); /* -inf */
        hi = nfl_key_encode(NFL_KEY_FLOAT64, 0x7FF0000000000000ull); /* +inf */
    }
    t->z_lo = flow_z(t, lo);
    t->z_hi = flow_z(t, hi);
    t->flat_lo = flat_end(t, lo, hi, 0);
    t->flat_hi = flat_end(t, lo, hi, 1);
}

/* z of keys some of which lie where the flow is flat: the flow runs only on
 * the others, gathered a block at a time.  z holds the keys' numbers. */
static void flow_past_range(const afli_tree *t, const uint64_t *enc, double *z,
                            size_t n)
{
    double x[256];
    size_t at[256];
    for (size_t start = 0; start < n; start += 256) {
        size_t m = n - start < 256 ? n - start : 256, k = 0;
        for (size_t i = start; i < start + m; i++) {
            if (enc[i] <= t->flat_lo) {
                z[i] = t->z_lo;
            } else if (enc[i] >= t->flat_hi) {
                z[i] = t->z_hi;
            } else {
                x[k] = z[i];
                at[k++] = i;
            }
        }
        nfl_flow_transform(t->flow, x, x, k);
        for (size_t i = 0; i < k; i++)
            z[at[i]] = x[i];
    }
}

void afli_transform(const afli_tree *t, const uint64_t *enc, double *z,
                    size_t n)
{
    size_t inside = 0;
    for (size_t i = 0; i < n; i++) {
        z[i] = nfl_key_number(t->key_type, enc[i]);
        inside += (enc[i] > t->flat_lo) & (enc[i] < t->flat_hi);
    }
    if (t->flow && inside == n) /* the usual case: one pass, in place */
        nfl_flow_transform(t->flow, z, z, n);
    else if (t->flow)
        flow_past_range(t, enc, z, n);
    for (size_t i = 0; i < n; i++) {
        if (z[i] > DBL_MAX)
            z[i] = DBL_MAX;
        else if (z[i] < -DBL_MAX)
            z[i] = -DBL_MAX;
    }
}

double afli_z(const afli_tree *t, uint64_t enc)
{
    double z;
    afli_transform(t, &enc, &z, 1);
    return z;
}

/* ---- node lifetime --------------------------------------------------------- */

static void node_release(afli_tree *t, afli_node *nd);

/* Frees what a node owns (slots, buckets, children) but not the node. */
static void node_clear(afli_tree *t, afli_node *nd)
{
    if (nd->dense) {
        tree_release(t, nd->entries, nd->capacity * sizeof(afli_entry));
    } else {
        const afli_node *last = NULL;
        for (size_t i = 0; i < nd->capacity; i++) {
            afli_node *child;
            int kind = afli_kind(nd, i);
            if (kind == SLOT_BUCKET)
                bucket_release(t, afli_bucket_at(nd, i));
            else if (kind == SLOT_CHILD && (child = afli_new_child(nd, i, &last)))
                node_release(t, child);
        }
        tree_release(t, nd->slots, nd->capacity * sizeof(afli_slot));
        tree_release(t, nd->arena, nd->arena_bytes);
        afli_release_pieces(t, nd);
    }
}

static void node_release(afli_tree *t, afli_node *nd)
{
    node_clear(t, nd);
    tree_release(t, nd, sizeof *nd);
}

static afli_node *dense_node(afli_tree *t, const afli_entry *e, size_t n)
{
    afli_node *nd = tree_calloc(t, 1, sizeof *nd);
    if (!nd)
        return NULL;
    nd->dense = 1;
    nd->capacity = n < DENSE_MIN_CAPACITY ? DENSE_MIN_CAPACITY : n;
    nd->entries = tree_alloc(t, nd->capacity * sizeof(afli_entry));
    if (!nd->entries) {
        tree_release(t, nd, sizeof *nd);
        return NULL;
    }
    if (n)
        memcpy(nd->entries, e, n * sizeof(afli_entry));
    nd->size = nd->build_size = n;
    return nd;
}

size_t afli_capacity(size_t n, double amplification)
{
    if (!(amplification > 0.0))
        amplification = AFLI_AMPLIFICATION;
    size_t capacity = (size_t)ceil((double)n * amplification);
    return capacity ? capacity : 1;
}

void afli_fit(afli_node *nd, double zmin, double zmax)
{
    double span = zmax - zmin;
    double last = (double)(nd->capacity - 1);
    nd->model = MODEL_Z;
    nd->origin.z0 = zmin;
    if (isfinite(span))
        nd->scale = last / span;
    else /* the keys span more than DBL_MAX: halve to stay finite */
        nd->scale = (last * 0.5) / (zmax * 0.5 - zmin * 0.5);
    if (!isfinite(nd->scale)) /* a subnormal span: no separation, not a chain */
        nd->scale = DBL_MAX;
}

/* Fits the key model mapping keys [lo, hi] (lo < hi) onto the node's slots:
 * the offset from lo is exact; only its product with scale rounds. */
static void fit_keys(afli_node *nd, uint64_t lo, uint64_t hi)
{
    nd->model = MODEL_KEY;
    nd->origin.base = lo;
    nd->scale = (double)(nd->capacity - 1) / (double)(hi - lo);
}

/* The end of the run of keys from i that share i's slot. */
static size_t run_end(const afli_node *nd, const afli_entry *e, const double *z,
                      size_t i, size_t n)
{
    size_t pos = afli_predict(nd, e[i].key, z[i]), j = i + 1;
    while (j < n && afli_predict(nd, e[j].key, z[j]) == pos)
        j++;
    return j;
}

/* How a node's model spreads its keys: the keys it puts in over-full slots
 * (they go one level down), and the units it must place, a key in a slot
 * of its own or a bucket, a whole over-full slot (its child) as one. */
typedef struct {
    size_t overfull, units;
} spread;

static spread spread_of(const afli_node *nd,
                        const afli_entry *e, const double *z, size_t n)
{
    spread s = {0, 0};
    for (size_t i = 0, j; i < n; i = j) {
        j = run_end(nd, e, z, i, n);
        if (j - i > NFL_DEFAULT_BUCKET) { /* not the tree's bucket size: the
                                             switch judges before choosing it */
            s.overfull += j - i;
            s.units++;
        } else {
            s.units += j - i;
        }
    }
    return s;
}

/* Fits the model of the node's current capacity: on z or on the key offset. */
static void refit(afli_node *nd, int by_key, const afli_entry *e,
                  const double *z, size_t n)
{
    if (by_key)
        fit_keys(nd, e[0].key, e[n - 1].key);
    else
        afli_fit(nd, z[0], z[n - 1]);
}

/* Whether the model puts the node's first and last key in different slots
 * (else a child would get every key again: a chain without end). */
static int separates(const afli_node *nd, const afli_entry *e, const double *z,
                     size_t n)
{
    return afli_predict(nd, e[0].key, z[0]) != afli_predict(nd, e[n - 1].key, z[n - 1]);
}

void afli_release_pieces(afli_tree *t, afli_node *nd)
{
    if (nd->pieces)
        tree_release(t, nd->pieces, ((size_t)nd->last_piece + 1) * sizeof(afli_piece));
    nd->pieces = NULL;
}

/* Fits the pieces model over the node's capacity and n keys (2 <= n <=
 * UINT32_MAX): `count` pieces of equal key width, each a line over its own
 * keys onto its share of the slots, in proportion to its keys.  Returns 0
 * (the model untouched) if the table cannot be allocated. */
static void fill_pieces(afli_node *nd, const afli_entry *e, size_t n);

/* Pieces of a pieces model over n keys whose line made `units` units:
 * PIECES_PER_UNIT a unit.  A rebuild under inserts takes at most one per
 * KEYS_PER_PIECE keys (a piece costs two slots' bytes; keys streaming past a
 * node's end made tables of several pieces a key); a bulk load does not (on
 * osm the cap doubled the depth below the root, 1.28 -> 2.24, and cut batch
 * reads by a fifth). */
static size_t pieces_count(const afli_tree *t, size_t n, size_t units)
{
    size_t count = PIECES_PER_UNIT * units, most = n / KEYS_PER_PIECE;
    if (t->bulk_load)
        return count;
    return count < most ? count : most > 0 ? most : 1;
}

static int fit_pieces(afli_tree *t, afli_node *nd, const afli_entry *e,
                      size_t n, size_t count)
{
    afli_piece *pc = tree_alloc(t, count * sizeof *pc);
    if (!pc)
        return 0;
    nd->model = MODEL_PIECES;
    nd->origin.base = e[0].key;
    nd->scale = (double)count / ((double)(e[n - 1].key - e[0].key) + 1.0);
    nd->last_piece = (uint32_t)(count - 1);
    nd->pieces = pc;
    fill_pieces(nd, e, n);
    return 1;
}

/* Spreads a pieces model's slots over its pieces, in proportion to their
 * keys (the table and the key-to-piece map set). */
static void fill_pieces(afli_node *nd, const afli_entry *e, size_t n)
{
    afli_piece *pc = nd->pieces;
    size_t count = (size_t)nd->last_piece + 1;
    size_t per = nd->capacity / n, rest = nd->capacity % n; /* slots a key */
    for (size_t k = 0, i = 0; k < count; k++) {
        size_t j = i; /* the piece's keys: [i, j) */
        while (j < n && afli_piece_of(nd, e[j].key) == k)
            j++;
        pc[k].first = i * per + i * rest / n;
        pc[k].end = j * per + j * rest / n;
        pc[k].base = j > i ? e[i].key : e[0].key;
        pc[k].scale = j - i >= 2 && pc[k].end - pc[k].first >= 2
                          ? (double)(pc[k].end - pc[k].first - 1) /
                                (double)(e[j - 1].key - e[i].key)
                          : 0.0;
        i = j;
    }
}

/* Fits the node's model to its n >= 2 keys: on z when the flow (or a float
 * key's number) spreads them well, else on the key offset if that puts at
 * most half as many keys in over-full slots.  Integer keys without a flow
 * always use the key offset: it is the same line as z, without z's
 * rounding.  A node whose model sends most keys down (clusters far apart)
 * takes the pieces model if that sends at most 70 % as many down;
 * otherwise it is mostly a router: it keeps ROUTER_SLOTS slots per unit,
 * not AFLI_AMPLIFICATION per key, which would be nearly all empty. */
void afli_choose_model(afli_tree *t, afli_node *nd, const afli_entry *e,
                       const double *z, size_t n)
{
    int z_usable = (t->flow || t->key_type == NFL_KEY_FLOAT64) && z[n - 1] > z[0];
    spread zs = {n, n}, ks;
    nd->pieces = NULL;
    if (z_usable) {
        afli_fit(nd, z[0], z[n - 1]);
        zs = spread_of(nd, e, z, n);
        if (zs.overfull <= n / Z_GOOD_SHARE && separates(nd, e, z, n))
            return;
    }
    fit_keys(nd, e[0].key, e[n - 1].key);
    ks = spread_of(nd, e, z, n);
    int by_key = !z_usable || 2 * ks.overfull <= zs.overfull;
    if (!by_key) {
        afli_fit(nd, z[0], z[n - 1]);
        if (!separates(nd, e, z, n)) {
            by_key = 1;
            fit_keys(nd, e[0].key, e[n - 1].key);
        }
    }
    spread chosen = by_key ? ks : zs;
    if (2 * chosen.overfull <= n)
        return;
    if (n >= PIECES_MIN_KEYS && n <= UINT32_MAX / PIECES_PER_UNIT &&
        fit_pieces(t, nd, e, n, pieces_count(t, n, chosen.units))) {
        if (10 * spread_of(nd, e, z, n).overfull <= PIECES_KEPT_DOWN * chosen.overfull &&
            separates(nd, e, z, n))
            return;
        afli_release_pieces(t, nd);
        refit(nd, by_key, e, z, n);
    }
    size_t room = ROUTER_SLOTS * chosen.units, full = nd->capacity;
    if (room >= full)
        return;
    nd->capacity = room < DENSE_MIN_CAPACITY ? DENSE_MIN_CAPACITY : room;
    refit(nd, by_key, e, z, n);
    if (!separates(nd, e, z, n)) {
        nd->capacity = full;
        refit(nd, by_key, e, z, n);
    }
}

/* Fills a bucket of n sorted entries with room for `room` in all. */
static afli_bucket *bucket_init(void *mem, const afli_entry *e, size_t n,
                                size_t room, uint32_t flags)
{
    afli_bucket *b = mem;
    b->count = (uint32_t)n;
    b->capacity = (uint32_t)room | flags;
    memcpy(b->entries, e, n * sizeof(afli_entry));
    return b;
}

/* A bucket on its own, made by an insert. */
static afli_bucket *bucket_new(afli_tree *t, const afli_entry *e, size_t n,
                               size_t room)
{
    void *mem = tree_alloc(t, bucket_bytes(room));
    return mem ? bucket_init(mem, e, n, room, 0) : NULL;
}

/* Room for one more entry in a bucket of capacity cap (cap < bucket_size). */
static size_t bucket_room(const afli_tree *t, size_t cap)
{
    size_t room = cap + 2;
    return room > (size_t)t->bucket_size ? (size_t)t->bucket_size : room;
}

static afli_node *build_node(afli_tree *t, const afli_entry *e,
                             const double *z, size_t n);

/* Bytes of the buckets a node's build makes: its arena. */
static size_t arena_size(const afli_tree *t, const afli_node *nd,
                         const afli_entry *e, const double *z, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0, j; i < n; i = j) {
        j = run_end(nd, e, z, i, n);
        if (j - i > 1 && j - i <= (size_t)t->bucket_size)
            bytes += bucket_bytes(j - i);
    }
    return bytes;
}

/* Fills the slots of a model node from its sorted keys. */
static int fill_slots(afli_tree *t, afli_node *nd, const afli_entry *e,
                      const double *z, size_t n)
{
    size_t bs = (size_t)t->bucket_size;
    size_t i = 0;
    nd->arena_bytes = arena_size(t, nd, e, z, n);
    nd->arena = nd->arena_bytes ? tree_alloc(t, nd->arena_bytes) : NULL;
    scratch_advise_huge(nd->arena, nd->arena_bytes); /* every byte of it is written */
    if (nd->arena_bytes && !nd->arena)
        return NFL_ENOMEM;
    char *next_bucket = nd->arena;
    while (i < n) {
        size_t pos = afli_predict(nd, e[i].key, z[i]);
        size_t j = run_end(nd, e, z, i, n);
        if (j - i == 1) {
            nd->slots[pos] = e[i];
        } else if (j - i <= bs) {
            afli_set_tagged(nd, pos,
                            bucket_init(next_bucket, e + i, j - i, j - i, BUCKET_IN_ARENA),
                            SLOT_BUCKET);
            next_bucket += bucket_bytes(j - i);
        } else {
            /* Aggregate the run of adjacent over-full slots into one child,
             * unless the run would hold every key of this node. */
            size_t last = pos;
            size_t k = j;
            while (k < n) {
                size_t p = afli_predict(nd, e[k].key, z[k]);
                size_t m = run_end(nd, e, z, k, n);
                if (p != last + 1 || m - k <= bs || (i == 0 && m == n))
                    break;
                last = p;
                k = m;
            }
            afli_node *child = build_node(t, e + i, z + i, k - i);
            if (!child)
                return NFL_ENOMEM;
            for (size_t p = pos; p <= last; p++)
                afli_set_tagged(nd, p, child, SLOT_CHILD);
            j = k;
        }
        i = j;
    }
    return NFL_OK;
}

/* A subtree over n entries sorted by unique key, with their z. */
static afli_node *build_node(afli_tree *t, const afli_entry *e,
                             const double *z, size_t n)
{
    if (n < 2)
        return dense_node(t, e, n);
    afli_node *nd = tree_calloc(t, 1, sizeof *nd);
    if (!nd)
        return NULL;
    nd->capacity = afli_capacity(n, 0.0);
    afli_choose_model(t, nd, e, z, n); /* separates the first and last key */
    nd->size = nd->build_size = n;
    nd->lo = e[0].key;
    nd->hi = e[n - 1].key;
    nd->slots = tree_alloc(t, nd->capacity * sizeof(afli_slot));
    if (!nd->slots) {
        afli_release_pieces(t, nd);
        tree_release(t, nd, sizeof *nd);
        return NULL;
    }
    scratch_advise_huge(nd->slots, nd->capacity * sizeof(afli_slot)); /* all written: */
    for (size_t pos = 0; pos < nd->capacity; pos++)           /* empty first */
        afli_set_tagged(nd, pos, NULL, SLOT_EMPTY);
    if (fill_slots(t, nd, e, z, n) != NFL_OK) {
        node_release(t, nd);
        return NULL;
    }
    return nd;
}

void afli_set_flow(afli_tree *t, nfl_flow *flow)
{
    t->flow = flow;
    if (flow)
        find_flat_ends(t);
}

int afli_init(afli_tree *t, int key_type, nfl_flow *flow)
{
    memset(t, 0, sizeof *t);
    t->key_type = key_type;
    afli_set_flow(t, flow);
    t->bucket_size = NFL_DEFAULT_BUCKET;
    t->root = dense_node(t, NULL, 0);
    return t->root ? NFL_OK : NFL_ENOMEM;
}

void afli_destroy(afli_tree *t)
{
    if (t->root)
        node_release(t, t->root);
    t->root = NULL;
    t->size = 0;
}

int afli_build(afli_tree *t, const afli_entry *sorted, const double *z,
               size_t n)
{
    t->bulk_load = 1;
    afli_node *root = build_node(t, sorted, z, n);
    t->bulk_load = 0;
    if (!root)
        return NFL_ENOMEM;
    node_release(t, t->root);
    t->root = root;
    t->size = n;
    return NFL_OK;
}

/* ---- search ----------------------------------------------------------------- */

size_t afli_lower_bound(const afli_entry *e, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t *afli_find(const afli_tree *t, uint64_t key, double z)
{
    afli_node *nd = t->root;
    for (;;) {
        if (nd->dense) {
            size_t i = afli_lower_bound(nd->entries, nd->size, key);
            return i < nd->size && nd->entries[i].key == key
                       ? &nd->entries[i].value
                       : NULL;
        }
        size_t pos = afli_predict(nd, key, z);
        afli_slot *s = &nd->slots[pos];
        if (s->key == key) /* never the mark: the mark's slot is not pos */
            return &s->value;
        if (s->key != afli_mark(nd, pos))
            return NULL;
        switch (s->value & SLOT_TAG_MASK) {
        case SLOT_BUCKET: {
            afli_bucket *b = afli_pointer(s);
            for (uint32_t i = 0; i < b->count; i++)
                if (b->entries[i].key == key)
                    return &b->entries[i].value;
            return NULL;
        }
        case SLOT_CHILD:
            nd = afli_pointer(s);
            break;
        default:
            return NULL;
        }
    }
}

/* ---- subtree rebuild ---------------------------------------------------------- */

size_t afli_collect(const afli_node *nd, afli_entry *out)
{
    if (nd->dense) {
        memcpy(out, nd->entries, nd->size * sizeof(afli_entry));
        return nd->size;
    }
    size_t n = 0;
    const afli_node *last = NULL, *child;
    for (size_t i = 0; i < nd->capacity; i++) {
        const afli_bucket *b;
        switch (afli_kind(nd, i)) {
        case SLOT_ENTRY:
            out[n++] = nd->slots[i];
            break;
        case SLOT_BUCKET:
            b = afli_bucket_at(nd, i);
            memcpy(out + n, b->entries, b->count * sizeof(afli_entry));
            n += b->count;
            break;
        case SLOT_CHILD:
            if ((child = afli_new_child(nd, i, &last)))
                n += afli_collect(child, out + n);
            break;
        }
    }
    return n;
}

/* z of n entries, a block at a time (the flow's block transform). */
static void entries_z(const afli_tree *t, const afli_entry *e, double *z, size_t n)
{
    uint64_t keys[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t m = n - i < 256 ? n - i : 256;
        for (size_t k = 0; k < m; k++)
            keys[k] = e[i + k].key;
        afli_transform(t, keys, z + i, m);
    }
}

/* Rebuilds a subtree in place (its parent's pointers stay valid). */
static int rebuild(afli_tree *t, afli_node *nd)
{
    size_t n = nd->size;
    afli_entry *e = malloc((n ? n : 1) * sizeof *e);
    double *z = malloc((n ? n : 1) * sizeof *z);
    int rc = NFL_ENOMEM;
    if (e && z) {
        afli_collect(nd, e);
        entries_z(t, e, z, n);
        afli_node *fresh = build_node(t, e, z, n);
        if (fresh) {
            node_clear(t, nd);
            *nd = *fresh;
            tree_release(t, fresh, sizeof *fresh);
            rc = NFL_OK;
        }
    }
    free(e);
    free(z);
    return rc;
}

/* Whether a model node grew or shrank by REBUILD_FACTOR since its build. */
static int outgrown(const afli_node *nd)
{
    return (nd->size >= REBUILD_MIN_SIZE &&
            nd->size >= REBUILD_FACTOR * nd->build_size) ||
           (nd->build_size >= REBUILD_MIN_SIZE &&
            nd->size * REBUILD_FACTOR <= nd->build_size);
}

static int needs_rebuild(const afli_node *nd, int is_root)
{
    if (nd->dense)
        return 0;
    return outgrown(nd) ||
           (!is_root && nd->outside >= OUTSIDE_MIN &&
            nd->outside * OUTSIDE_SHARE >= nd->build_size);
}

/* Whether the keys that fell outside nd's range, on key's side, sit at
 * least OUTSIDE_DENSER times as densely as its own keys did at build: a
 * cluster past its end (the keys below a loaded set), not a continuation of
 * its keys (ascending or descending inserts).  They all went down to child;
 * their span reaches from nd's end to key or to child's lowest (highest)
 * key at its last build, whichever is further. */
static int outside_dense(const afli_node *nd, const afli_node *child,
                         uint64_t key)
{
    uint64_t far = key, span;
    if (key < nd->lo) {
        if (!child->dense && child->lo < far)
            far = child->lo;
        span = nd->lo - far;
    } else {
        if (!child->dense && child->hi > far)
            far = child->hi;
        span = far - nd->hi;
    }
    return (double)nd->outside * (double)(nd->hi - nd->lo) >
           OUTSIDE_DENSER * (double)nd->build_size * (double)span;
}

/* Rebuilds the node count_path flagged on key's path.  A node flagged only
 * for keys outside its range that are much denser than its own (see
 * outside_dense) keeps its model, fitted to its own keys, and hands them to
 * the child they went down to: that child is rebuilt over them, and from
 * then on covers them (count_path counts a key outside a node only if it is
 * outside the model child on its path too).  So a dense cluster past a
 * node's end gets a subtree of its own, rebuilt as it grows by the usual
 * rules, instead of a share of the node's slots fixed at the node's build
 * that the cluster soon overfills.  Either rebuild is amortised: the node
 * or the child took at least build_size / OUTSIDE_SHARE inserts since it
 * was built. */
static void rebuild_flagged(afli_tree *t, afli_node *nd, uint64_t key, double z)
{
    if (!outgrown(nd) && (key < nd->lo || key > nd->hi)) {
        size_t pos = afli_predict(nd, key, z);
        if (afli_kind(nd, pos) == SLOT_CHILD) {
            afli_node *child = afli_child_at(nd, pos);
            if (outside_dense(nd, child, key) && rebuild(t, child) == NFL_OK) {
                nd->outside = 0;
                return;
            }
        }
    }
    rebuild(t, nd); /* a failed rebuild leaves a valid, deeper tree */
}

/* Whether key lies outside a model node's range at build and outside that
 * of child, the model node on its path below nd (NULL if none), which may
 * have been rebuilt over keys past nd's range since. */
static int outside_of(const afli_node *nd, const afli_node *child, uint64_t key)
{
    if (key >= nd->lo && key <= nd->hi)
        return 0;
    return !child || child->dense || key < child->lo || key > child->hi;
}

/* ---- insert ------------------------------------------------------------------- */

/* A child node over a full slot's entries plus one more (all sorted). */
static afli_node *split_slot(afli_tree *t, const afli_entry *e, size_t n,
                             afli_entry extra)
{
    afli_entry merged[NFL_MAX_BUCKET + 1];
    double z[NFL_MAX_BUCKET + 1];
    size_t m = 0, i = 0;
    for (; i < n && e[i].key < extra.key; i++)
        merged[m++] = e[i];
    merged[m++] = extra;
    for (; i < n; i++)
        merged[m++] = e[i];
    entries_z(t, merged, z, m);
    return build_node(t, merged, z, m);
}

/* Inserts into a dense node; turns it into a model node once it holds
 * DENSE_MAX_SIZE keys. */
static int dense_insert(afli_tree *t, afli_node *nd, afli_entry e)
{
    size_t n = nd->size - 1; /* size was already counted for e */
    size_t i = afli_lower_bound(nd->entries, n, e.key);
    if (n == nd->capacity) {
        size_t cap = nd->capacity * 2;
        afli_entry *grown = tree_alloc(t, cap * sizeof(afli_entry));
        if (!grown)
            return NFL_ENOMEM;
        memcpy(grown, nd->entries, n * sizeof(afli_entry));
        tree_release(t, nd->entries, nd->capacity * sizeof(afli_entry));
        nd->entries = grown;
        nd->capacity = cap;
    }
    memmove(nd->entries + i + 1, nd->entries + i,
            (n - i) * sizeof(afli_entry));
    nd->entries[i] = e;
    if (nd->size >= DENSE_MAX_SIZE)
        rebuild(t, nd); /* the entry is in; a failed rebuild leaves a valid node */
    return NFL_OK;
}

/* Puts one entry into the slot the descent ended at. */
static int slot_insert(afli_tree *t, afli_node *nd, size_t pos, afli_entry e)
{
    int kind = afli_kind(nd, pos);
    if (kind == SLOT_EMPTY) {
        nd->slots[pos] = e;
        return NFL_OK;
    }
    afli_bucket *had = kind == SLOT_BUCKET ? afli_bucket_at(nd, pos) : NULL;
    const afli_entry *old = had ? had->entries : &nd->slots[pos];
    size_t count = had ? had->count : 1;
    if (count < (size_t)t->bucket_size) {
        afli_bucket *b = had;
        if (!b || b->count == bucket_capacity(b)) { /* a new or larger bucket */
            b = bucket_new(t, old, count, bucket_room(t, b ? bucket_capacity(b) : 0));
            if (!b)
                return NFL_ENOMEM;
            if (had)
                bucket_release(t, had);
        }
        uint32_t i = b->count;
        while (i > 0 && b->entries[i - 1].key > e.key) {
            b->entries[i] = b->entries[i - 1];
            i--;
        }
        b->entries[i] = e;
        b->count++;
        afli_set_tagged(nd, pos, b, SLOT_BUCKET);
        return NFL_OK;
    }
    afli_node *child = split_slot(t, old, count, e);
    if (!child)
        return NFL_ENOMEM;
    if (had)
        bucket_release(t, had);
    afli_set_tagged(nd, pos, child, SLOT_CHILD);
    return NFL_OK;
}

/* Adds delta to the size of every node on the key's path, in one descent
 * (an insert also counts the nodes whose range it falls outside).  Returns
 * the node the path ends at (and, for a model node, its slot in *pos) and
 * sets *adjust to the highest node on the path that now grew or shrank
 * enough to be rebuilt (NULL if none). */
static afli_node *count_path(afli_tree *t, uint64_t key, double z, int64_t delta,
                             size_t *pos, afli_node **adjust)
{
    afli_node *nd = t->root;
    *adjust = NULL;
    for (;;) {
        nd->size += (uint64_t)delta;
        if (nd->dense)
            return nd;
        *pos = afli_predict(nd, key, z);
        afli_node *child = afli_kind(nd, *pos) == SLOT_CHILD ? afli_child_at(nd, *pos) : NULL;
        if (delta > 0 && outside_of(nd, child, key))
            nd->outside++;
        if (!*adjust && needs_rebuild(nd, nd == t->root))
            *adjust = nd;
        if (!child)
            return nd;
        nd = child;
    }
}

/* Inserts a key known to be absent. */
static int insert_new(afli_tree *t, afli_entry e, double z)
{
    size_t pos = 0;
    afli_node *adjust;
    afli_node *nd = count_path(t, e.key, z, 1, &pos, &adjust);
    int rc = nd->dense ? dense_insert(t, nd, e) : slot_insert(t, nd, pos, e);
    if (rc != NFL_OK) {
        count_path(t, e.key, z, -1, &pos, &adjust);
        return rc;
    }
    t->size++;
    if (adjust)
        rebuild_flagged(t, adjust, e.key, z);
    return NFL_OK;
}

int afli_put(afli_tree *t, uint64_t key, double z, uint64_t value, int mode,
             uint64_t *old)
{
    uint64_t *found = afli_find(t, key, z);
    if (found) {
        if (old)
            *old = *found;
        if (mode != NFL_INSERT)
            *found = value;
        return 1;
    }
    if (mode == NFL_UPDATE)
        return 0;
    afli_entry e = {key, value};
    int rc = insert_new(t, e, z);
    return rc == NFL_OK ? 0 : rc;
}

/* ---- delete ------------------------------------------------------------------- */

static void slot_remove(afli_tree *t, afli_node *nd, size_t pos, uint64_t key)
{
    if (afli_kind(nd, pos) == SLOT_ENTRY) {
        afli_set_tagged(nd, pos, NULL, SLOT_EMPTY);
        return;
    }
    afli_bucket *b = afli_bucket_at(nd, pos);
    uint32_t i = 0;
    while (b->entries[i].key != key)
        i++;
    memmove(b->entries + i, b->entries + i + 1,
            (b->count - i - 1) * sizeof(afli_entry));
    if (--b->count == 1) {
        afli_entry last = b->entries[0];
        bucket_release(t, b);
        nd->slots[pos] = last;
    }
}

int afli_remove(afli_tree *t, uint64_t key, double z, uint64_t *old)
{
    uint64_t *found = afli_find(t, key, z);
    if (!found)
        return 0;
    if (old)
        *old = *found;
    size_t pos = 0;
    afli_node *adjust;
    afli_node *nd = count_path(t, key, z, -1, &pos, &adjust);
    if (nd->dense) {
        size_t n = nd->size + 1; /* size already counted the removal */
        size_t i = afli_lower_bound(nd->entries, n, key);
        memmove(nd->entries + i, nd->entries + i + 1,
                (n - i - 1) * sizeof(afli_entry));
    } else {
        slot_remove(t, nd, pos, key);
    }
    t->size--;
    if (adjust)
        rebuild_flagged(t, adjust, key, z);
    return 1;
}
