/* pyindex.c - nfl._index: the single-key path from Python straight into C.
 *
 * A CPython extension type (stable ABI, Python >= 3.10), the base class of
 * nfl.Index.  It holds the nfl_index * of the cffi module nfl._native and
 * calls that module's nfl_point through a function pointer handed over once
 * by _bind(): one compiled core, one tree, one lock, shared with the batch
 * calls that cffi makes.
 *
 * A single-key op holds the GIL while it runs, as dict does.  It takes the
 * index's lock only if it is free at once (nfl_point with wait 0); when a
 * batch call holds it (batch calls run without the GIL), the op releases the
 * GIL, waits for the lock, and takes the GIL back: no deadlock.
 *
 * Keys and values are converted here by the rules of nfl._keys (whose scalar
 * converters are these functions): a key never wraps around or rounds to
 * another key.
 */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nfl.h"

typedef int (*point_fn)(nfl_index *, int, uint64_t, uint64_t *, int);
typedef void (*free_fn)(nfl_index *);
typedef size_t (*range_fn)(nfl_index *, uint64_t, uint64_t, int, uint64_t *,
                           uint64_t *, size_t);
typedef uint64_t (*version_fn)(const nfl_index *);
typedef void (*get_many_fn)(nfl_index *, const uint64_t *, size_t, uint64_t *,
                            uint8_t *);

/* Set once by _bind(); NULL before. */
static point_fn nfl_point_fn;
static free_fn nfl_free_fn;
static range_fn nfl_range_fn;
static version_fn nfl_version_fn;
static get_many_fn nfl_get_many_fn;
static PyObject *cursor_type; /* nfl._index.Cursor */
static PyObject *both_inclusive; /* (True, True), made once */
static PyObject *np_integer, *np_floating; /* numpy.integer, numpy.floating */

static const char *const DTYPE_NAMES[] = {"uint64", "int64", "float64"};
static const char *const RANGE_TEXT[] = {
    "[0, 18446744073709551615]",
    "[-9223372036854775808, 9223372036854775807]",
};

/* ---- scalar conversion (the rules of nfl._keys) ----------------------------- */

static int is_instance(PyObject *obj, PyObject *cls)
{
    return cls != NULL && PyObject_IsInstance(obj, cls);
}

static void type_error(const char *what, PyObject *obj)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(obj),
                                            "__name__");
    if (name) {
        PyErr_Format(PyExc_TypeError, "%s must be an int or float, not %S",
                     what, name);
        Py_DECREF(name);
    }
}

/* An exact int from an int-like or an integral float (what: "key",
 * "value"); a new reference, or NULL with ValueError/TypeError set. */
static PyObject *integral(PyObject *obj, const char *what)
{
    int kind = PyLong_Check(obj) ? 1 : is_instance(obj, np_integer);
    if (kind < 0)
        return NULL;
    if (kind)
        return PyNumber_Long(obj);
    kind = PyFloat_Check(obj) ? 1 : is_instance(obj, np_floating);
    if (kind < 0)
        return NULL;
    if (!kind) {
        type_error(what, obj);
        return NULL;
    }
    double d = PyFloat_AsDouble(obj);
    if (d == -1.0 && PyErr_Occurred())
        return NULL;
    if (isnan(d)) {
        PyErr_Format(PyExc_ValueError, "%s is NaN", what);
        return NULL;
    }
    if (!isfinite(d))
        goto not_integer;
    /* int(obj) truncates exactly (also a long double); integral iff equal */
    PyObject *k = PyNumber_Long(obj);
    if (!k)
        return NULL;
    int same = PyFloat_Check(obj) ? d == floor(d)
                                  : PyObject_RichCompareBool(obj, k, Py_EQ);
    if (same > 0)
        return k;
    Py_DECREF(k);
    if (same < 0)
        return NULL;
not_integer:
    PyErr_Format(PyExc_ValueError, "%s %R is not an integer", what, obj);
    return NULL;
}

/* The 8-byte word of an exact int in uint64 (is_signed 0) or int64 range:
 * 1 with *out set, 0 if out of range (no error set), -1 on error. */
static int int_word(PyObject *k, int is_signed, uint64_t *out)
{
    int overflow;
    long long ll = PyLong_AsLongLongAndOverflow(k, &overflow);
    if (ll == -1 && PyErr_Occurred())
        return -1;
    if (overflow == 0) {
        *out = (uint64_t)ll;
        return is_signed || ll >= 0;
    }
    if (overflow < 0 || is_signed)
        return 0;
    unsigned long long u = PyLong_AsUnsignedLongLong(k);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    *out = u;
    return 1;
}

/* int_word of integral(obj), with the range error of nfl._keys. */
static int integral_word(PyObject *obj, const char *what, int is_signed,
                         uint64_t *out)
{
    PyObject *k = integral(obj, what);
    if (!k)
        return -1;
    int rc = int_word(k, is_signed, out);
    if (rc == 0)
        PyErr_Format(PyExc_ValueError, "%s %S is out of range for %s %s", what,
                     k, DTYPE_NAMES[is_signed], RANGE_TEXT[is_signed]);
    Py_DECREF(k);
    return rc > 0 ? 0 : -1;
}

static uint64_t double_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

/* A float64 key: any float, or an int exactly representable as a double. */
static int float_key_bits(PyObject *key, uint64_t *out)
{
    int kind = PyFloat_Check(key) ? 1 : is_instance(key, np_floating);
    if (kind < 0)
        return -1;
    if (kind) {
        double d = PyFloat_AsDouble(key);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
        if (isnan(d)) {
            PyErr_SetString(PyExc_ValueError, "key is NaN");
            return -1;
        }
        if (!PyFloat_Check(key)) { /* a long double must be exact */
            PyObject *f = PyFloat_FromDouble(d);
            int same = f ? PyObject_RichCompareBool(key, f, Py_EQ) : -1;
            Py_XDECREF(f);
            if (same < 0)
                return -1;
            if (!same) {
                PyErr_Format(PyExc_ValueError,
                             "key %R is not exactly representable as float64",
                             key);
                return -1;
            }
        }
        *out = double_bits(d);
        return 0;
    }
    kind = PyLong_Check(key) ? 1 : is_instance(key, np_integer);
    if (kind < 0)
        return -1;
    if (!kind) {
        type_error("key", key);
        return -1;
    }
    PyObject *k = PyNumber_Long(key);
    if (!k)
        return -1;
    double d = PyLong_AsDouble(k);
    int rc = -1;
    if (d == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "key %S is out of range for float64", k);
        }
    } else {
        PyObject *back = PyLong_FromDouble(d);
        int same = back ? PyObject_RichCompareBool(back, k, Py_EQ) : -1;
        Py_XDECREF(back);
        if (same == 0)
            PyErr_Format(PyExc_ValueError,
                         "key %S is not exactly representable as float64", k);
        if (same > 0) {
            *out = double_bits(d);
            rc = 0;
        }
    }
    Py_DECREF(k);
    return rc;
}

/* The raw 8-byte pattern of one key in an index of key_type: 0, or -1 with
 * ValueError (out of range, not integral, NaN, not exact) or TypeError. */
static int key_bits(PyObject *key, int key_type, uint64_t *out)
{
    if (key_type == NFL_KEY_FLOAT64) {
        if (PyFloat_CheckExact(key)) { /* the common case, inline */
            double d = PyFloat_AsDouble(key);
            if (!isnan(d)) {
                *out = double_bits(d);
                return 0;
            }
        } else if (PyLong_CheckExact(key)) {
            int overflow;
            long long ll = PyLong_AsLongLongAndOverflow(key, &overflow);
            double d = (double)ll;
            if (!overflow && d > -9223372036854775809.0 &&
                d < 9223372036854775808.0 && (long long)d == ll) {
                *out = double_bits(d);
                return 0;
            }
        }
        return float_key_bits(key, out);
    }
    int is_signed = key_type == NFL_KEY_INT64;
    if (PyLong_CheckExact(key)) { /* the common case, inline */
        int rc = int_word(key, is_signed, out);
        if (rc > 0)
            return 0;
        if (rc < 0)
            return -1;
    }
    return integral_word(key, "key", is_signed, out);
}

/* The 8-byte word of one value of an int64 (is_signed) or uint64 index. */
static int value_bits(PyObject *value, int is_signed, uint64_t *out)
{
    if (PyLong_CheckExact(value) && int_word(value, is_signed, out) > 0)
        return 0;
    PyErr_Clear(); /* int_word's error, if any, is raised again below */
    return integral_word(value, "value", is_signed, out);
}

static PyObject *value_object(uint64_t word, int is_signed)
{
    return is_signed ? PyLong_FromLongLong((long long)word)
                     : PyLong_FromUnsignedLongLong(word);
}

/* ---- the Core type ------------------------------------------------------------ */

/* What the tree's 8-byte value word holds.  With VALUES_OBJECT it is a
 * PyObject * and the index owns one strong reference to it.  Every op that
 * reads or writes such words runs holding the GIL and never lets it go while
 * a word read from the tree is not yet a reference of its own: so no other
 * thread can drop the index's reference in between. */
enum { VALUES_UINT64, VALUES_INT64, VALUES_OBJECT };

typedef struct {
    PyObject_HEAD
    nfl_index *tree;   /* owned: freed with the object; NULL before _attach */
    int key_type;      /* NFL_KEY_* */
    int value_kind;    /* VALUES_UINT64, VALUES_INT64 or VALUES_OBJECT */
    Py_ssize_t writes; /* bumped by every write call, for iterators */
} Core;

static const struct {
    int rc;
    const char *msg;
} NATIVE_ERRORS[] = {
    {NFL_ENOMEM, "out of memory in the native index"},
    {NFL_EINVAL, "invalid argument to the native index"},
    {NFL_EORDER, "the flow is not monotone over these keys"},
};

static void native_error(int rc)
{
    PyObject *exc = rc == NFL_ENOMEM   ? PyExc_MemoryError
                    : rc == NFL_EINVAL ? PyExc_ValueError
                                       : PyExc_RuntimeError;
    for (size_t i = 0; i < sizeof NATIVE_ERRORS / sizeof *NATIVE_ERRORS; i++)
        if (NATIVE_ERRORS[i].rc == rc) {
            PyErr_SetString(exc, NATIVE_ERRORS[i].msg);
            return;
        }
    PyErr_Format(exc, "native error %d", rc);
}

/* Runs one nfl_point op; its result (>= 0), or -1 with an exception set.
 * Waits for the lock without the GIL when a batch call holds it, except in
 * an object index: there it waits holding the GIL (the holder is a cffi call
 * that reads no value word and needs no GIL), so a word it reads cannot be
 * freed by another thread before the caller takes its reference. */
static int point(Core *self, int op, uint64_t key, uint64_t *value)
{
    if (!self->tree) {
        PyErr_SetString(PyExc_RuntimeError, "the index is not initialized");
        return -1;
    }
    if (op != NFL_POINT_GET && op != NFL_POINT_SIZE)
        self->writes++;
    int objects = self->value_kind == VALUES_OBJECT;
    int rc = nfl_point_fn(self->tree, op, key, value, objects);
    if (rc == NFL_EBUSY) {
        Py_BEGIN_ALLOW_THREADS
        rc = nfl_point_fn(self->tree, op, key, value, 1);
        Py_END_ALLOW_THREADS
    }
    if (rc < 0) {
        native_error(rc);
        return -1;
    }
    return rc;
}

static void key_error(PyObject *key)
{
    PyObject *args = PyTuple_Pack(1, key);
    if (args) {
        PyErr_SetObject(PyExc_KeyError, args);
        Py_DECREF(args);
    }
}

/* The word of an int value, or of an object value (a new reference the
 * caller owns: release_new drops it when the tree did not keep it). */
static int store_word(Core *self, PyObject *value, uint64_t *word)
{
    if (self->value_kind == VALUES_OBJECT) {
        Py_INCREF(value);
        *word = (uint64_t)(uintptr_t)value;
        return 0;
    }
    return value_bits(value, self->value_kind == VALUES_INT64, word);
}

/* A new reference to the value a word read from the tree stands for. */
static PyObject *word_value(Core *self, uint64_t word)
{
    if (self->value_kind == VALUES_OBJECT) {
        PyObject *obj = (PyObject *)(uintptr_t)word;
        Py_INCREF(obj);
        return obj;
    }
    return value_object(word, self->value_kind == VALUES_INT64);
}

/* Drops the index's reference to a word that left the tree (object index). */
static void drop_word(Core *self, uint64_t word)
{
    if (self->value_kind == VALUES_OBJECT)
        Py_DECREF((PyObject *)(uintptr_t)word);
}

/* Runs a write op (mode NFL_UPSERT, INSERT or UPDATE) of raw key k with a
 * value word from store_word (whose reference, in an object index, it takes
 * over); its result or -1.  The tree keeps that reference iff it stored the
 * value, and the one to a value it replaced is dropped. */
static int put_word(Core *self, int mode, uint64_t k, uint64_t word)
{
    uint64_t stored = word;
    int rc = point(self, mode, k, &word);
    int kept = rc >= 0 && (mode == NFL_INSERT ? rc == 0
                           : mode == NFL_UPDATE ? rc == 1 : 1);
    if (!kept)
        drop_word(self, stored);
    if (rc == 1 && mode != NFL_INSERT)
        drop_word(self, word); /* the value replaced: after the lock is free */
    return rc;
}

/* Converts key and value, then runs put_word; its result or -1. */
static int put(Core *self, PyObject *key, PyObject *value, int mode)
{
    uint64_t k, word;
    if (key_bits(key, self->key_type, &k) < 0 ||
        store_word(self, value, &word) < 0)
        return -1;
    return put_word(self, mode, k, word);
}

static PyObject *core_subscript(Core *self, PyObject *key)
{
    uint64_t k, v;
    if (key_bits(key, self->key_type, &k) < 0)
        return NULL;
    int rc = point(self, NFL_POINT_GET, k, &v);
    if (rc < 0)
        return NULL;
    if (!rc) {
        key_error(key);
        return NULL;
    }
    return word_value(self, v);
}

static int core_ass_subscript(Core *self, PyObject *key, PyObject *value)
{
    if (value)
        return put(self, key, value, NFL_UPSERT) < 0 ? -1 : 0;
    uint64_t k, v;
    if (key_bits(key, self->key_type, &k) < 0)
        return -1;
    int rc = point(self, NFL_POINT_DELETE, k, &v);
    if (rc == 0)
        key_error(key);
    if (rc == 1)
        drop_word(self, v);
    return rc > 0 ? 0 : -1;
}

static int core_contains(Core *self, PyObject *key)
{
    uint64_t k, v;
    if (key_bits(key, self->key_type, &k) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError) &&
            !PyErr_ExceptionMatches(PyExc_ValueError))
            return -1;
        PyErr_Clear(); /* a key the dtype cannot hold is not in the index */
        return 0;
    }
    return point(self, NFL_POINT_GET, k, &v);
}

static Py_ssize_t core_length(Core *self)
{
    uint64_t n;
    return point(self, NFL_POINT_SIZE, 0, &n) < 0 ? -1 : (Py_ssize_t)n;
}

static int check_args(const char *name, Py_ssize_t nargs, Py_ssize_t lo,
                      Py_ssize_t hi)
{
    if (nargs >= lo && nargs <= hi)
        return 0;
    if (lo == hi)
        PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd arguments (%zd given)",
                     name, lo, nargs);
    else
        PyErr_Format(PyExc_TypeError, "%s() takes %zd or %zd arguments (%zd given)",
                     name, lo, hi, nargs);
    return -1;
}

static PyObject *core_get(Core *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t k, v;
    if (check_args("get", nargs, 1, 2) < 0 ||
        key_bits(args[0], self->key_type, &k) < 0)
        return NULL;
    int rc = point(self, NFL_POINT_GET, k, &v);
    if (rc < 0)
        return NULL;
    if (rc)
        return word_value(self, v);
    PyObject *dflt = nargs > 1 ? args[1] : Py_None;
    Py_INCREF(dflt);
    return dflt;
}

static PyObject *core_insert(Core *self, PyObject *const *args,
                             Py_ssize_t nargs)
{
    if (check_args("insert", nargs, 2, 2) < 0)
        return NULL;
    int rc = put(self, args[0], args[1], NFL_INSERT);
    return rc < 0 ? NULL : PyBool_FromLong(rc == 0);
}

static PyObject *core_replace(Core *self, PyObject *const *args,
                              Py_ssize_t nargs)
{
    if (check_args("replace", nargs, 2, 2) < 0)
        return NULL;
    int rc = put(self, args[0], args[1], NFL_UPDATE);
    return rc < 0 ? NULL : PyBool_FromLong(rc == 1);
}

static PyObject *core_delete(Core *self, PyObject *key)
{
    uint64_t k, v;
    if (key_bits(key, self->key_type, &k) < 0)
        return NULL;
    int rc = point(self, NFL_POINT_DELETE, k, &v);
    if (rc == 1)
        drop_word(self, v);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *core_pop(Core *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t k, v;
    if (check_args("pop", nargs, 1, 2) < 0 ||
        key_bits(args[0], self->key_type, &k) < 0)
        return NULL;
    int rc = point(self, NFL_POINT_DELETE, k, &v);
    if (rc < 0)
        return NULL;
    if (rc) {
        if (self->value_kind == VALUES_OBJECT) /* the index's reference */
            return (PyObject *)(uintptr_t)v;
        return value_object(v, self->value_kind == VALUES_INT64);
    }
    if (nargs < 2) {
        key_error(args[0]);
        return NULL;
    }
    Py_INCREF(args[1]);
    return args[1];
}

static PyObject *core_setdefault(Core *self, PyObject *const *args,
                                 Py_ssize_t nargs)
{
    uint64_t k, v;
    if (check_args("setdefault", nargs, 1, 2) < 0 ||
        key_bits(args[0], self->key_type, &k) < 0)
        return NULL;
    PyObject *dflt = nargs > 1 ? args[1] : Py_None;
    if (store_word(self, dflt, &v) < 0) {
        /* a default the index cannot hold is an error only if it is needed */
        PyObject *type, *exc, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        int rc = point(self, NFL_POINT_GET, k, &v);
        if (rc == 0)
            PyErr_Restore(type, exc, tb);
        else {
            Py_XDECREF(type);
            Py_XDECREF(exc);
            Py_XDECREF(tb);
        }
        return rc > 0 ? word_value(self, v) : NULL;
    }
    uint64_t stored = v;
    int rc = point(self, NFL_INSERT, k, &v);
    if (rc != 0)
        drop_word(self, stored); /* not kept: the key's own value stays */
    if (rc < 0)
        return NULL;
    /* the value now stored: the key's own, or dflt as the value dtype */
    return word_value(self, rc ? v : stored);
}

/* ---- object-index batch and ordered ops (all holding the GIL) ------------------ */

static int objects_only(Core *self)
{
    if (self->value_kind == VALUES_OBJECT && self->tree)
        return 0;
    PyErr_SetString(PyExc_TypeError, "not an object-valued index");
    return -1;
}

/* Parses (addresses..., n) of numpy buffers the caller keeps alive. */
static int addresses(PyObject *const *args, Py_ssize_t count, void **out,
                     Py_ssize_t *n)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        out[i] = PyLong_AsVoidPtr(args[i]);
        if (PyErr_Occurred())
            return -1;
    }
    *n = PyLong_AsSsize_t(args[count]);
    return *n == -1 && PyErr_Occurred() ? -1 : 0;
}

/* _own(values_address, n): the index takes a reference to each of n objects
 * of an object array (after a bulk load stored their words). */
static PyObject *core_own(Core *self, PyObject *const *args, Py_ssize_t nargs)
{
    void *addr[1];
    Py_ssize_t n;
    if (objects_only(self) < 0 || check_args("_own", nargs, 2, 2) < 0 ||
        addresses(args, 1, addr, &n) < 0)
        return NULL;
    PyObject **objs = addr[0];
    for (Py_ssize_t i = 0; i < n; i++)
        Py_INCREF(objs[i]);
    Py_RETURN_NONE;
}

/* Keys looked up per nfl_get_many call of _get_objects: their value words
 * stay in cache until they become references. */
#define GET_CHUNK 4096
/* How far ahead of the reference it takes _get_objects prefetches a value
 * object (its reference count is a miss of its own). */
#define OBJECT_PREFETCH 8

/* _get_objects(keys_address, values_address, found_address, n): the values
 * of n raw keys into an object array (left as it was where not found).  One
 * fused, prefetched batch descent (nfl_get_many) per GET_CHUNK keys, all
 * holding the GIL, so no value word can be dropped before it is a reference
 * of the array's. */
static PyObject *core_get_objects(Core *self, PyObject *const *args,
                                  Py_ssize_t nargs)
{
    void *addr[3];
    Py_ssize_t n;
    if (objects_only(self) < 0 ||
        check_args("_get_objects", nargs, 4, 4) < 0 ||
        addresses(args, 3, addr, &n) < 0)
        return NULL;
    const uint64_t *keys = addr[0];
    PyObject **values = addr[1];
    uint8_t *found = addr[2];
    uint64_t *words = PyMem_Malloc((n < GET_CHUNK ? (n ? n : 1) : GET_CHUNK) *
                                   sizeof *words);
    if (!words)
        return PyErr_NoMemory();
    for (Py_ssize_t at = 0; at < n; at += GET_CHUNK) {
        size_t m = n - at < GET_CHUNK ? (size_t)(n - at) : GET_CHUNK;
        nfl_get_many_fn(self->tree, keys + at, m, words, found + at);
        /* every value the chunk found becomes a reference first: dropping
         * what the array held may run code that writes to the index */
        for (size_t i = 0; i < m; i++) {
            if (i + OBJECT_PREFETCH < m && found[at + i + OBJECT_PREFETCH])
                __builtin_prefetch((void *)(uintptr_t)words[i + OBJECT_PREFETCH], 1);
            if (found[at + i])
                Py_INCREF((PyObject *)(uintptr_t)words[i]);
        }
        for (size_t i = 0; i < m; i++)
            if (found[at + i]) {
                PyObject *old = values[at + i];
                values[at + i] = (PyObject *)(uintptr_t)words[i];
                Py_XDECREF(old);
            }
    }
    PyMem_Free(words);
    Py_RETURN_NONE;
}

/* _put_objects(keys_address, values_address, existed_address, n, mode):
 * writes n raw keys with the objects of an object array, in order; existed
 * receives whether each key was there.  A native error stops the batch
 * (the writes before it stay, each with its references right). */
static PyObject *core_put_objects(Core *self, PyObject *const *args,
                                  Py_ssize_t nargs)
{
    void *addr[3];
    Py_ssize_t n;
    if (objects_only(self) < 0 ||
        check_args("_put_objects", nargs, 5, 5) < 0 ||
        addresses(args, 3, addr, &n) < 0)
        return NULL;
    long mode = PyLong_AsLong(args[4]);
    if (mode == -1 && PyErr_Occurred())
        return NULL;
    if (mode != NFL_UPSERT && mode != NFL_INSERT && mode != NFL_UPDATE) {
        PyErr_Format(PyExc_ValueError, "unknown write mode %ld", mode);
        return NULL;
    }
    const uint64_t *keys = addr[0];
    PyObject **values = addr[1];
    uint8_t *existed = addr[2];
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t word;
        store_word(self, values[i], &word); /* cannot fail: an object index */
        int rc = put_word(self, (int)mode, keys[i], word);
        if (rc < 0)
            return NULL;
        existed[i] = (uint8_t)rc;
    }
    Py_RETURN_NONE;
}

/* _delete_objects(keys_address, deleted_address, n): deletes n raw keys. */
static PyObject *core_delete_objects(Core *self, PyObject *const *args,
                                     Py_ssize_t nargs)
{
    void *addr[2];
    Py_ssize_t n;
    if (objects_only(self) < 0 ||
        check_args("_delete_objects", nargs, 3, 3) < 0 ||
        addresses(args, 2, addr, &n) < 0)
        return NULL;
    const uint64_t *keys = addr[0];
    uint8_t *deleted = addr[1];
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t v;
        int rc = point(self, NFL_POINT_DELETE, keys[i], &v);
        if (rc < 0)
            return NULL;
        if (rc)
            drop_word(self, v);
        deleted[i] = (uint8_t)rc;
    }
    Py_RETURN_NONE;
}

/* One nfl_range read holding the GIL: raw keys into keys, the words into
 * words (both with room for max).  Returns the count. */
static size_t read_words(Core *self, uint64_t lo, uint64_t hi, int flags,
                         uint64_t *keys, uint64_t *words, size_t max)
{
    return nfl_range_fn(self->tree, lo, hi, flags, keys, words, max);
}

/* _read_objects(lo, hi, flags, keys_address, values_address, max): an
 * ordered read (nfl_range's arguments) into a uint64 array and an object
 * array of room max (filled with None); the count read. */
static PyObject *core_read_objects(Core *self, PyObject *const *args,
                                   Py_ssize_t nargs)
{
    if (objects_only(self) < 0 ||
        check_args("_read_objects", nargs, 6, 6) < 0)
        return NULL;
    uint64_t lo = PyLong_AsUnsignedLongLong(args[0]);
    uint64_t hi = PyLong_AsUnsignedLongLong(args[1]);
    int flags = (int)PyLong_AsLong(args[2]);
    void *addr[2];
    Py_ssize_t max;
    if (PyErr_Occurred() || addresses(args + 3, 2, addr, &max) < 0)
        return NULL;
    PyObject **values = addr[1];
    /* the words land in the object array itself: each replaces a None */
    size_t n = read_words(self, lo, hi, flags, addr[0], (uint64_t *)values,
                          (size_t)max);
    for (size_t i = 0; i < n; i++) {
        Py_INCREF(values[i]);
        Py_DECREF(Py_None);
    }
    return PyLong_FromSize_t(n);
}

/* Applies fn to every value word of an object index, in chunks read with
 * the GIL held; stops at fn's first nonzero result and returns it. */
#define WALK_CHUNK 1024
static int walk_values(Core *self, int (*fn)(PyObject *, void *), void *arg)
{
    uint64_t keys[WALK_CHUNK], words[WALK_CHUNK];
    int flags = NFL_FROM_START | NFL_TO_END;
    uint64_t lo = 0;
    for (;;) {
        size_t n = read_words(self, lo, 0, flags, keys, words, WALK_CHUNK);
        for (size_t i = 0; i < n; i++) {
            int rc = fn((PyObject *)(uintptr_t)words[i], arg);
            if (rc)
                return rc;
        }
        if (n < WALK_CHUNK)
            return 0;
        lo = keys[n - 1];
        flags = NFL_TO_END | NFL_LO_EXCLUSIVE;
    }
}

typedef struct {
    visitproc visit;
    void *arg;
} visit_args;

static int visit_value(PyObject *obj, void *arg)
{
    visit_args *va = arg;
    return va->visit(obj, va->arg);
}

static int core_traverse(Core *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    if (self->tree && self->value_kind == VALUES_OBJECT) {
        visit_args va = {visit, arg};
        return walk_values(self, visit_value, &va);
    }
    return 0;
}

/* Takes every entry out of an object index, then drops the references (so
 * code a value's release runs sees an empty index).  0, or -1 with
 * MemoryError. */
static int take_all(Core *self)
{
    uint64_t n;
    if (point(self, NFL_POINT_SIZE, 0, &n) < 0)
        return -1;
    if (n == 0)
        return 0;
    uint64_t *keys = PyMem_Malloc(n * sizeof *keys);
    uint64_t *words = PyMem_Malloc(n * sizeof *words);
    if (!keys || !words) {
        PyMem_Free(keys);
        PyMem_Free(words);
        PyErr_NoMemory();
        return -1;
    }
    size_t got = read_words(self, 0, 0, NFL_FROM_START | NFL_TO_END, keys,
                            words, n);
    for (size_t i = 0; i < got; i++) {
        uint64_t old;
        if (point(self, NFL_POINT_DELETE, keys[i], &old) < 0) {
            /* cannot happen (a delete does not allocate); keep what remains */
            got = i;
            break;
        }
    }
    PyMem_Free(keys);
    for (size_t i = 0; i < got; i++)
        Py_DECREF((PyObject *)(uintptr_t)words[i]);
    PyMem_Free(words);
    return PyErr_Occurred() ? -1 : 0;
}

static int core_clear(Core *self)
{
    if (self->tree && self->value_kind == VALUES_OBJECT && take_all(self) < 0)
        PyErr_Clear(); /* tp_clear cannot fail: the rest goes with the tree */
    return 0;
}

/* _clear_objects(): removes every entry of an object index, dropping the
 * index's references after they are out of the tree. */
static PyObject *core_clear_objects(Core *self, PyObject *unused)
{
    (void)unused;
    if (objects_only(self) < 0 || take_all(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- Cursor: the lazy ordered iterator of keys, values or items ----------------- */

/* A Cursor reads the tree in chunks with nfl_range (the first of
 * CURSOR_FIRST entries, each next one twice as large up to CURSOR_CHUNK) and
 * turns one buffered entry into Python objects per next().  A read of an
 * index with numeric values releases the GIL, unless it is a first-sized
 * one (a few microseconds) and the index's lock is free at once.  In an object
 * index the chunk's value words become references of the cursor's own as
 * soon as they are read (holding the GIL), so a value deleted from the index
 * meanwhile stays alive until the cursor hands it out or goes.
 *
 * Changes: the cursor notes the index's write count and version at its
 * first read.  Before every further read it raises RuntimeError if either
 * moved, and at the end if the write count did; a strict cursor (iteration
 * of the whole index, as dict's iterators) also checks the write count
 * before every entry. */
#define CURSOR_FIRST 128
#define CURSOR_CHUNK 4096

enum { CURSOR_KEYS, CURSOR_VALUES, CURSOR_ITEMS };

typedef struct {
    PyObject_HEAD
    Core *core;          /* NULL once exhausted or failed */
    uint64_t lo, hi;     /* the bounds of the next read (raw keys) */
    int flags;           /* NFL_* range flags of the next read */
    int what;            /* CURSOR_KEYS, CURSOR_VALUES or CURSOR_ITEMS */
    int strict;
    int owns;            /* words[pos..n) are references of the cursor's */
    int busy;            /* a read without the GIL is under way */
    Py_ssize_t writes;   /* core->writes at the first read */
    uint64_t version;    /* the tree's version at the first read */
    size_t want;         /* entries the next read asks for; 0: none left */
    size_t pos, n, room; /* next entry, entries buffered, buffer room */
    uint64_t *keys, *words;
    PyObject *item;      /* the last (key, value) tuple, reused when no one
                            else holds it (as dict's items iterator does) */
    Py_ssize_t reads, read; /* native reads and entries read (for tests) */
} Cursor;

/* One spare chunk buffer (keys then words), kept by the module when a
 * cursor ends so the next cursor needs no allocation: a short irange would
 * otherwise pay two mallocs and two frees.  Touched only holding the GIL. */
static uint64_t *spare_buf;
static size_t spare_room;

/* Gives the cursor's buffer to the spare slot if that is empty (or smaller),
 * frees it otherwise. */
static void cursor_release_buffer(Cursor *c)
{
    if (!c->keys)
        return;
    if (c->room > spare_room) {
        PyMem_Free(spare_buf);
        spare_buf = c->keys;
        spare_room = c->room;
    } else {
        PyMem_Free(c->keys);
    }
    c->keys = c->words = NULL;
    c->room = 0;
}

/* Makes room for c->want entries: 0, or -1 with MemoryError. */
static int cursor_room(Cursor *c)
{
    if (c->room >= c->want)
        return 0;
    uint64_t *buf;
    size_t room = c->want;
    if (!c->keys && spare_room >= room) { /* the spare fits: take it */
        buf = spare_buf;
        room = spare_room;
        spare_buf = NULL;
        spare_room = 0;
    } else {
        cursor_release_buffer(c);
        buf = PyMem_Malloc(2 * room * sizeof *buf);
        if (!buf) {
            PyErr_NoMemory();
            return -1;
        }
    }
    c->keys = buf;
    c->words = buf + room;
    c->room = room;
    return 0;
}

/* Drops the references to the entries not handed out yet. */
static void cursor_drop_buffered(Cursor *c)
{
    if (c->owns)
        for (size_t i = c->pos; i < c->n; i++)
            Py_DECREF((PyObject *)(uintptr_t)c->words[i]);
    c->pos = c->n = 0;
}

/* Ends the cursor: every later next() stops the iteration. */
static void cursor_finish(Cursor *c)
{
    cursor_drop_buffered(c);
    if (!c->busy)
        cursor_release_buffer(c);
    Py_CLEAR(c->core);
    Py_CLEAR(c->item);
}

static PyObject *changed_error(Cursor *c)
{
    cursor_finish(c);
    PyErr_SetString(PyExc_RuntimeError, "index changed during iteration");
    return NULL;
}

/* Reads the next chunk into the buffer: 0, or -1 with an exception set. */
static int cursor_read(Cursor *c)
{
    Core *core = c->core;
    if (cursor_room(c) < 0)
        return -1;
    size_t n;
    if (core->value_kind == VALUES_OBJECT) {
        /* holding the GIL: no one drops a value before it is ours */
        n = nfl_range_fn(core->tree, c->lo, c->hi, c->flags, c->keys,
                         c->words, c->want);
        c->owns = c->what != CURSOR_KEYS;
        if (c->owns)
            for (size_t i = 0; i < n; i++)
                Py_INCREF((PyObject *)(uintptr_t)c->words[i]);
    } else {
        nfl_index *tree = core->tree;
        uint64_t lo = c->lo, hi = c->hi, *keys = c->keys, *words = c->words;
        int flags = c->flags;
        size_t want = c->want;
        /* a short read holds the GIL unless it must wait for a writer */
        n = want <= CURSOR_FIRST
                ? nfl_range_fn(tree, lo, hi, flags | NFL_NOWAIT, keys, words, want)
                : SIZE_MAX;
        if (n == SIZE_MAX) {
            c->busy = 1;
            Py_BEGIN_ALLOW_THREADS
            n = nfl_range_fn(tree, lo, hi, flags, keys, words, want);
            Py_END_ALLOW_THREADS
            c->busy = 0;
        }
        c->owns = 0;
    }
    c->reads++;
    c->read += (Py_ssize_t)n;
    c->pos = 0;
    c->n = n;
    if (n < c->want) {
        c->want = 0; /* the range is exhausted */
        return 0;
    }
    /* the next read starts past the last key read */
    if (c->flags & NFL_REVERSE) {
        c->hi = c->keys[n - 1];
        c->flags &= ~(NFL_TO_END | NFL_HI_INCLUSIVE);
    } else {
        c->lo = c->keys[n - 1];
        c->flags = (c->flags & ~NFL_FROM_START) | NFL_LO_EXCLUSIVE;
    }
    c->want = c->want * 2 < CURSOR_CHUNK ? c->want * 2 : CURSOR_CHUNK;
    return 0;
}

static PyObject *key_object(int key_type, uint64_t bits)
{
    if (key_type == NFL_KEY_FLOAT64) {
        double d;
        memcpy(&d, &bits, sizeof d);
        return PyFloat_FromDouble(d);
    }
    return value_object(bits, key_type == NFL_KEY_INT64);
}

/* The value of a buffered word, a new reference (an object index's: the
 * cursor's own, handed over). */
static PyObject *cursor_value(Cursor *c, uint64_t word)
{
    if (c->owns)
        return (PyObject *)(uintptr_t)word;
    return value_object(word, c->core->value_kind == VALUES_INT64);
}

/* The first read: changes count from here.  0, or -1 with an exception set
 * (the cursor ended). */
static int cursor_first_read(Cursor *c)
{
    c->writes = c->core->writes;
    c->version = nfl_version_fn(c->core->tree);
    if (cursor_read(c) < 0) {
        cursor_finish(c);
        return -1;
    }
    return 0;
}

static PyObject *cursor_next(Cursor *c)
{
    if (c->busy) {
        PyErr_SetString(PyExc_ValueError, "cursor already executing");
        return NULL;
    }
    Core *core = c->core;
    if (!core)
        return NULL;
    if (c->pos == c->n) {
        if (c->reads == 0) {
            if (cursor_first_read(c) < 0)
                return NULL;
        } else if (c->want == 0) { /* exhausted: as dict, a change still counts */
            if (core->writes != c->writes)
                return changed_error(c);
            cursor_finish(c);
            return NULL;
        } else if (core->writes != c->writes ||
                   nfl_version_fn(core->tree) != c->version) {
            return changed_error(c);
        } else if (cursor_read(c) < 0) {
            cursor_finish(c);
            return NULL;
        }
        if (c->n == 0)
            return cursor_next(c); /* the end: the exhausted branch above */
    }
    if (c->strict && core->writes != c->writes)
        return changed_error(c);
    size_t i = c->pos++;
    if (c->what == CURSOR_KEYS)
        return key_object(core->key_type, c->keys[i]);
    PyObject *value = cursor_value(c, c->words[i]);
    if (c->what == CURSOR_VALUES || !value)
        return value;
    PyObject *key = key_object(core->key_type, c->keys[i]);
    if (!key) {
        Py_DECREF(value);
        return NULL;
    }
    PyObject *item = c->item;
    if (!item || Py_REFCNT(item) != 1) {
        item = PyTuple_New(2);
        if (!item) {
            Py_DECREF(key);
            Py_DECREF(value);
            return NULL;
        }
        Py_XDECREF(c->item);
        c->item = item;
    } else if (!PyObject_GC_IsTracked(item)) {
        PyObject_GC_Track(item); /* the gc untracked it while it held ints */
    }
    PyTuple_SetItem(item, 0, key); /* drops the last key and value */
    PyTuple_SetItem(item, 1, value);
    Py_INCREF(item);
    return item;
}

/* __length_hint__: the entries buffered and not handed out yet (all that
 * remain once the range is exhausted).  Before the first next() it makes the
 * first read, which list() and tuple() then size their result by: a short
 * irange becomes a list with no regrowth. */
static PyObject *cursor_length_hint(Cursor *c, PyObject *unused)
{
    (void)unused;
    if (!c->busy && c->core && c->reads == 0 && cursor_first_read(c) < 0)
        return NULL;
    return PyLong_FromSize_t(c->n - c->pos);
}

static PyMethodDef cursor_methods[] = {
    {"__length_hint__", (PyCFunction)cursor_length_hint, METH_NOARGS,
     "The entries read ahead and not yet handed out (a hint for list())."},
    {NULL, NULL, 0, NULL},
};

static int cursor_traverse(Cursor *c, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(c));
    Py_VISIT(c->core);
    Py_VISIT(c->item);
    if (c->owns)
        for (size_t i = c->pos; i < c->n; i++)
            Py_VISIT((PyObject *)(uintptr_t)c->words[i]);
    return 0;
}

static int cursor_clear(Cursor *c)
{
    if (!c->busy)
        cursor_finish(c);
    return 0;
}

static void cursor_dealloc(Cursor *c)
{
    PyTypeObject *tp = Py_TYPE(c);
    PyObject_GC_UnTrack(c);
    cursor_finish(c);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(c);
    Py_DECREF(tp);
}

static PyMemberDef cursor_members[] = {
    {"_reads", T_PYSSIZET, offsetof(Cursor, reads), READONLY,
     "native reads so far"},
    {"_read", T_PYSSIZET, offsetof(Cursor, read), READONLY,
     "entries read from the tree so far"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot cursor_slots[] = {
    {Py_tp_doc, "A lazy iterator over a key range of an nfl.Index, read in "
                "chunks (made by Index.irange, iteration and the views)."},
    {Py_tp_dealloc, cursor_dealloc},
    {Py_tp_traverse, cursor_traverse},
    {Py_tp_clear, cursor_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, cursor_next},
    {Py_tp_members, cursor_members},
    {Py_tp_methods, cursor_methods},
    {0, NULL},
};

static PyType_Spec cursor_spec = {
    "nfl._index.Cursor",
    sizeof(Cursor),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    cursor_slots,
};

/* A new Cursor over nfl_range's range (lo, hi raw keys, flags NFL_*) of
 * keys, values or items (what: CURSOR_*); strict as dict's iterators. */
static PyObject *cursor_new(Core *self, uint64_t lo, uint64_t hi, int flags,
                            int what, int strict)
{
    allocfunc alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)cursor_type,
                                                Py_tp_alloc);
    Cursor *c = (Cursor *)alloc((PyTypeObject *)cursor_type, 0);
    if (!c)
        return NULL;
    Py_INCREF(self);
    c->core = self;
    c->lo = lo;
    c->hi = hi;
    c->flags = flags;
    c->what = what;
    c->strict = strict;
    c->want = CURSOR_FIRST;
    return (PyObject *)c;
}

/* _cursor(lo, hi, flags, what, strict): cursor_new's Cursor. */
static PyObject *core_cursor(Core *self, PyObject *const *args,
                             Py_ssize_t nargs)
{
    if (check_args("_cursor", nargs, 5, 5) < 0)
        return NULL;
    if (!self->tree) {
        PyErr_SetString(PyExc_RuntimeError, "the index is not initialized");
        return NULL;
    }
    uint64_t lo = PyLong_AsUnsignedLongLong(args[0]);
    uint64_t hi = PyLong_AsUnsignedLongLong(args[1]);
    long flags = PyLong_AsLong(args[2]);
    long what = PyLong_AsLong(args[3]);
    int strict = PyObject_IsTrue(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (what < CURSOR_KEYS || what > CURSOR_ITEMS || strict < 0) {
        PyErr_Format(PyExc_ValueError, "unknown cursor kind %ld", what);
        return NULL;
    }
    return cursor_new(self, lo, hi, (int)flags, (int)what, strict);
}

/* irange and irange_items: the common case in C (bounds that are keys of the
 * dtype, inclusive a pair of bools, reverse a bool); any other goes to the
 * Python method _irange (bounds the dtype cannot hold, and their errors). */
static const char *const IRANGE_ARGS[] = {"minimum", "maximum", "inclusive",
                                          "reverse"};

/* Sorts irange's arguments into arg (minimum, maximum, inclusive or NULL,
 * reverse): 0, or -1 with TypeError. */
static int irange_args(const char *name, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames, PyObject **arg)
{
    if (nargs > 4) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 4 arguments (%zd given)",
                     name, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        arg[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_Size(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *kw = PyTuple_GetItem(kwnames, j);
        int at = -1;
        for (int a = 0; a < 4 && at < 0; a++)
            if (PyUnicode_CompareWithASCIIString(kw, IRANGE_ARGS[a]) == 0)
                at = a;
        if (at < nargs) {
            PyErr_Format(PyExc_TypeError, at < 0
                         ? "%s() got an unexpected keyword argument '%U'"
                         : "%s() got multiple values for argument '%U'", name, kw);
            return -1;
        }
        arg[at] = args[nargs + j];
    }
    return 0;
}

/* The range flags of inclusive, a pair of bools; -1 for anything else. */
static int inclusive_flags(PyObject *inclusive)
{
    if (!inclusive)
        return NFL_HI_INCLUSIVE;
    PyObject *lo, *hi;
    if (!PyTuple_Check(inclusive) || PyTuple_Size(inclusive) != 2 ||
        !PyBool_Check(lo = PyTuple_GetItem(inclusive, 0)) ||
        !PyBool_Check(hi = PyTuple_GetItem(inclusive, 1)))
        return -1;
    return (lo == Py_False ? NFL_LO_EXCLUSIVE : 0) |
           (hi == Py_True ? NFL_HI_INCLUSIVE : 0);
}

static PyObject *irange_of(Core *self, const char *name, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames, int what)
{
    PyObject *arg[4] = {Py_None, Py_None, NULL, Py_False};
    if (irange_args(name, args, nargs, kwnames, arg) < 0)
        return NULL;
    int flags = inclusive_flags(arg[2]);
    int fast = self->tree && flags >= 0 && PyBool_Check(arg[3]);
    uint64_t bound[2] = {0, 0};
    for (int b = 0; fast && b < 2; b++) {
        if (arg[b] == Py_None)
            flags = (flags & ~(b ? NFL_HI_INCLUSIVE : NFL_LO_EXCLUSIVE)) |
                    (b ? NFL_TO_END : NFL_FROM_START);
        else if (key_bits(arg[b], self->key_type, &bound[b]) < 0) {
            PyErr_Clear(); /* _irange gives the answer or the error */
            fast = 0;
        }
    }
    if (fast)
        return cursor_new(self, bound[0], bound[1],
                          flags | (arg[3] == Py_True ? NFL_REVERSE : 0), what, 0);
    if (!arg[2] && !(arg[2] = both_inclusive) &&
        !(arg[2] = both_inclusive = PyTuple_Pack(2, Py_True, Py_True)))
        return NULL;
    return PyObject_CallMethod((PyObject *)self, "_irange", "OOOOi", arg[0],
                               arg[1], arg[2], arg[3], what);
}

static PyObject *core_irange(Core *self, PyObject *const *args,
                             Py_ssize_t nargs, PyObject *kwnames)
{
    return irange_of(self, "irange", args, nargs, kwnames, CURSOR_KEYS);
}

static PyObject *core_irange_items(Core *self, PyObject *const *args,
                                   Py_ssize_t nargs, PyObject *kwnames)
{
    return irange_of(self, "irange_items", args, nargs, kwnames, CURSOR_ITEMS);
}

static PyObject *core_attach(Core *self, PyObject *const *args,
                             Py_ssize_t nargs)
{
    if (check_args("_attach", nargs, 3, 3) < 0)
        return NULL;
    void *tree = PyLong_AsVoidPtr(args[0]);
    int key_type = PyLong_AsLong(args[1]);
    long value_kind = PyLong_AsLong(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (!nfl_point_fn) {
        PyErr_SetString(PyExc_RuntimeError, "nfl._index is not bound");
        return NULL;
    }
    if (self->tree || !tree || key_type < NFL_KEY_UINT64 ||
        key_type > NFL_KEY_FLOAT64 || value_kind < VALUES_UINT64 ||
        value_kind > VALUES_OBJECT) {
        PyErr_SetString(PyExc_ValueError,
                        "_attach takes a new tree, once per index");
        return NULL;
    }
    self->tree = tree;
    self->key_type = key_type;
    self->value_kind = (int)value_kind;
    Py_RETURN_NONE;
}

static int drop_value(PyObject *obj, void *arg)
{
    (void)arg;
    Py_DECREF(obj);
    return 0;
}

static void core_dealloc(Core *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->tree) {
        nfl_index *tree = self->tree;
        if (self->value_kind == VALUES_OBJECT) /* the tree is unreachable */
            walk_values(self, drop_value, NULL);
        self->tree = NULL;
        nfl_free_fn(tree);
    }
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}
static PyMethodDef core_methods[] = {
    {"get", (PyCFunction)(void (*)(void))core_get, METH_FASTCALL,
     "get(key, default=None): the value of key, or default.\n\n"
     "ValueError/TypeError if key does not fit the key dtype.  O(tree depth)."},
    {"insert", (PyCFunction)(void (*)(void))core_insert, METH_FASTCALL,
     "insert(key, value) -> bool: adds key; False (and no change) if it is "
     "already there."},
    {"replace", (PyCFunction)(void (*)(void))core_replace, METH_FASTCALL,
     "replace(key, value) -> bool: changes the value of an existing key; "
     "False (and no change) if it is absent."},
    {"delete", (PyCFunction)core_delete, METH_O,
     "delete(key) -> bool: removes key; False if it was absent."},
    {"pop", (PyCFunction)(void (*)(void))core_pop, METH_FASTCALL,
     "pop(key[, default]): removes key and returns its value; default if it "
     "is absent, KeyError if no default is given."},
    {"setdefault", (PyCFunction)(void (*)(void))core_setdefault, METH_FASTCALL,
     "setdefault(key, default=None): the value of key; inserts default first "
     "if key is absent (a default the value dtype cannot hold raises then)."},
    {"_attach", (PyCFunction)(void (*)(void))core_attach, METH_FASTCALL,
     "_attach(tree_address, key_type, value_kind): takes ownership of a "
     "tree made by nfl._native.lib.nfl_create (once); value_kind 0 uint64, "
     "1 int64, 2 object."},
    {"_own", (PyCFunction)(void (*)(void))core_own, METH_FASTCALL,
     "_own(values_address, n): the index takes a reference to each object "
     "of an object array whose words a bulk load stored."},
    {"_get_objects", (PyCFunction)(void (*)(void))core_get_objects,
     METH_FASTCALL,
     "_get_objects(keys_address, values_address, found_address, n): batch "
     "lookup of raw keys into an object array (one fused batch descent)."},
    {"_put_objects", (PyCFunction)(void (*)(void))core_put_objects,
     METH_FASTCALL,
     "_put_objects(keys_address, values_address, existed_address, n, mode): "
     "batch write of raw keys and the objects of an object array."},
    {"_delete_objects", (PyCFunction)(void (*)(void))core_delete_objects,
     METH_FASTCALL,
     "_delete_objects(keys_address, deleted_address, n): batch delete."},
    {"_read_objects", (PyCFunction)(void (*)(void))core_read_objects,
     METH_FASTCALL,
     "_read_objects(lo, hi, flags, keys_address, values_address, max) -> n: "
     "an ordered read into a uint64 array and a None-filled object array."},
    {"irange", (PyCFunction)(void (*)(void))core_irange,
     METH_FASTCALL | METH_KEYWORDS,
     "irange($self, /, minimum=None, maximum=None, inclusive=(True, True), "
     "reverse=False)\n--\n\n"
     "A lazy iterator of the keys between minimum and maximum (None: "
     "unbounded), as SortedDict.irange.\n\n"
     "inclusive: whether each bound itself is in range.  The tree is read in "
     "chunks by a native Cursor (the first of nfl._index.CURSOR_FIRST keys, "
     "never the whole range at once); each chunk is a consistent snapshot.  "
     "Bounds are checked when called (TypeError for a non-number, ValueError "
     "for NaN); the iterator raises RuntimeError if the index changed, at the "
     "next chunk or at its end.  Cost: O(log n) to start, then O(1) per key."},
    {"irange_items", (PyCFunction)(void (*)(void))core_irange_items,
     METH_FASTCALL | METH_KEYWORDS,
     "irange_items($self, /, minimum=None, maximum=None, "
     "inclusive=(True, True), reverse=False)\n--\n\n"
     "irange of (key, value) pairs: same arguments; raises what irange "
     "raises.  Cost: O(log n) to start, then O(1) per pair."},
    {"_cursor", (PyCFunction)(void (*)(void))core_cursor, METH_FASTCALL,
     "_cursor(lo, hi, flags, what, strict): a lazy Cursor over an ordered "
     "read (nfl_range's bounds and flags) of keys (what 0), values (1) or "
     "items (2); strict: RuntimeError at the next entry after any write."},
    {"_clear_objects", (PyCFunction)core_clear_objects, METH_NOARGS,
     "_clear_objects(): removes every entry of an object index."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef core_members[] = {
    {"_writes", T_PYSSIZET, offsetof(Core, writes), 0,
     "write calls so far (iterators compare it to detect changes)"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot core_slots[] = {
    {Py_tp_doc, "The native single-key operations of nfl.Index (its base)."},
    {Py_tp_dealloc, core_dealloc},
    {Py_tp_traverse, core_traverse},
    {Py_tp_clear, core_clear},
    {Py_tp_methods, core_methods},
    {Py_tp_members, core_members},
    {Py_mp_subscript, core_subscript},
    {Py_mp_ass_subscript, core_ass_subscript},
    {Py_mp_length, core_length},
    {Py_sq_length, core_length},
    {Py_sq_contains, core_contains},
    {0, NULL},
};

static PyType_Spec core_spec = {
    "nfl._index.Core",
    sizeof(Core),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    core_slots,
};

/* ---- module functions ---------------------------------------------------------- */

static PyObject *mod_bind(PyObject *mod, PyObject *const *args,
                          Py_ssize_t nargs)
{
    (void)mod;
    if (check_args("_bind", nargs, 7, 7) < 0)
        return NULL;
    void *point_addr = PyLong_AsVoidPtr(args[0]);
    void *free_addr = PyLong_AsVoidPtr(args[1]);
    void *range_addr = PyLong_AsVoidPtr(args[2]);
    void *version_addr = PyLong_AsVoidPtr(args[3]);
    void *get_many_addr = PyLong_AsVoidPtr(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (!point_addr || !free_addr || !range_addr || !version_addr ||
        !get_many_addr) {
        PyErr_SetString(PyExc_ValueError, "_bind takes non-NULL functions");
        return NULL;
    }
    nfl_point_fn = (point_fn)point_addr;
    nfl_free_fn = (free_fn)free_addr;
    nfl_range_fn = (range_fn)range_addr;
    nfl_version_fn = (version_fn)version_addr;
    nfl_get_many_fn = (get_many_fn)get_many_addr;
    PyObject *old_integer = np_integer, *old_floating = np_floating;
    Py_INCREF(args[5]);
    Py_INCREF(args[6]);
    np_integer = args[5];
    np_floating = args[6];
    Py_XDECREF(old_integer);
    Py_XDECREF(old_floating);
    Py_RETURN_NONE;
}

static int key_type_arg(PyObject *arg)
{
    long t = PyLong_AsLong(arg);
    if (t == -1 && PyErr_Occurred())
        return -1;
    if (t < NFL_KEY_UINT64 || t > NFL_KEY_FLOAT64) {
        PyErr_Format(PyExc_ValueError, "unknown key type %ld", t);
        return -1;
    }
    return (int)t;
}

static PyObject *mod_key_bits(PyObject *mod, PyObject *const *args,
                              Py_ssize_t nargs)
{
    (void)mod;
    uint64_t bits;
    if (check_args("key_bits", nargs, 2, 2) < 0)
        return NULL;
    int key_type = key_type_arg(args[1]);
    if (key_type < 0 || key_bits(args[0], key_type, &bits) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(bits);
}

static PyObject *mod_value_bits(PyObject *mod, PyObject *const *args,
                                Py_ssize_t nargs)
{
    (void)mod;
    uint64_t bits;
    if (check_args("value_bits", nargs, 2, 2) < 0)
        return NULL;
    int is_signed = PyObject_IsTrue(args[1]);
    if (is_signed < 0 || value_bits(args[0], is_signed, &bits) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(bits);
}

static PyObject *mod_integral(PyObject *mod, PyObject *const *args,
                              Py_ssize_t nargs)
{
    (void)mod;
    if (check_args("integral", nargs, 2, 2) < 0)
        return NULL;
    const char *what = PyUnicode_AsUTF8AndSize(args[1], NULL);
    return what ? integral(args[0], what) : NULL;
}

static PyMethodDef module_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))mod_bind, METH_FASTCALL,
     "_bind(nfl_point_address, nfl_free_address, nfl_range_address, "
     "nfl_version_address, nfl_get_many_address, numpy.integer, "
     "numpy.floating): the core functions and number types to use (once, "
     "from nfl._keys)."},
    {"key_bits", (PyCFunction)(void (*)(void))mod_key_bits, METH_FASTCALL,
     "key_bits(key, key_type) -> int: the raw 8-byte pattern of key in an "
     "index of key_type (NFL_KEY_*); ValueError or TypeError if key does not "
     "fit exactly."},
    {"value_bits", (PyCFunction)(void (*)(void))mod_value_bits, METH_FASTCALL,
     "value_bits(value, signed) -> int: the 8-byte word of an int64 (signed) "
     "or uint64 value; ValueError or TypeError if it does not fit exactly."},
    {"integral", (PyCFunction)(void (*)(void))mod_integral, METH_FASTCALL,
     "integral(obj, what) -> int: obj as an exact int (an int, numpy integer "
     "or integral float); ValueError/TypeError naming `what` otherwise."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef index_module = {
    PyModuleDef_HEAD_INIT, "nfl._index",
    "The single-key path of nfl.Index (see pyindex.c).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__index(void)
{
    PyObject *mod = PyModule_Create(&index_module);
    if (!mod)
        return NULL;
    PyObject *core = PyType_FromSpec(&core_spec);
    if (!core || PyModule_AddObject(mod, "Core", core) < 0) {
        Py_XDECREF(core);
        Py_DECREF(mod);
        return NULL;
    }
    cursor_type = PyType_FromSpec(&cursor_spec); /* kept for core_cursor */
    if (!cursor_type || PyModule_AddObjectRef(mod, "Cursor", cursor_type) < 0 ||
        PyModule_AddIntConstant(mod, "CURSOR_FIRST", CURSOR_FIRST) < 0 ||
        PyModule_AddIntConstant(mod, "CURSOR_CHUNK", CURSOR_CHUNK) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
