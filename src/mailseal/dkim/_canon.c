/* mailseal.dkim._canon: the relaxed body whitespace transform in one pass.
 *
 * An optional accelerator for mailseal/dkim/canonical.py, which falls back to
 * ``relax_py`` (the same transform with bytes methods) when this module is not
 * built. relax(data) is exactly relax_py(data) on one buffer:
 *
 *   - every run of SP/HTAB becomes one SP (RFC 6376 §3.4.4 b: "reduce all
 *     sequences of WSP within a line to a single SP character");
 *   - a run directly followed by CRLF disappears (§3.4.4 a: "ignore all
 *     whitespace at the end of lines");
 *   - everything else, bare CR and bare LF included, is copied as it is.
 *
 * Streaming (a run or a CRLF split across chunks) is not handled here: the
 * caller holds back a trailing SP/CR and feeds it again with the next chunk.
 *
 * Most mail has nothing to change: the scan then finds no change point and the
 * input object itself is returned, without a copy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define BLOCK 32
#define DENSE 256

/* The first index from i on where the transform changes something: a HTAB, or
 * an SP followed by SP, HTAB or CRLF. n if there is none. When the scan starts
 * at 0 or just after a WSP run, a change point is always the first byte of a
 * run (within a run, an SP before the changing byte is itself a change). */
static Py_ssize_t
next_change(const unsigned char *p, Py_ssize_t i, Py_ssize_t n)
{
    /* Whole blocks without branches in the inner loop, so the compiler can
     * vectorize it; the two bytes of lookahead stay inside the buffer. */
    while (i + BLOCK + 2 <= n) {
        unsigned int hit = 0;
        for (int k = 0; k < BLOCK; k++) {
            unsigned char c = p[i + k], d = p[i + k + 1], e = p[i + k + 2];
            hit |= (unsigned int)(c == '\t')
                   | ((unsigned int)(c == ' ')
                      & ((unsigned int)(d == ' ') | (unsigned int)(d == '\t')
                         | ((unsigned int)(d == '\r') & (unsigned int)(e == '\n'))));
        }
        if (hit) {
            break; /* the loop below finds it within this block */
        }
        i += BLOCK;
    }
    for (; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\t') {
            return i;
        }
        if (c == ' ' && i + 1 < n) {
            unsigned char d = p[i + 1];
            if (d == ' ' || d == '\t') {
                return i;
            }
            if (d == '\r' && i + 2 < n && p[i + 2] == '\n') {
                return i;
            }
        }
    }
    return n;
}

PyDoc_STRVAR(relax_doc,
"relax(data, /)\n--\n\n"
"Reduce every run of SP/HTAB to one SP and drop a run directly followed by\n"
"CRLF (RFC 6376 §3.4.4 a, b). Returns data itself when nothing changes.");

static PyObject *
relax(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "relax() argument must be bytes, not %.200s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    Py_ssize_t i = next_change(p, 0, n);
    if (i == n) {
        if (PyBytes_CheckExact(arg)) {
            return Py_NewRef(arg);
        }
        return PyBytes_FromStringAndSize((const char *)p, n);
    }

    /* The output is never longer than the input. */
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *start = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *o = start;
    Py_ssize_t done = 0; /* input up to here is in the output */
    while (i < n) {
        memcpy(o, p + done, (size_t)(i - done));
        o += i - done;
        /* Byte by byte from the change point, without unpredictable branches,
         * for at least DENSE bytes (changes tend to cluster) and then up to the
         * end of a WSP run, so the scan resumes after a non-WSP byte. */
        Py_ssize_t stop = i + DENSE < n ? i + DENSE : n;
        unsigned int prev = 0; /* p[i - 1] is not WSP: i starts a run */
        for (; i < n && (i < stop || prev); i++) {
            unsigned char c = p[i];
            unsigned int w = (unsigned int)(c == ' ') | (unsigned int)(c == '\t');
            if (c == '\r' && prev && i + 1 < n && p[i + 1] == '\n') {
                o--; /* the SP written for the run ending here */
            }
            *o = w ? ' ' : c;
            o += !(w & prev);
            prev = w;
        }
        done = i;
        i = next_change(p, i, n);
    }
    memcpy(o, p + done, (size_t)(n - done));
    o += n - done;
    if (_PyBytes_Resize(&out, o - start) < 0) {
        return NULL;
    }
    return out;
}

/* --- header fields (RFC 6376 §3.4.2) ------------------------------------------
 *
 * relaxed_headers(fields) is exactly
 *     b"\r\n".join(canonical.relaxed_header(f[0], f[1]) for f in fields)
 * for a list or tuple of tuples whose first two items are bytes (HeaderField):
 * the name with SP/HTAB stripped and A-Z lower-cased, ":", then the value with
 * every LF and every CR directly before an LF deleted (unfolding), runs of
 * SP/HTAB reduced to one SP and SP/HTAB at both ends deleted. Any other byte
 * (a bare CR, VT, FF, 8-bit) is copied as it is. */

static int
field_parts(PyObject *item, PyObject **name, PyObject **value)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 2) {
        PyErr_Format(PyExc_TypeError,
                     "relaxed_headers() items must be (name, value, ...) tuples, not %.200s",
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    *name = PyTuple_GET_ITEM(item, 0);
    *value = PyTuple_GET_ITEM(item, 1);
    if (!PyBytes_Check(*name) || !PyBytes_Check(*value)) {
        PyErr_SetString(PyExc_TypeError, "relaxed_headers() names and values must be bytes");
        return -1;
    }
    return 0;
}

static unsigned char *
relaxed_one(unsigned char *o, PyObject *name, PyObject *value)
{
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(name);
    Py_ssize_t a = 0, b = PyBytes_GET_SIZE(name);
    while (a < b && (p[a] == ' ' || p[a] == '\t')) {
        a++;
    }
    while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t')) {
        b--;
    }
    for (; a < b; a++) {
        unsigned char c = p[a];
        *o++ = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
    }
    *o++ = ':';
    p = (const unsigned char *)PyBytes_AS_STRING(value);
    Py_ssize_t n = PyBytes_GET_SIZE(value);
    int started = 0, space = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == ' ' || c == '\t') {
            space = 1;
            continue;
        }
        if (c == '\n' || (c == '\r' && i + 1 < n && p[i + 1] == '\n')) {
            continue; /* unfolding: the WSP on either side still counts as one run */
        }
        if (space && started) {
            *o++ = ' ';
        }
        space = 0;
        started = 1;
        *o++ = c;
    }
    return o;
}

PyDoc_STRVAR(relaxed_headers_doc,
"relaxed_headers(fields, /)\n--\n\n"
"The fields, each (name, value, ...) with bytes name and value, canonicalized\n"
"with the relaxed header algorithm (RFC 6376 §3.4.2) and joined by CRLF (no\n"
"CRLF after the last one).");

static PyObject *
relaxed_headers(PyObject *module, PyObject *arg)
{
    (void)module;
    PyObject *seq = PySequence_Fast(arg, "relaxed_headers() argument must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t size = 0;
    PyObject *name, *value;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (field_parts(items[k], &name, &value) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        /* never longer than name ":" value CRLF */
        size += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 3;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    unsigned char *start = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *o = start;
    for (Py_ssize_t k = 0; k < count; k++) {
        (void)field_parts(items[k], &name, &value); /* checked above */
        if (k) {
            *o++ = '\r';
            *o++ = '\n';
        }
        o = relaxed_one(o, name, value);
    }
    Py_DECREF(seq);
    if (_PyBytes_Resize(&out, o - start) < 0) {
        return NULL;
    }
    return out;
}

/* --- header sections (mailseal/message.py) -------------------------------------
 *
 * to_crlf(data) is exactly message.to_crlf_py(data): a CR is put before every LF
 * that has none; data itself is returned when there is no such LF.
 *
 * parse_fields(head, cls) is exactly message.parse_fields_py(head, cls), that
 * is parse_header_block without the field count limit; cls is HeaderField (a
 * tuple subclass without instance fields):
 * split at every CRLF not followed by SP/HTAB; keep the pieces with a ":" whose
 * part before it is not empty once ASCII whitespace is stripped, as
 * (name, value, lname) with lname that part stripped and A-Z lower-cased. */

PyDoc_STRVAR(to_crlf_doc,
"to_crlf(data, /)\n--\n\n"
"Put a CR before every LF not preceded by one. Returns data itself when there\n"
"is none.");

static PyObject *
to_crlf(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "to_crlf() argument must be bytes, not %.200s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg), bare = 0;
    const char *q = p, *end = p + n;
    while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
        bare += q == p || q[-1] != '\r';
        q++;
    }
    if (!bare) {
        if (PyBytes_CheckExact(arg)) {
            return Py_NewRef(arg);
        }
        return PyBytes_FromStringAndSize(p, n);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n + bare);
    if (out == NULL) {
        return NULL;
    }
    char *o = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
            *o++ = '\r';
        }
        *o++ = p[i];
    }
    return out;
}

static int
is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

/* Appends the field in p[0:n] to list if it has a name; 0, or -1 on error. */
static int
add_field(PyObject *list, PyTypeObject *cls, const char *p, Py_ssize_t n)
{
    const char *colon = memchr(p, ':', (size_t)n);
    if (colon == NULL) {
        return 0;
    }
    Py_ssize_t c = colon - p, a = 0, b = c;
    while (a < b && is_space((unsigned char)p[a])) {
        a++;
    }
    while (b > a && is_space((unsigned char)p[b - 1])) {
        b--;
    }
    if (a == b) {
        return 0;
    }
    PyObject *field = cls->tp_alloc(cls, 3);
    if (field == NULL) {
        return -1;
    }
    PyObject *name = PyBytes_FromStringAndSize(p, c);
    PyObject *value = PyBytes_FromStringAndSize(colon + 1, n - c - 1);
    PyObject *lname = PyBytes_FromStringAndSize(NULL, b - a);
    if (name == NULL || value == NULL || lname == NULL) {
        Py_XDECREF(name);
        Py_XDECREF(value);
        Py_XDECREF(lname);
        Py_DECREF(field);
        return -1;
    }
    char *l = PyBytes_AS_STRING(lname);
    for (Py_ssize_t i = a; i < b; i++) {
        unsigned char ch = (unsigned char)p[i];
        *l++ = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
    }
    PyTuple_SET_ITEM(field, 0, name);
    PyTuple_SET_ITEM(field, 1, value);
    PyTuple_SET_ITEM(field, 2, lname);
    int rc = PyList_Append(list, field);
    Py_DECREF(field);
    return rc;
}

PyDoc_STRVAR(parse_fields_doc,
"parse_fields(head, cls, /)\n--\n\n"
"The header fields of a CRLF-separated header block, as cls(name, value, lname)\n"
"(cls: a tuple subclass with no instance fields of its own).");

static PyObject *
parse_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse_fields() takes exactly 2 arguments");
        return NULL;
    }
    PyObject *head = args[0];
    PyTypeObject *cls = (PyTypeObject *)args[1];
    if (!PyBytes_Check(head)) {
        PyErr_Format(PyExc_TypeError, "parse_fields() head must be bytes, not %.200s",
                     Py_TYPE(head)->tp_name);
        return NULL;
    }
    if (!PyType_Check(args[1]) || !PyType_IsSubtype(cls, &PyTuple_Type)
        || cls->tp_basicsize != PyTuple_Type.tp_basicsize
        || cls->tp_itemsize != PyTuple_Type.tp_itemsize || cls->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "parse_fields() cls must be a tuple subclass without instance fields");
        return NULL;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(head);
    Py_ssize_t n = PyBytes_GET_SIZE(head), start = 0;
    const char *q = p, *end = p + n;
    while ((q = memchr(q, '\r', (size_t)(end - q))) != NULL) {
        Py_ssize_t i = q - p;
        if (i + 1 < n && p[i + 1] == '\n' && (i + 2 == n || (p[i + 2] != ' ' && p[i + 2] != '\t'))) {
            if (add_field(list, cls, p + start, i - start) < 0) {
                Py_DECREF(list);
                return NULL;
            }
            start = i + 2;
            q = p + start;
        }
        else {
            q++;
        }
    }
    if (add_field(list, cls, p + start, n - start) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    return list;
}

PyDoc_STRVAR(find_dot_line_doc,
"find_dot_line(data, start, /)\n--\n\n"
"data.find(b'\\r\\n.', start) for start >= 0, by looking only at the dots (memchr):\n"
"bytes.find is slow for this pattern in text, where dots are common.");

static PyObject *
find_dot_line(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "find_dot_line() takes exactly 2 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "find_dot_line() data must be bytes, not %.200s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (start < 0) {
        PyErr_SetString(PyExc_ValueError, "find_dot_line() start must be >= 0");
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t i = start + 2;  /* where the dot of a match starting at start would be */
    while (i < n) {
        const char *q = memchr(p + i, '.', (size_t)(n - i));
        if (q == NULL) {
            break;
        }
        Py_ssize_t j = q - p;
        if (p[j - 1] == '\n' && p[j - 2] == '\r') {
            return PyLong_FromSsize_t(j - 2);
        }
        i = j + 1;
    }
    return PyLong_FromSsize_t(-1);
}

static PyMethodDef canon_methods[] = {
    {"find_dot_line", (PyCFunction)(void (*)(void))find_dot_line, METH_FASTCALL,
     find_dot_line_doc},
    {"relax", relax, METH_O, relax_doc},
    {"relaxed_headers", relaxed_headers, METH_O, relaxed_headers_doc},
    {"to_crlf", to_crlf, METH_O, to_crlf_doc},
    {"parse_fields", (PyCFunction)(void (*)(void))parse_fields, METH_FASTCALL, parse_fields_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot canon_slots[] = {
    {0, NULL},
};

static struct PyModuleDef canon_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mailseal.dkim._canon",
    .m_doc = "Relaxed body and header canonicalization (RFC 6376 §3.4.4, §3.4.2) in C; "
              "see canonical.py.",
    .m_size = 0,
    .m_methods = canon_methods,
    .m_slots = canon_slots,
};

PyMODINIT_FUNC
PyInit__canon(void)
{
    return PyModuleDef_Init(&canon_module);
}
