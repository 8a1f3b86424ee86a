/* analyzer._sse: the fast path's cut of an event-stream body into its JSON payloads, in one
 * pass over the bytes (memchr for the line ends, one copy of each payload).
 *
 * It takes exactly the shapes `analyzer.protocols.events.whole_lines` takes, and gives the
 * same payloads, so the two are interchangeable (tests/test_sse_cut.py holds them to each
 * other); the Python version is what runs when this module was not built.
 *
 *   cut(body, done) -> (payloads, events, done) or None
 *
 * The shapes: every event one `data: {...}` line, or (all events alike) an `event: <name>`
 * line and then one `data: {...}` line, each event ended by a blank line; every line ended
 * alike, LF, or CRLF when the body holds a CR at all. With `done`, an event stream without
 * `event:` lines may end with a `data: [DONE]` event, which is left out (and reported by the
 * third value). Anything else (a comment, an `id:` line, a second `data:` line, a lone CR, a
 * payload that does not begin with `{` and end with `}`) gives None: the general SSE decoder
 * reads it.
 *
 * `payloads` holds each event's payload, in order, each after the one before and an LF.
 * An LF is JSON whitespace, and no JSON string holds one raw: decoded as whitespace-separated
 * values (msgspec's `decode_lines`) the payloads give `events` values only when each event
 * holds exactly one, as docs/protocols.md shows for the Python version's TAB.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static const char DATA[] = "data: {";     /* a payload line, up to its first brace */
static const char EVENT[] = "event: ";    /* an event's name line */
static const char DONE[] = "data: [DONE]";

#define LIT(s) (sizeof(s) - 1)

static int
starts(const char *p, const char *end, const char *literal, Py_ssize_t size)
{
    return end - p >= size && memcmp(p, literal, (size_t)size) == 0;
}

/* The end of the line that starts at `p`: the address of its line break (CR of a CRLF, or
 * the LF), or NULL when the line does not end there as every line must (no line break, or in
 * CRLF mode an LF without its CR, or a CR anywhere inside the line). */
static const char *
line_end(const char *p, const char *end, int crlf)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (lf == NULL) {
        return NULL;
    }
    if (!crlf) {
        return lf;
    }
    if (lf == p || lf[-1] != '\r' || memchr(p, '\r', (size_t)(lf - 1 - p)) != NULL) {
        return NULL;
    }
    return lf - 1;
}

static PyObject *
cut(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "cut(body, done) takes two arguments");
        return NULL;
    }
    int want_done = PyObject_IsTrue(args[1]);
    if (want_done < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const char *p = view.buf;
    const char *end = p + view.len;
    PyObject *out = NULL;
    PyObject *result = NULL;

    int crlf = memchr(p, '\r', (size_t)view.len) != NULL;
    Py_ssize_t newline = crlf ? 2 : 1;
    const char *blank = crlf ? "\r\n" : "\n";

    /* A final `data: [DONE]` event (chat/completions' end). */
    int done = 0;
    if (want_done && end - p >= LIT(DONE) + 2 * newline) {
        const char *at = end - LIT(DONE) - 2 * newline;
        if (memcmp(at, DONE, LIT(DONE)) == 0 && memcmp(at + LIT(DONE), blank, (size_t)newline) == 0
            && memcmp(at + LIT(DONE) + newline, blank, (size_t)newline) == 0) {
            done = 1;
            end = at;
        }
    }
    int named = starts(p, end, EVENT, LIT(EVENT));
    if (named ? done : !starts(p, end, DATA, LIT(DATA))) {
        goto finally; /* None: not a shape this cut takes */
    }

    out = PyBytes_FromStringAndSize(NULL, view.len);
    if (out == NULL) {
        goto finally;
    }
    char *o = PyBytes_AS_STRING(out);
    char *const o_start = o;
    Py_ssize_t events = 0;
    while (p < end) {
        const char *eol;
        if (named) {
            if (!starts(p, end, EVENT, LIT(EVENT)) || (eol = line_end(p, end, crlf)) == NULL) {
                goto reject;
            }
            p = eol + newline;
        }
        if (!starts(p, end, DATA, LIT(DATA)) || (eol = line_end(p, end, crlf)) == NULL) {
            goto reject;
        }
        const char *payload = p + LIT(DATA) - 1; /* its `{` */
        if (eol - payload < 2 || eol[-1] != '}') {
            goto reject;
        }
        if (events) {
            *o++ = '\n';
        }
        memcpy(o, payload, (size_t)(eol - payload));
        o += eol - payload;
        events++;
        p = eol + newline;
        if (!starts(p, end, blank, newline)) {
            goto reject; /* the event is not ended by a blank line: a second data: line, or the end */
        }
        p += newline;
    }
    if (events == 0 || _PyBytes_Resize(&out, o - o_start) < 0) {
        goto reject;
    }
    result = Py_BuildValue("(NnO)", out, events, done ? Py_True : Py_False);
    out = NULL; /* the tuple holds it now (or it was released with the tuple that failed) */
    goto finally;

reject:
    Py_CLEAR(out);
finally:
    PyBuffer_Release(&view);
    if (result == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"cut", (PyCFunction)(void (*)(void))cut, METH_FASTCALL,
     "cut(body, done) -> (payloads, events, done) or None: an event-stream body's JSON payloads, "
     "one per line, when the body has one of the common shapes (see analyzer.protocols.events.whole_lines)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "analyzer._sse", "The fast path's cut of an event-stream body, in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__sse(void)
{
    return PyModule_Create(&module);
}
