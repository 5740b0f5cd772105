/* The state diff's first pass, in C: find where the env's new state may differ from the tracker's copy.
 * (The reader's per-step record checks, usual_steps, are further down: see the comment there.)
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
#include <math.h>

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
    "The state diff's first pass and the reader's step record checks in C (see recorder/_cdiff.c, "
    "recorder/diff.py and recorder/validate.py).",
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
