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

static PyMethodDef canon_methods[] = {
    {"relax", relax, METH_O, relax_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot canon_slots[] = {
    {0, NULL},
};

static struct PyModuleDef canon_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mailseal.dkim._canon",
    .m_doc = "Relaxed body canonicalization (RFC 6376 §3.4.4) in C; see canonical.py.",
    .m_size = 0,
    .m_methods = canon_methods,
    .m_slots = canon_slots,
};

PyMODINIT_FUNC
PyInit__canon(void)
{
    return PyModuleDef_Init(&canon_module);
}
