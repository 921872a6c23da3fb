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

/* Set once by _bind(); NULL before. */
static point_fn nfl_point_fn;
static free_fn nfl_free_fn;
static range_fn nfl_range_fn;
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

/* _get_objects(keys_address, values_address, found_address, n): the values
 * of n raw keys into an object array (left as it was where not found). */
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
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t v;
        int rc = point(self, NFL_POINT_GET, keys[i], &v);
        if (rc < 0)
            return NULL;
        found[i] = (uint8_t)rc;
        if (rc) {
            PyObject *old = values[i];
            values[i] = word_value(self, v);
            Py_XDECREF(old);
        }
    }
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
     "lookup of raw keys into an object array."},
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
    if (check_args("_bind", nargs, 5, 5) < 0)
        return NULL;
    void *point_addr = PyLong_AsVoidPtr(args[0]);
    void *free_addr = PyLong_AsVoidPtr(args[1]);
    void *range_addr = PyLong_AsVoidPtr(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (!point_addr || !free_addr || !range_addr) {
        PyErr_SetString(PyExc_ValueError, "_bind takes non-NULL functions");
        return NULL;
    }
    nfl_point_fn = (point_fn)point_addr;
    nfl_free_fn = (free_fn)free_addr;
    nfl_range_fn = (range_fn)range_addr;
    PyObject *old_integer = np_integer, *old_floating = np_floating;
    Py_INCREF(args[3]);
    Py_INCREF(args[4]);
    np_integer = args[3];
    np_floating = args[4];
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
     "numpy.integer, "
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
    return mod;
}
