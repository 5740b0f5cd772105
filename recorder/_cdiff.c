/* The state diff's first pass, in C: find where the env's new state may differ from the tracker's copy.
 * (The reader's per-step record checks, usual_steps, and the usual step's write, usual_write, are further down:
 * see the comments there.)
 *
 * The recorder keeps a private copy of the env's last state (recorder/diff.py). Each step, before any row is
 * made, this module walks the copy and the env's live state side by side and returns the few places where
 * they may differ ("spots"); the Python walk (diff.py: _dict_child) then makes the rows for those places only.
 * On the benchmark's ~9 KB state this pass costs a few microseconds, where the Python walk over every item
 * cost ~30 (docs/PERFORMANCE.md).
 *
 * It is conservative by construction: a pair is skipped only when it is provably the same value as the codec
 * stores it, under rules stricter than diff.py's:
 *   - the same object (the copy shares its immutable leaves with the env's state, and holds no mutable
 *     object of the env's: copy_state copies every container);
 *   - or the same exact type (no subclass) and: str, int, bytes equal by their C comparison (which runs no
 *     Python code for these exact types); float equal with the same sign of zero, or both NaN (diff.py's
 *     _same_float); dict with the same length, the same keys in the same order (each key the same object or
 *     an equal exact str) and the same values; list and tuple with the same length and the same items.
 * Everything else (bool and None that are not the same object, numpy arrays, sets, subclasses, objects) is
 * "may differ", and Python decides. A dict whose keys differ in any way, and a list that is not the same, is
 * returned whole, so that the Python walk handles key order, insertions, removals and a queue's shift.
 * The walk goes at most MAX_DEPTH levels down; deeper, the container is returned whole.
 *
 * No Python code runs during the comparisons themselves (exact builtin types only). Making the result
 * allocates, which may run a garbage collection and with it a finalizer; the objects being walked are held
 * with strong references and dict sizes are checked after each child, and a change seen there returns the
 * containing dict whole (so the Python walk, which is exact, runs over it). A value a finalizer replaces
 * without changing a dict's size, in a part already walked, is recorded on the next step (as by the Python walk
 * when Python code the state runs during its walk changes a part it has passed).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <math.h>
#ifndef _WIN32
#include <sys/uio.h>
#endif

#define MAX_DEPTH 48

/* A key on the way down, linked to its parent's: a path is made into a list only for a spot. */
typedef struct Step {
    PyObject *key;
    const struct Step *up;
    Py_ssize_t depth;
} Step;

static int same(PyObject *a, PyObject *b, int depth);

/* Dict iteration without a call per item: PyDict_Next was half of the pass's time (docs/PERFORMANCE.md,
 * "Session 8"). For CPython 3.11 and 3.12, whose combined dict tables are laid out as mirrored below
 * (Include/internal/pycore_dict.h: the keys object, then its index table, then its entries), dict_next reads the
 * entries directly; split tables (ma_values set) and other versions go through PyDict_Next. The positions are
 * PyDict_Next's own for combined tables (an entry's index), and every call reads the dict's current keys object
 * and entry count, so a dict changed during the walk (a finalizer) is read within its bounds, as PyDict_Next
 * would. The module's init compares both on dicts of every kind and keeps the direct reads only when they agree
 * (``_cdiff.direct_dicts``). */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000 && !defined(Py_LIMITED_API)
#define DIRECT_DICTS 1
typedef struct {
    PyObject *key;
    PyObject *value;
} UnicodeEntry;
typedef struct {
    Py_hash_t hash;
    PyObject *key;
    PyObject *value;
} GeneralEntry;
typedef struct {
    Py_ssize_t refcnt;
    uint8_t log2_size;
    uint8_t log2_index_bytes;
    uint8_t kind; /* 0: general keys (entries with their hash); otherwise str keys (entries without) */
    uint32_t version;
    Py_ssize_t usable;
    Py_ssize_t nentries;
    char indices[];
} KeysLayout;
static int direct_dicts = 0;
#else
#define DIRECT_DICTS 0
#endif

static inline int
dict_next(PyObject *d, Py_ssize_t *pos, PyObject **key, PyObject **value)
{
#if DIRECT_DICTS
    PyDictObject *mp = (PyDictObject *)d;
    if (direct_dicts && mp->ma_values == NULL) {
        const KeysLayout *k = (const KeysLayout *)mp->ma_keys;
        Py_ssize_t i = *pos, n = k->nentries;
        if (i < 0) {
            return 0;
        }
        const char *entries = &k->indices[(size_t)1 << k->log2_index_bytes];
        if (k->kind == 0) {
            const GeneralEntry *e = (const GeneralEntry *)entries;
            while (i < n && e[i].value == NULL) {
                i++;
            }
            if (i >= n) {
                return 0;
            }
            *key = e[i].key;
            *value = e[i].value;
        }
        else {
            const UnicodeEntry *e = (const UnicodeEntry *)entries;
            while (i < n && e[i].value == NULL) {
                i++;
            }
            if (i >= n) {
                return 0;
            }
            *key = e[i].key;
            *value = e[i].value;
        }
        *pos = i + 1;
        return 1;
    }
#endif
    return PyDict_Next(d, pos, key, value);
}

static int
same_float(double x, double y)
{
    if (x == y) {
        return x != 0.0 || (!signbit(x)) == (!signbit(y));
    }
    return isnan(x) && isnan(y);
}

/* 1: the same key as stored; 0: maybe not; -1: error. */
static int
same_key(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;
    }
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b)) {
        return PyObject_RichCompareBool(a, b, Py_EQ);
    }
    return 0;
}

/* 1: the same value as stored (see the file's comment); 0: maybe not; -1: error. Allocates nothing. */
static int
same(PyObject *a, PyObject *b, int depth)
{
    if (a == b) {
        return 1;
    }
    PyTypeObject *t = Py_TYPE(a);
    if (t != Py_TYPE(b)) {
        return 0;
    }
    if (t == &PyUnicode_Type || t == &PyLong_Type || t == &PyBytes_Type) {
        return PyObject_RichCompareBool(a, b, Py_EQ);
    }
    if (t == &PyFloat_Type) {
        return same_float(PyFloat_AS_DOUBLE(a), PyFloat_AS_DOUBLE(b));
    }
    if (depth >= MAX_DEPTH) {
        return 0;
    }
    if (t == &PyList_Type || t == &PyTuple_Type) {
        Py_ssize_t n = Py_SIZE(a);
        if (n != Py_SIZE(b)) {
            return 0;
        }
        PyObject **ia = t == &PyList_Type ? ((PyListObject *)a)->ob_item : ((PyTupleObject *)a)->ob_item;
        PyObject **ib = t == &PyList_Type ? ((PyListObject *)b)->ob_item : ((PyTupleObject *)b)->ob_item;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (ia[i] != ib[i]) {
                int r = same(ia[i], ib[i], depth + 1);
                if (r != 1) {
                    return r;
                }
            }
        }
        return 1;
    }
    if (t == &PyDict_Type) {
        if (PyDict_GET_SIZE(a) != PyDict_GET_SIZE(b)) {
            return 0;
        }
        Py_ssize_t pa = 0, pb = 0;
        PyObject *ka, *va, *kb, *vb;
        while (dict_next(a, &pa, &ka, &va)) {
            if (!dict_next(b, &pb, &kb, &vb)) {
                return 0;
            }
            int r = same_key(ka, kb);
            if (r != 1) {
                return r;
            }
            if (va != vb) {
                r = same(va, vb, depth + 1);
                if (r != 1) {
                    return r;
                }
            }
        }
        return 1;
    }
    return 0; /* bool/None not the same object, and every other type: Python decides */
}

static PyObject *
make_path(const Step *s)
{
    Py_ssize_t n = s == NULL ? 0 : s->depth;
    PyObject *path = PyList_New(n);
    if (path == NULL) {
        return NULL;
    }
    for (; s != NULL; s = s->up) {
        Py_INCREF(s->key);
        PyList_SET_ITEM(path, s->depth - 1, s->key);
    }
    return path;
}

/* Append (parent, key, new value, path to parent) to out. 0 on success, -1 on error. */
static int
add_spot(PyObject *out, PyObject *parent, PyObject *key, PyObject *value, const Step *at)
{
    PyObject *path = make_path(at);
    if (path == NULL) {
        return -1;
    }
    PyObject *spot = PyTuple_Pack(4, parent, key, value, path);
    Py_DECREF(path);
    if (spot == NULL) {
        return -1;
    }
    int r = PyList_Append(out, spot);
    Py_DECREF(spot);
    return r;
}

/* What a scan appends to: the spots; with rows asked for (kind set), the rows of changed leaves and the
 * (parent, key, value) triples, flat, that bring the copy up to date once the whole scan succeeded. */
typedef struct {
    PyObject *out;
    PyObject *kind; /* the rows' kind ("values_changed"), or NULL: every changed place is a spot */
    PyObject *removed; /* "iterable_item_removed" and "iterable_item_added", for a queue's shift */
    PyObject *added;
    PyObject *sets; /* (dict, key, value): dict[key] = value; (list, None, value): del list[0], append value */
} Scan;

/* A leaf pair whose row the Python walk (diff.py: _dict_child) makes without looking further: the same exact
 * type among its scalars (None is always the same object). same() said they differ, and for these exact types
 * the walk's own tests (==, a float's sign, NaN) say so too, so its row is [path + [key], kind, new, old]. */
static inline int
leaf_pair(PyObject *a, PyObject *b)
{
    PyTypeObject *t = Py_TYPE(a);
    return t == Py_TYPE(b) && (t == &PyUnicode_Type || t == &PyLong_Type || t == &PyFloat_Type
                               || t == &PyBytes_Type || t == &PyBool_Type);
}

/* The path of the place ``key`` (then ``index``, when >= 0) under ``at``: a new list, or NULL. */
static PyObject *
path_to(const Step *at, PyObject *key, Py_ssize_t index)
{
    Py_ssize_t n = at == NULL ? 0 : at->depth;
    PyObject *i = NULL;
    if (index >= 0 && (i = PyLong_FromSsize_t(index)) == NULL) {
        return NULL;
    }
    PyObject *path = PyList_New(n + (i == NULL ? 1 : 2));
    if (path == NULL) {
        Py_XDECREF(i);
        return NULL;
    }
    for (const Step *s = at; s != NULL; s = s->up) {
        Py_INCREF(s->key);
        PyList_SET_ITEM(path, s->depth - 1, s->key);
    }
    Py_INCREF(key);
    PyList_SET_ITEM(path, n, key);
    if (i != NULL) {
        PyList_SET_ITEM(path, n + 1, i);
    }
    return path;
}

/* Append the row [path, kind, value, stored] to out. ``path``: a new reference, taken (NULL: an error already
 * set). */
static int
append_row(Scan *sc, PyObject *path, PyObject *kind, PyObject *value, PyObject *stored)
{
    if (path == NULL) {
        return -1;
    }
    PyObject *row = PyList_New(4);
    if (row == NULL) {
        Py_DECREF(path);
        return -1;
    }
    PyList_SET_ITEM(row, 0, path);
    Py_INCREF(kind);
    PyList_SET_ITEM(row, 1, kind);
    Py_INCREF(value);
    PyList_SET_ITEM(row, 2, value);
    Py_INCREF(stored);
    PyList_SET_ITEM(row, 3, stored);
    int r = PyList_Append(sc->out, row);
    Py_DECREF(row);
    return r;
}

/* Append the row [path + [key], kind, value, stored] to out, and (parent, key, value) to sets. */
static int
add_row(Scan *sc, PyObject *parent, PyObject *key, PyObject *value, PyObject *stored, const Step *at)
{
    if (append_row(sc, path_to(at, key, -1), sc->kind, value, stored) < 0
        || PyList_Append(sc->sets, parent) < 0 || PyList_Append(sc->sets, key) < 0
        || PyList_Append(sc->sets, value) < 0) {
        return -1;
    }
    return 0;
}

/* A row [path + [key, index], kind, value, stored] appended to out. */
static int
add_item_row(Scan *sc, PyObject *key, Py_ssize_t index, PyObject *kind, PyObject *value, PyObject *stored,
             const Step *at)
{
    return append_row(sc, path_to(at, key, index), kind, value, stored);
}

/* A bounded queue's step: ``new`` is ``old`` without its first item and with one item appended. The Python walk
 * (diff.py: _walk_list) gives such a list two rows, the first item removed and the last added; this makes them
 * where the walk's answer is certain: two exact lists of the same length n >= 2 whose first items and whose last
 * items are scalar leaves of the same exact type that differ (so the walk finds no common head or tail), and
 * old[1:] provably the same as new[:-1] (so its first shift tried, by one, matches). 1: the rows are made (and
 * the copy's update queued in sets); 0: not this case, the list is a spot; -1: error. Allocates only after
 * the comparisons. */
static int
list_shift(Scan *sc, PyObject *key, PyObject *old, PyObject *new, const Step *at, int depth)
{
    Py_ssize_t n = PyList_GET_SIZE(old);
    if (n < 2 || PyList_GET_SIZE(new) != n) {
        return 0;
    }
    PyObject **io = ((PyListObject *)old)->ob_item, **in = ((PyListObject *)new)->ob_item;
    if (!leaf_pair(io[0], in[0]) || !leaf_pair(io[n - 1], in[n - 1])) {
        return 0;
    }
    int r = same(io[0], in[0], depth + 1);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    r = same(io[n - 1], in[n - 1], depth + 1);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        if (io[i] != in[i - 1]) {
            r = same(io[i], in[i - 1], depth + 1);
            if (r != 1) {
                return r < 0 ? -1 : 0;
            }
        }
    }
    /* Hold the items: making the rows allocates (a collection may run a finalizer that changes new). */
    PyObject *first = io[0], *last = in[n - 1];
    Py_INCREF(first);
    Py_INCREF(last);
    r = -1;
    if (add_item_row(sc, key, 0, sc->removed, Py_None, first, at) == 0
        && add_item_row(sc, key, n - 1, sc->added, last, Py_None, at) == 0
        && PyList_Append(sc->sets, old) == 0 && PyList_Append(sc->sets, Py_None) == 0
        && PyList_Append(sc->sets, last) == 0) {
        r = 1;
    }
    Py_DECREF(first);
    Py_DECREF(last);
    return r;
}

/* Walk two exact dicts. 1: done, spots appended to out; 0: the dicts differ in their keys (or changed while
 * walked): nothing appended, the caller reports them whole; -1: error. */
static int
scan_dict(PyObject *old, PyObject *new, const Step *at, Scan *sc, int depth)
{
    if (depth >= MAX_DEPTH) {
        return 0;
    }
    Py_ssize_t n = PyDict_GET_SIZE(old);
    if (n != PyDict_GET_SIZE(new)) {
        return 0;
    }
    PyObject *out = sc->out;
    Py_ssize_t mark = PyList_GET_SIZE(out);
    Py_ssize_t set_mark = sc->kind != NULL ? PyList_GET_SIZE(sc->sets) : 0;
    Py_ssize_t po = 0, pn = 0;
    PyObject *ko, *vo, *kn, *vn;
    int result = 1;
    while (dict_next(old, &po, &ko, &vo)) {
        if (!dict_next(new, &pn, &kn, &vn)) {
            result = 0;
            break;
        }
        int r = same_key(ko, kn);
        if (r != 1) {
            result = r;
            break;
        }
        if (vo == vn) {
            continue;
        }
        if (PyDict_CheckExact(vo) && PyDict_CheckExact(vn)) {
            /* Held while the walk below may allocate (and so collect garbage and run a finalizer). */
            Py_INCREF(ko);
            Py_INCREF(vo);
            Py_INCREF(vn);
            Step step = {ko, at, at == NULL ? 1 : at->depth + 1};
            r = scan_dict(vo, vn, &step, sc, depth + 1);
            if (r == 0) {
                r = add_spot(out, old, ko, vn, at) == 0 ? 1 : -1;
            }
            Py_DECREF(ko);
            Py_DECREF(vo);
            Py_DECREF(vn);
        }
        else {
            r = same(vo, vn, depth + 1);
            if (r == 0) {
                Py_INCREF(ko);
                Py_INCREF(vo);
                Py_INCREF(vn);
                if (sc->kind != NULL && leaf_pair(vo, vn)) {
                    r = add_row(sc, old, ko, vn, vo, at) == 0 ? 1 : -1;
                }
                else {
                    r = sc->kind != NULL && PyList_CheckExact(vo) && PyList_CheckExact(vn)
                        ? list_shift(sc, ko, vo, vn, at, depth + 1) : 0;
                    if (r == 0) {
                        r = add_spot(out, old, ko, vn, at) == 0 ? 1 : -1;
                    }
                }
                Py_DECREF(ko);
                Py_DECREF(vo);
                Py_DECREF(vn);
            }
        }
        if (r != 1) {
            result = r;
            break;
        }
        if (PyDict_GET_SIZE(old) != n || PyDict_GET_SIZE(new) != n) {
            result = 0; /* changed while walked (a finalizer): the caller reports the dict whole */
            break;
        }
    }
    if (result == 1 && dict_next(new, &pn, &kn, &vn)) {
        result = 0;
    }
    if (result != 1) {
        if (PyList_SetSlice(out, mark, PyList_GET_SIZE(out), NULL) < 0) {
            return -1;
        }
        if (sc->kind != NULL && PyList_SetSlice(sc->sets, set_mark, PyList_GET_SIZE(sc->sets), NULL) < 0) {
            return -1;
        }
    }
    return result;
}

PyDoc_STRVAR(scan_doc,
"scan(old, new, kinds=None) -> list | None\n\n"
"The places where ``new`` (the env's state) may differ from ``old`` (the tracker's copy): a list of\n"
"``(parent, key, value, path)``, where ``parent`` is a dict of ``old``, ``key`` one of its keys, ``value``\n"
"the new value at that key and ``path`` the keys from the root to ``parent``; in the order of a depth-first\n"
"walk. Every other place holds the same value as stored. [] when nothing differs; None when the roots\n"
"themselves must be compared (not two dicts with the same keys in the same order).\n\n"
"With ``kinds`` (diff.py's VALUES_CHANGED, ITEM_REMOVED, ITEM_ADDED), a place whose stored and new values\n"
"are of the same exact type among str, int, float, bytes and bool is given as its row instead, the list\n"
"``[path + [key], VALUES_CHANGED, value, stored]`` the Python walk makes for it, and a list that shifted by\n"
"one (a bounded queue: see list_shift) as the walk's two rows; ``old`` is brought up to date there once the\n"
"whole scan succeeded. Rows and spots keep the walk's order; when some place is a spot, the result is a tuple\n"
"instead of a list (a list then holds rows only).");

static PyObject *
cdiff_scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 2 or 3 arguments (old, new, kind=None)");
        return NULL;
    }
    PyObject *old = args[0], *new = args[1];
    Scan sc = {NULL, NULL, NULL, NULL, NULL};
    if (nargs == 3 && args[2] != Py_None) {
        PyObject *kinds = args[2];
        if (!PyTuple_CheckExact(kinds) || PyTuple_GET_SIZE(kinds) != 3) {
            PyErr_SetString(PyExc_TypeError, "scan()'s kinds must be a tuple of 3 row kinds (changed, removed, added)");
            return NULL;
        }
        sc.kind = PyTuple_GET_ITEM(kinds, 0);
        sc.removed = PyTuple_GET_ITEM(kinds, 1);
        sc.added = PyTuple_GET_ITEM(kinds, 2);
    }
    sc.out = PyList_New(0);
    if (sc.out == NULL) {
        return NULL;
    }
    if (old == new) {
        return sc.out;
    }
    int r;
    if (PyDict_CheckExact(old) && PyDict_CheckExact(new)) {
        if (sc.kind != NULL && (sc.sets = PyList_New(0)) == NULL) {
            Py_DECREF(sc.out);
            return NULL;
        }
        r = scan_dict(old, new, NULL, &sc, 0);
        /* The copy takes the new leaves only now: a scan that gave up half way (a dict changed while walked,
         * reported whole) must leave the stored values for the Python walk to compare. */
        for (Py_ssize_t i = 0; r == 1 && sc.sets != NULL && i + 2 < PyList_GET_SIZE(sc.sets); i += 3) {
            PyObject *target = PyList_GET_ITEM(sc.sets, i), *value = PyList_GET_ITEM(sc.sets, i + 2);
            if (PyList_CheckExact(target)) { /* a queue's shift */
                if (PyList_SetSlice(target, 0, 1, NULL) < 0 || PyList_Append(target, value) < 0) {
                    r = -1;
                }
            }
            else if (PyDict_SetItem(target, PyList_GET_ITEM(sc.sets, i + 1), value) < 0) {
                r = -1;
            }
        }
        Py_XDECREF(sc.sets);
    }
    else {
        r = same(old, new, 0);
    }
    if (r == 1) {
        if (sc.kind != NULL) {
            /* Rows and spots together come as a tuple: a list says, without a look at its items, that every
             * item is a row (the usual step), and is the caller's to keep. */
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(sc.out); i++) {
                if (PyTuple_CheckExact(PyList_GET_ITEM(sc.out, i))) {
                    PyObject *both = PyList_AsTuple(sc.out);
                    Py_DECREF(sc.out);
                    return both;
                }
            }
        }
        return sc.out;
    }
    Py_DECREF(sc.out);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(same_doc,
"same(a, b) -> bool\n\n"
"True when ``a`` and ``b`` are provably the same value as stored (exact builtin types only: see the\n"
"module's comment); False means \"maybe not\", for the Python comparison to decide.");

static PyObject *
cdiff_same(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "same() takes exactly 2 arguments (a, b)");
        return NULL;
    }
    int r = same(args[0], args[1], 0);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

/* ------------------------------------------------------------------------------------------------------------
 * The reader's per-step record checks (recorder/validate.py: steps_problem), their fast path in C.
 *
 * Every frame a reader decodes has its step records checked before they are trusted (validate.steps_problem);
 * in Python the usual record's exact type tests cost ~0.7 µs a step of a tool env, a quarter of decoding it
 * (docs/PERFORMANCE.md, "Session 11"). usual_steps makes the same tests, and only those: a record it passes is
 * one validate._usual_optional and the inline tests of steps_problem pass, which step_problem accepts. It never
 * says why a record is not usual: it stops there, and Python (step_problem) gives the verdict and the message.
 *
 * Lookups go through PyDict_GetItemWithError with exact str keys, which can run Python code only when a record
 * holds a key of a type with its own __eq__ and the same hash (never in a decoded record, whose keys are exact
 * builtin values): the record and the failure map are held by strong references while they are looked up, and
 * each value a lookup returns (borrowed) is tested before the next lookup, with no Python code in between.
 */

/* The keys the checks read, interned once at module init (msgpack interns decoded map keys, so a lookup
 * usually meets the very same object). */
static PyObject *k_i, *k_time, *k_duration, *k_note, *k_checks, *k_failure, *k_retry_of, *k_recovers, *k_diff;
static PyObject *k_failure_keys[4]; /* kind, message, traceback, type */

/* d[key], borrowed, or NULL when missing (*err set to 1 when the lookup raised). */
static inline PyObject *
lookup(PyObject *d, PyObject *key, int *err)
{
    PyObject *v = PyDict_GetItemWithError(d, key);
    if (v == NULL && PyErr_Occurred()) {
        *err = 1;
    }
    return v;
}

/* 1: rec is a usual step record numbered `expected` (validate.steps_problem's inline tests and _usual_optional);
 * 0: it is not (Python decides); -1: error. */
static int
usual_step(PyObject *rec, long long expected)
{
    if (!PyDict_CheckExact(rec)) {
        return 0;
    }
    int err = 0, r = 0;
    Py_INCREF(rec);
    PyObject *v = lookup(rec, k_i, &err);
    if (v == NULL || !PyLong_CheckExact(v)) {
        goto done;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (n == -1 && PyErr_Occurred()) {
        err = 1;
        goto done;
    }
    if (overflow || n != expected) {
        goto done;
    }
    /* time and duration: an exact float or int, or missing (counts as 0.0); None is not usual. */
    v = lookup(rec, k_time, &err);
    if (err || (v != NULL && !PyFloat_CheckExact(v) && !PyLong_CheckExact(v))) {
        goto done;
    }
    v = lookup(rec, k_duration, &err);
    if (err || (v != NULL && !PyFloat_CheckExact(v) && !PyLong_CheckExact(v))) {
        goto done;
    }
    /* The optional fields: missing and None are the same (dict.get). */
    v = lookup(rec, k_note, &err);
    if (err || (v != NULL && v != Py_None && !PyDict_CheckExact(v))) {
        goto done;
    }
    v = lookup(rec, k_checks, &err);
    if (err || (v != NULL && v != Py_None)) {
        goto done;
    }
    v = lookup(rec, k_failure, &err);
    if (err) {
        goto done;
    }
    if (v != NULL && v != Py_None) {
        if (!PyDict_CheckExact(v)) {
            goto done;
        }
        PyObject *failure = v;
        Py_INCREF(failure);
        int ok = 1;
        for (int k = 0; k < 4 && ok; k++) {
            PyObject *f = lookup(failure, k_failure_keys[k], &err);
            ok = !err && (f == NULL || f == Py_None || PyUnicode_CheckExact(f));
        }
        Py_DECREF(failure);
        if (!ok) {
            goto done;
        }
    }
    v = lookup(rec, k_retry_of, &err);
    if (err || (v != NULL && v != Py_None && !PyLong_CheckExact(v))) {
        goto done;
    }
    v = lookup(rec, k_recovers, &err);
    if (err) {
        goto done;
    }
    if (v != NULL && v != Py_None) {
        if (!PyList_CheckExact(v)) {
            goto done;
        }
        /* Type tests only below: no Python code runs, the list cannot change. */
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(v); k++) {
            if (!PyLong_CheckExact(PyList_GET_ITEM(v, k))) {
                goto done;
            }
        }
    }
    v = lookup(rec, k_diff, &err);
    if (err) {
        goto done;
    }
    if (v != NULL && v != Py_None) {
        if (!PyList_CheckExact(v)) {
            goto done;
        }
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(v); k++) {
            PyObject *row = PyList_GET_ITEM(v, k);
            if (!PyList_CheckExact(row) || PyList_GET_SIZE(row) != 4 || !PyList_CheckExact(PyList_GET_ITEM(row, 0))
                    || !PyUnicode_CheckExact(PyList_GET_ITEM(row, 1))) {
                goto done;
            }
        }
    }
    r = 1;
done:
    Py_DECREF(rec);
    return err ? -1 : r;
}

PyDoc_STRVAR(usual_steps_doc,
"usual_steps(recs, first, start=0) -> int\n\n"
"The position of the first record of the list ``recs`` from ``start`` on that is not a usual step record, or\n"
"``len(recs)`` when all are; the record at position ``p`` must be numbered ``first + p``. A usual record is one\n"
"validate.steps_problem's inline tests pass (see the comment above this function in recorder/_cdiff.c); the\n"
"record found is left to validate.step_problem, which accepts it or says what is wrong.");

static PyObject *
cdiff_usual_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "usual_steps() takes 2 or 3 arguments (recs, first, start=0)");
        return NULL;
    }
    PyObject *recs = args[0];
    if (!PyList_CheckExact(recs)) {
        PyErr_SetString(PyExc_TypeError, "usual_steps()'s recs must be a list");
        return NULL;
    }
    if (!PyLong_CheckExact(args[1]) || (nargs == 3 && !PyLong_CheckExact(args[2]))) {
        PyErr_SetString(PyExc_TypeError, "usual_steps()'s first and start must be ints");
        return NULL;
    }
    Py_ssize_t pos = 0;
    if (nargs == 3) {
        pos = PyLong_AsSsize_t(args[2]);
        if (pos == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (pos < 0) {
            PyErr_SetString(PyExc_ValueError, "usual_steps()'s start must not be negative");
            return NULL;
        }
    }
    int overflow = 0;
    long long first = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* A numbering outside 0..LLONG_MAX (never written; a crafted file) is left to Python's exact integers. */
    if (overflow || first < 0) {
        return PyLong_FromSsize_t(pos);
    }
    /* The size is read again each time: a lookup that ran Python code may have changed the list. */
    for (; pos < PyList_GET_SIZE(recs) && (long long)pos <= LLONG_MAX - first; pos++) {
        int r = usual_step(PyList_GET_ITEM(recs, pos), first + (long long)pos);
        if (r < 0) {
            return NULL;
        }
        if (r == 0) {
            break;
        }
    }
    return PyLong_FromSsize_t(pos);
}

/* ---- The usual step's write: EpisodeWriter.write_usual_step in one call (recorder/writer.py) ----------------
 *
 * The Recorder's usual step (its frame open, the header out, no snapshot opening the frame, terminated and
 * truncated exact bools, the reward an exact float, no exception's mark) spent ~0.9 µs in Python bookkeeping
 * around its pack, compress and write: attribute loads and stores on the EpisodeWriter, its FrameWriter, its
 * SummaryBuilder and the frame table. usual_write does the same work with the writer's state read and written
 * in place: the hot fields are __slots__ of those three classes, whose offsets usual_setup takes from their
 * member descriptors once (Python reads and writes the same fields through the same descriptors). The Recorder
 * calls it before write_usual_step (a Python call less a step). On bench/record_overhead.py's tool env this took
 * a median 0.66 µs/step off the Recorder's overhead over seven runs (0.08-1.10: the bench's run-to-run noise at
 * load 3-6), main's Recorder timed in the same rounds; 0.58 in one process, this write against its Python code.
 *
 * It does the step or nothing:
 *   - False: not the usual case, or anything unusual found before the record was compressed (a writer in any
 *     other state, a field of an unexpected type, a pack that raised an Exception, a record over
 *     MAX_RECORD_BYTES, a frame that frame_bytes closes after this record, a FrameWriter whose write_fd is not
 *     os.write, fsync on for the step that finishes a frame). Nothing changed (the packer's buffer resets
 *     itself): Python writes the step (write_usual_step's own code), with every error path it has.
 *   - True: the step was written whole by one writev(2) (the record's zstd block, or its last block and the
 *     frame's end), and every field write_usual_step would change was changed, in its order.
 *   - (raw, data, n, errno): the record was packed and compressed, and the write stopped short: n bytes of data
 *     went out (errno 0), or none and the write failed with errno. Nothing else changed but the compressor's
 *     state: Python goes on from there as FrameWriter.append does after its os.write (writer.py:
 *     EpisodeWriter._resume_usual): the rest written, or the file cut back and TrajrecIOError raised.
 *   - an exception: one that is no Exception from the pack (a stop, nothing changed), or from compress or flush
 *     (frame_raw counted, as FrameWriter.append counts it before compressing), or a signal handler's during an
 *     interrupted write (the same), or a MemoryError while storing the new values (those stored before stay,
 *     as in Python).
 * Python code runs only inside the calls (pack, its default, compress, flush, signal handlers); every object the
 * function reads is held by a strong reference across them, and the writer's fields are read again after them
 * where they are stored.
 */

#ifndef _WIN32
#define USUAL_WRITE 1 /* (writev: POSIX) */
#else
#define USUAL_WRITE 0
#endif

#define MARK_FAILURE 1
#define MARK_EXCEPTION 2
#define MARK_RECOVERY 4
#define MARK_RETRY 8

enum { W_FW, W_PACKER, W_FRAME_STEPS, W_FRAME_BYTES, W_FRAMES, W_STEPS, W_SUMMARY, W_STEP_MARKS, W_LAST_MARK,
       W_IN_FRAME, W_FRAME_OPEN, W_FRAME_ALLOW, W_PENDING, W_N };
static const char *const w_names[W_N] = {"_fw", "_packer", "frame_steps", "frame_bytes", "frames", "steps",
                                         "summary", "step_marks", "_last_mark", "_frame_steps", "_frame_open",
                                         "_frame_allow", "_pending"};
enum { F_FD, F_CO, F_FSYNC, F_OFFSET, F_FRAME_RAW, F_BROKEN, F_CUT, F_CHUNKS, F_DEFERRED, F_N };
static const char *const f_names[F_N] = {"_fd", "_co", "_fsync", "offset", "frame_raw", "broken", "_cut_pending",
                                         "_frame_chunks", "_deferred"};
enum { S_STEPS, S_RET, S_LAST_STEP, S_TERM, S_TRUNC, S_END_TIME, S_FAILURES, S_RETRIES, S_RECOVERIES, S_N };
static const char *const s_names[S_N] = {"steps", "ret", "last_step", "terminated", "truncated", "end_time",
                                         "failures", "retries", "recoveries"};

/* Set by usual_setup (never freed: the classes live as long as the module). */
static PyTypeObject *w_type, *f_type, *s_type;
static Py_ssize_t w_off[W_N], f_off[F_N], s_off[S_N];
static PyObject *u_os_write, *u_flush_block, *u_flush_finish;
static PyObject *u_s_write_fd, *u_s_compress, *u_s_flush, *k_terminated, *k_truncated, *k_reward;
static Py_ssize_t u_max_record;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* Store value (a new reference, stolen) in obj's slot; the old value is released (ints, floats, bools, None, a
 * list of bytes, a zstd compressor: no Python code runs). */
static inline void
store(PyObject *obj, Py_ssize_t off, PyObject *value)
{
    PyObject **p = (PyObject **)((char *)obj + off);
    PyObject *old = *p;
    *p = value;
    Py_XDECREF(old);
}

/* rec[key], borrowed, or NULL when missing (*err set when the lookup raised): first the entry at position hint
 * (where the Recorder's record literal puts key), read directly as dict_next reads entries (the same checked
 * layout), when it holds this very key object; else the lookup. An entry holding the key object is the dict's
 * one entry for it, so both give the same value. */
static inline PyObject *
record_get(PyObject *rec, PyObject *key, Py_ssize_t hint, int *err)
{
#if DIRECT_DICTS
    PyDictObject *mp = (PyDictObject *)rec;
    if (direct_dicts && mp->ma_values == NULL) {
        const KeysLayout *k = (const KeysLayout *)mp->ma_keys;
        if (k->kind != 0 && hint < k->nentries) {
            const UnicodeEntry *e = (const UnicodeEntry *)&k->indices[(size_t)1 << k->log2_index_bytes];
            if (e[hint].key == key && e[hint].value != NULL) {
                return e[hint].value;
            }
        }
    }
#else
    (void)hint;
#endif
    return lookup(rec, key, err);
}

/* An exact int's value in *out: 1; 0 when it is none (or does not fit). */
static inline int
small_int(PyObject *v, Py_ssize_t *out)
{
    if (v == NULL || !PyLong_CheckExact(v)) {
        return 0;
    }
    Py_ssize_t n = PyLong_AsSsize_t(v);
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = n;
    return 1;
}

/* The offsets of type's slots named in names, from its member descriptors: -1 (and an error) when one is not
 * a writable object slot of that very type. */
static int
slot_offsets(PyTypeObject *type, const char *const *names, Py_ssize_t *offsets, int n)
{
    for (int j = 0; j < n; j++) {
        PyObject *d = PyDict_GetItemString(type->tp_dict, names[j]);
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)
                || ((PyDescrObject *)d)->d_type != type) {
            PyErr_Format(PyExc_TypeError, "usual_setup: %s.%s is not a slot of that class", type->tp_name,
                         names[j]);
            return -1;
        }
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY)) {
            PyErr_Format(PyExc_TypeError, "usual_setup: %s.%s is not a writable object slot", type->tp_name,
                         names[j]);
            return -1;
        }
        offsets[j] = m->offset;
    }
    return 0;
}

PyDoc_STRVAR(usual_setup_doc,
"usual_setup(EpisodeWriter, FrameWriter, SummaryBuilder, os_write, flush_block, flush_finish, max_record_bytes)\n"
"-> bool\n\n"
"Prepare usual_write for these classes (their slots' offsets), ``os_write`` (what FrameWriter.write_fd must\n"
"be for usual_write to write itself), the compressor's flush modes and the largest record. False where\n"
"usual_write is not built (no writev: Windows).");

static PyObject *
cdiff_usual_setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "usual_setup() takes 7 arguments");
        return NULL;
    }
#if USUAL_WRITE
    for (int j = 0; j < 3; j++) {
        if (!PyType_Check(args[j])) {
            PyErr_SetString(PyExc_TypeError, "usual_setup(): the first three arguments must be classes");
            return NULL;
        }
    }
    Py_ssize_t max_record = PyLong_AsSsize_t(args[6]);
    if (max_record == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t w[W_N], f[F_N], s[S_N];
    if (slot_offsets((PyTypeObject *)args[0], w_names, w, W_N) < 0
            || slot_offsets((PyTypeObject *)args[1], f_names, f, F_N) < 0
            || slot_offsets((PyTypeObject *)args[2], s_names, s, S_N) < 0) {
        return NULL;
    }
    if (u_s_write_fd == NULL) {
        if ((u_s_write_fd = PyUnicode_InternFromString("write_fd")) == NULL
                || (u_s_compress = PyUnicode_InternFromString("compress")) == NULL
                || (u_s_flush = PyUnicode_InternFromString("flush")) == NULL
                || (k_terminated = PyUnicode_InternFromString("terminated")) == NULL
                || (k_truncated = PyUnicode_InternFromString("truncated")) == NULL
                || (k_reward = PyUnicode_InternFromString("reward")) == NULL) {
            return NULL;
        }
    }
    memcpy(w_off, w, sizeof(w));
    memcpy(f_off, f, sizeof(f));
    memcpy(s_off, s, sizeof(s));
    PyObject *old[6] = {(PyObject *)w_type, (PyObject *)f_type, (PyObject *)s_type, u_os_write, u_flush_block,
                        u_flush_finish};
    Py_INCREF(args[0]);
    Py_INCREF(args[1]);
    Py_INCREF(args[2]);
    Py_INCREF(args[3]);
    Py_INCREF(args[4]);
    Py_INCREF(args[5]);
    w_type = (PyTypeObject *)args[0];
    f_type = (PyTypeObject *)args[1];
    s_type = (PyTypeObject *)args[2];
    u_os_write = args[3];
    u_flush_block = args[4];
    u_flush_finish = args[5];
    u_max_record = max_record;
    for (int j = 0; j < 6; j++) {
        Py_XDECREF(old[j]);
    }
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

PyDoc_STRVAR(usual_write_doc,
"usual_write(writer, record, has_state, flags) -> True | False | (raw, data, n, errno)\n\n"
"EpisodeWriter.write_usual_step(record, None, has_state, flags) for the usual step, in one call: True when\n"
"done; False when not the usual case (nothing changed: Python writes the step); a tuple when the write stopped\n"
"short (EpisodeWriter._resume_usual goes on). See the comment above this function in recorder/_cdiff.c.");

#if USUAL_WRITE
/* The compressor's compress and flush, as found on its type the last time (its MRO cache's answer). */
typedef struct {
    PyTypeObject *type; /* (compared only, not held: the descriptor below holds its type) */
    unsigned int version; /* the type's version tag then: any change to the type (or its bases) changes it */
    PyObject *descr;
} MethodCache;
static MethodCache u_compress, u_flush;

/* obj.name(args[1]) with args = {obj, arg}: the method descriptor found on obj's type called directly, as
 * PyObject_VectorcallMethod calls it, without the lookup when obj's type is the one seen last; an instance
 * attribute of that name (none on a compressor) or any other kind of attribute takes PyObject_VectorcallMethod. */
static PyObject *
call_method(PyObject *obj, PyObject *name, MethodCache *cache, PyObject **args)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (cache->type != type || cache->version != type->tp_version_tag
            || !PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG)) {
        PyObject *d = _PyType_Lookup(type, name); /* (assigns the type a version tag) */
        if (d == NULL || !Py_IS_TYPE(d, &PyMethodDescr_Type) || type->tp_dictoffset != 0
                || !PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG)) {
            return PyObject_VectorcallMethod(name, args, 2, NULL);
        }
        Py_INCREF(d);
        Py_XSETREF(cache->descr, d);
        cache->type = type;
        cache->version = type->tp_version_tag;
    }
    return PyObject_Vectorcall(cache->descr, args, 2, NULL);
}

/* The rest of usual_write, once every object is read and checked (held by strong references in refs). */
static PyObject *
usual_write_checked(PyObject *w, PyObject *fw, PyObject *rec, PyObject *const *refs, long flags, int last,
                    Py_ssize_t in_frame, Py_ssize_t frame_bytes_room, int fd)
{
    /* refs: packer, co, term, trunc, reward, i, time, frame (the frame table's last row) */
    PyObject *packer = refs[0], *co = refs[1], *term = refs[2], *trunc = refs[3], *reward = refs[4];
    PyObject *i = refs[5], *time = refs[6], *frame = refs[7];
    PyObject *raw = PyObject_Vectorcall(packer, &rec, 1, NULL);
    if (raw == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL; /* a stop: nothing changed, as from write_usual_step's own pack */
        }
        PyErr_Clear();
        Py_RETURN_FALSE; /* pack_record's slow path decides what to keep */
    }
    Py_ssize_t raw_len = PyBytes_CheckExact(raw) ? PyBytes_GET_SIZE(raw) : -1;
    if (raw_len < 0 || raw_len > u_max_record || (!last && raw_len >= frame_bytes_room)) {
        Py_DECREF(raw);
        Py_RETURN_FALSE; /* shrunk by _shrink, or the frame closes after it: Python's path */
    }
    PyObject *result = NULL, *c = NULL, *f = NULL, *data = NULL;
    PyObject *cargs[2] = {co, raw};
    c = call_method(co, u_s_compress, &u_compress, cargs);
    if (c != NULL) {
        cargs[1] = last ? u_flush_finish : u_flush_block;
        f = call_method(co, u_s_flush, &u_flush, cargs);
    }
    /* The writer's fields are read again from here on: pack and compress ran Python code (a value's default). */
    Py_ssize_t start, frame_raw;
    if (c == NULL || f == NULL) {
        goto count_raw;
    }
    if (!small_int(SLOT(fw, f_off[F_FRAME_RAW]), &frame_raw)) {
        goto bad_field;
    }
    if (!PyBytes_CheckExact(c) || !PyBytes_CheckExact(f) || !small_int(SLOT(fw, f_off[F_OFFSET]), &start)) {
        /* Not bytes (never from python-zstandard), or the offset changed type: Python writes it all. */
        data = PyNumber_Add(c, f);
        if (data != NULL) {
            result = Py_BuildValue("(OOni)", raw, data, (Py_ssize_t)0, 0);
        }
        goto done;
    }
    Py_ssize_t clen = PyBytes_GET_SIZE(c), flen = PyBytes_GET_SIZE(f), total = clen + flen, n;
    struct iovec iov[2] = {{PyBytes_AS_STRING(c), (size_t)clen}, {PyBytes_AS_STRING(f), (size_t)flen}};
    int err = 0;
    for (;;) {
        /* As os.write: the GIL released during the call, retried after EINTR once the signal handlers ran. */
        Py_BEGIN_ALLOW_THREADS
        n = writev(fd, iov, 2);
        err = n < 0 ? errno : 0;
        Py_END_ALLOW_THREADS
        if (n >= 0 || err != EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            goto count_raw; /* a handler raised (Ctrl-C): as from os.write, frame_raw counted */
        }
    }
    if (n != total) {
        data = PyNumber_Add(c, f);
        if (data != NULL) {
            result = Py_BuildValue("(OOni)", raw, data, n < 0 ? (Py_ssize_t)0 : n, err);
        }
        goto done;
    }
    /* Written whole: store what FrameWriter.append, EpisodeWriter._append_usual and write_usual_step store, in
     * their order. */
    PyObject *v;
    if ((v = PyLong_FromSsize_t(frame_raw + raw_len)) == NULL) {
        goto done;
    }
    store(fw, f_off[F_FRAME_RAW], v);
    if ((v = PyLong_FromSsize_t(start + total)) == NULL) {
        goto done;
    }
    store(fw, f_off[F_OFFSET], v); /* (v stays alive in the slot: the frame table's end below takes it too) */
    if (last) {
        PyObject *chunks = PyList_New(0);
        if (chunks == NULL) {
            goto done;
        }
        Py_INCREF(Py_None);
        store(fw, f_off[F_CO], Py_None);
        store(fw, f_off[F_CHUNKS], chunks);
        if (PyList_GET_SIZE(frame) != 4) {
            goto bad_field;
        }
        Py_INCREF(v);
        PyObject *old_end = PyList_GET_ITEM(frame, 3);
        PyList_SET_ITEM(frame, 3, v);
        Py_DECREF(old_end);
        Py_INCREF(Py_False);
        store(w, w_off[W_FRAME_OPEN], Py_False);
    }
    else {
        PyObject *chunks = SLOT(fw, f_off[F_CHUNKS]);
        if (chunks == NULL || !PyList_CheckExact(chunks)) {
            PyErr_SetString(PyExc_TypeError, "FrameWriter._frame_chunks is no longer a list");
            goto done;
        }
        if (PyList_Append(chunks, raw) < 0) {
            goto done;
        }
    }
    Py_ssize_t k;
    if (PyList_GET_SIZE(frame) != 4 || !small_int(PyList_GET_ITEM(frame, 2), &k)
            || (v = PyLong_FromSsize_t(k + 1)) == NULL) {
        goto bad_field;
    }
    PyObject *old_n = PyList_GET_ITEM(frame, 2);
    PyList_SET_ITEM(frame, 2, v);
    Py_DECREF(old_n);
    if ((v = PyLong_FromSsize_t(in_frame + 1)) == NULL) {
        goto done;
    }
    store(w, w_off[W_IN_FRAME], v);
    Py_ssize_t steps;
    if (!small_int(SLOT(w, w_off[W_STEPS]), &steps) || (v = PyLong_FromSsize_t(steps + 1)) == NULL) {
        goto bad_field;
    }
    store(w, w_off[W_STEPS], v);
    PyObject *summary = SLOT(w, w_off[W_SUMMARY]);
    if (summary == NULL || Py_TYPE(summary) != s_type) {
        goto bad_field;
    }
    Py_INCREF(summary);
    int ok = 0;
    Py_ssize_t s_steps;
    PyObject *ret = SLOT(summary, s_off[S_RET]);
    if (small_int(SLOT(summary, s_off[S_STEPS]), &s_steps) && ret != NULL && PyFloat_CheckExact(ret)
            && (v = PyLong_FromSsize_t(s_steps + 1)) != NULL) {
        store(summary, s_off[S_STEPS], v);
        Py_INCREF(i);
        store(summary, s_off[S_LAST_STEP], i);
        if ((v = PyFloat_FromDouble(PyFloat_AS_DOUBLE(ret) + PyFloat_AS_DOUBLE(reward))) != NULL) {
            store(summary, s_off[S_RET], v);
            Py_INCREF(term);
            store(summary, s_off[S_TERM], term);
            Py_INCREF(trunc);
            store(summary, s_off[S_TRUNC], trunc);
            Py_INCREF(time);
            store(summary, s_off[S_END_TIME], time);
            ok = 1;
        }
    }
    static const int counters[3][2] = {{MARK_FAILURE, S_FAILURES}, {MARK_RETRY, S_RETRIES},
                                       {MARK_RECOVERY, S_RECOVERIES}};
    for (int j = 0; j < 3 && ok; j++) {
        if (flags & counters[j][0]) {
            Py_ssize_t count;
            ok = small_int(SLOT(summary, s_off[counters[j][1]]), &count)
                 && (v = PyLong_FromSsize_t(count + 1)) != NULL;
            if (ok) {
                store(summary, s_off[counters[j][1]], v);
            }
        }
    }
    Py_DECREF(summary);
    if (!ok) {
        goto bad_field;
    }
    if (flags) {
        /* _mark_last_step: the step's position (steps - 1, steps as stored above) and flags, after the last one. */
        Py_ssize_t last_mark;
        PyObject *marks = SLOT(w, w_off[W_STEP_MARKS]);
        if (marks == NULL || !PyList_CheckExact(marks) || !small_int(SLOT(w, w_off[W_LAST_MARK]), &last_mark)) {
            goto bad_field;
        }
        PyObject *gap = PyLong_FromSsize_t(steps - last_mark), *fl = PyLong_FromLong(flags);
        int r = gap != NULL && fl != NULL && PyList_Append(marks, gap) == 0 && PyList_Append(marks, fl) == 0;
        Py_XDECREF(gap);
        Py_XDECREF(fl);
        if (!r || (v = PyLong_FromSsize_t(steps)) == NULL) {
            goto done;
        }
        store(w, w_off[W_LAST_MARK], v);
    }
    result = Py_True;
    Py_INCREF(result);
    goto done;
bad_field:
    if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "a field of the episode writer changed type during a step's write");
    }
    goto done;
count_raw:
    /* compress or flush raised, or a signal handler did: FrameWriter.append had counted the record already. */
    {
        PyObject *exc_type, *exc_value, *exc_tb;
        PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
        Py_ssize_t fr;
        if (small_int(SLOT(fw, f_off[F_FRAME_RAW]), &fr)) {
            PyObject *nv = PyLong_FromSsize_t(fr + raw_len);
            if (nv != NULL) {
                store(fw, f_off[F_FRAME_RAW], nv);
            }
            else {
                PyErr_Clear();
            }
        }
        PyErr_Restore(exc_type, exc_value, exc_tb);
    }
done:
    Py_XDECREF(data);
    Py_XDECREF(f);
    Py_XDECREF(c);
    Py_DECREF(raw);
    (void)frame;
    return result;
}
#endif

static PyObject *
cdiff_usual_write(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "usual_write() takes 4 arguments (writer, record, has_state, flags)");
        return NULL;
    }
#if USUAL_WRITE
    PyObject *w = args[0], *rec = args[1];
    Py_ssize_t flags;
    if (w_type == NULL || Py_TYPE(w) != w_type || !PyDict_CheckExact(rec) || !small_int(args[3], &flags)
            || flags < 0 || flags > 15 || (flags & MARK_EXCEPTION)
            || (args[2] != Py_True && args[2] != Py_False)) {
        Py_RETURN_FALSE;
    }
    int has_state = args[2] == Py_True;
    PyObject *fw = SLOT(w, w_off[W_FW]);
    if (fw == NULL || Py_TYPE(fw) != f_type) {
        Py_RETURN_FALSE;
    }
    /* write_fd must be os.write itself (tests swap in writers that fail), looked up as Python looks it up; first,
     * as the lookup could run Python code (a property someone put there). */
    Py_INCREF(fw);
    PyObject *write_fd = PyObject_GetAttr(fw, u_s_write_fd);
    if (write_fd == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(write_fd);
    Py_DECREF(fw); /* (compared below, not used, until w's slot is seen to hold it still) */
    if (write_fd != u_os_write) {
        Py_RETURN_FALSE;
    }
    /* The record's fields write_usual_step reads, each held as soon as found (lookups of exact str keys: in the
     * Recorder's records they run no Python code; where one did, the writer's state is read after it). */
    int err = 0;
    PyObject *result = Py_False;
    PyObject *term = NULL, *trunc = NULL, *reward = NULL, *i = NULL, *time = NULL;
    PyObject **fields[5] = {&term, &trunc, &reward, &i, &time};
    PyObject *const keys[5] = {k_terminated, k_truncated, k_reward, k_i, k_time};
    static const Py_ssize_t hints[5] = {5, 6, 4, 1, 8}; /* their places in the Recorder's record literal */
    for (int j = 0; j < 5; j++) {
        *fields[j] = record_get(rec, keys[j], hints[j], &err);
        if (*fields[j] == NULL) {
            if (err) {
                PyErr_Clear(); /* Python's own lookup raises it again */
            }
            goto not_usual;
        }
        Py_INCREF(*fields[j]);
    }
    if ((term != Py_True && term != Py_False) || (trunc != Py_True && trunc != Py_False)
            || !PyFloat_CheckExact(reward)) {
        goto not_usual;
    }
    /* The writer's state, borrowed: no Python code runs from here until everything is held (refs below). */
    if (SLOT(w, w_off[W_FW]) != fw) {
        goto not_usual;
    }
    Py_ssize_t in_frame, frame_steps, frame_bytes, frame_allow, fd, frame_raw;
    PyObject *packer = SLOT(w, w_off[W_PACKER]);
    if (SLOT(w, w_off[W_FRAME_OPEN]) != Py_True || SLOT(w, w_off[W_PENDING]) != Py_None
            || !small_int(SLOT(w, w_off[W_IN_FRAME]), &in_frame) || (has_state && in_frame == 0)
            || !small_int(SLOT(w, w_off[W_FRAME_STEPS]), &frame_steps)
            || !small_int(SLOT(w, w_off[W_FRAME_BYTES]), &frame_bytes)
            || !small_int(SLOT(w, w_off[W_FRAME_ALLOW]), &frame_allow) || packer == NULL) {
        goto not_usual;
    }
    PyObject *frames = SLOT(w, w_off[W_FRAMES]);
    if (frames == NULL || !PyList_CheckExact(frames) || PyList_GET_SIZE(frames) == 0) {
        goto not_usual;
    }
    PyObject *frame = PyList_GET_ITEM(frames, PyList_GET_SIZE(frames) - 1);
    PyObject *summary = SLOT(w, w_off[W_SUMMARY]);
    if (!PyList_CheckExact(frame) || PyList_GET_SIZE(frame) != 4 || !PyLong_CheckExact(PyList_GET_ITEM(frame, 2))
            || !PyLong_CheckExact(SLOT(w, w_off[W_STEPS])) || summary == NULL || Py_TYPE(summary) != s_type) {
        goto not_usual;
    }
    PyObject *co = SLOT(fw, f_off[F_CO]), *deferred = SLOT(fw, f_off[F_DEFERRED]);
    PyObject *chunks = SLOT(fw, f_off[F_CHUNKS]);
    if (co == NULL || co == Py_None || !small_int(SLOT(fw, f_off[F_FD]), &fd) || fd < 0 || fd > INT_MAX
            || SLOT(fw, f_off[F_BROKEN]) != Py_None || SLOT(fw, f_off[F_CUT]) != Py_False
            || deferred == NULL || !PyBytes_CheckExact(deferred) || PyBytes_GET_SIZE(deferred) != 0
            || chunks == NULL || !PyList_CheckExact(chunks)
            || !small_int(SLOT(fw, f_off[F_FRAME_RAW]), &frame_raw) || !PyLong_CheckExact(SLOT(fw, f_off[F_OFFSET]))) {
        goto not_usual;
    }
    int last = term == Py_True || trunc == Py_True || in_frame + 1 >= frame_steps;
    if (last && SLOT(fw, f_off[F_FSYNC]) != Py_False) {
        goto not_usual;
    }
    /* The frame closes for frame_bytes after a record of this many bytes or more: Python's path does that. */
    Py_ssize_t room = frame_bytes + frame_allow - frame_raw;
    PyObject *refs[10] = {packer, co, term, trunc, reward, i, time, frame, fw, w};
    PyObject *held[5] = {packer, co, frame, fw, w}; /* (the record's fields are held already) */
    for (int j = 0; j < 5; j++) {
        Py_INCREF(held[j]);
    }
    Py_INCREF(rec);
    result = usual_write_checked(w, fw, rec, refs, (long)flags, last, in_frame, room, (int)fd);
    Py_DECREF(rec);
    for (int j = 0; j < 5; j++) {
        Py_DECREF(held[j]);
    }
    goto release;
not_usual:
    Py_INCREF(result);
release:
    for (int j = 0; j < 5; j++) {
        Py_XDECREF(*fields[j]);
    }
    return result;
#else
    Py_RETURN_FALSE;
#endif
}

/* Makes the interned keys the checks read (once per process: they are never freed). */
static int
intern_keys(void)
{
    if (k_failure_keys[3] != NULL) { /* made by an earlier init (the last slot filled) */
        return 0;
    }
    static const char *names[] = {"i", "time", "duration", "note", "checks", "failure", "retry_of", "recovers",
                                  "diff", "kind", "message", "traceback", "type"};
    PyObject **slots[] = {&k_i, &k_time, &k_duration, &k_note, &k_checks, &k_failure, &k_retry_of, &k_recovers,
                          &k_diff, &k_failure_keys[0], &k_failure_keys[1], &k_failure_keys[2], &k_failure_keys[3]};
    for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
        if ((*slots[j] = PyUnicode_InternFromString(names[j])) == NULL) {
            return -1;
        }
    }
    return 0;
}

static PyMethodDef cdiff_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))cdiff_scan, METH_FASTCALL, scan_doc},
    {"same", (PyCFunction)(void (*)(void))cdiff_same, METH_FASTCALL, same_doc},
    {"usual_steps", (PyCFunction)(void (*)(void))cdiff_usual_steps, METH_FASTCALL, usual_steps_doc},
    {"usual_setup", (PyCFunction)(void (*)(void))cdiff_usual_setup, METH_FASTCALL, usual_setup_doc},
    {"usual_write", (PyCFunction)(void (*)(void))cdiff_usual_write, METH_FASTCALL, usual_write_doc},
    {NULL, NULL, 0, NULL},
};

#if DIRECT_DICTS
/* 1 when dict_next's direct reads give what PyDict_Next gives on d (the same keys, values and positions). */
static int
agrees(PyObject *d)
{
    Py_ssize_t p1 = 0, p2 = 0;
    PyObject *k1, *v1, *k2, *v2;
    for (;;) {
        int r1 = dict_next(d, &p1, &k1, &v1);
        int r2 = PyDict_Next(d, &p2, &k2, &v2);
        if (r1 != r2) {
            return 0;
        }
        if (!r1) {
            return 1;
        }
        if (k1 != k2 || v1 != v2 || p1 != p2) {
            return 0;
        }
    }
}

/* A dict of n keys (str keys, or ints with one str when general), with every third key deleted. */
static PyObject *
sample_dict(Py_ssize_t n, int general)
{
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = general && i ? PyLong_FromSsize_t(i) : PyUnicode_FromFormat("k%zd", i);
        PyObject *value = key == NULL ? NULL : PyLong_FromSsize_t(i * 7);
        int r = value == NULL ? -1 : PyDict_SetItem(d, key, value);
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (r < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    for (Py_ssize_t i = 1; i < n; i += 3) {
        PyObject *key = general && i ? PyLong_FromSsize_t(i) : PyUnicode_FromFormat("k%zd", i);
        int r = key == NULL ? -1 : PyDict_DelItem(d, key);
        Py_XDECREF(key);
        if (r < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}
#endif

static int
cdiff_exec(PyObject *module)
{
    if (intern_keys() < 0) {
        return -1;
    }
#if DIRECT_DICTS
    /* Direct reads only where they agree with PyDict_Next: str and general keys, with deleted entries, with
     * index tables of 1 and 2 bytes a slot. */
    static const Py_ssize_t sizes[] = {0, 1, 5, 40, 400};
    direct_dicts = 1;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && direct_dicts; i++) {
        for (int general = 0; general < 2 && direct_dicts; general++) {
            PyObject *d = sample_dict(sizes[i], general);
            if (d == NULL) {
                direct_dicts = 0;
                return -1;
            }
            direct_dicts = agrees(d);
            Py_DECREF(d);
        }
    }
    return PyModule_AddIntConstant(module, "direct_dicts", direct_dicts);
#else
    return PyModule_AddIntConstant(module, "direct_dicts", 0);
#endif
}

static PyModuleDef_Slot cdiff_slots[] = {
    {Py_mod_exec, cdiff_exec},
    {0, NULL},
};

static struct PyModuleDef cdiff_module = {
    PyModuleDef_HEAD_INIT,
    "_cdiff",
    "The state diff's first pass, the usual step's write and the reader's step record checks in C (see "
    "recorder/_cdiff.c, recorder/diff.py, recorder/writer.py and recorder/validate.py).",
    0,
    cdiff_methods,
    cdiff_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__cdiff(void)
{
    return PyModuleDef_Init(&cdiff_module);
}
