/* analyzer._sse: the fast path's cut of an event-stream body into its JSON payloads, in one
 * pass over the bytes (memchr for the line ends, one copy of each payload).
 *
 * It takes exactly the shapes `analyzer.protocols.events.whole_lines` takes, and gives the
 * same payloads, so the two are interchangeable (tests/test_sse_cut.py holds them to each
 * other); the Python version is what runs when this module was not built.
 *
 *   cut(body, done, reads=None) -> (payloads, events, done, times) or None
 *
 * The shapes: every event one `data: {...}` line, or (all events alike) an `event: <name>`
 * line and then one `data: {...}` line, each event ended by a blank line; every line ended
 * alike, LF, or CRLF when the body holds a CR at all. With `done`, an event stream without
 * `event:` lines may end with a `data: [DONE]` event, which is left out (and reported by the
 * third value). Anything else (a comment, an `id:` line, a second `data:` line, a lone CR, a
 * payload that does not begin with `{` and end with `}`) gives None: the general SSE decoder
 * reads it.
 *
 * `times`: with `reads` (the network reads, each `(t_ms, end)`: its arrival time and the
 * offset where it ended, the ends in order), each event's arrival, the time of the read that
 * completed its blank line (None past the last read), as `whole_lines` computes them in
 * Python; None without reads, or with reads this code does not take (ends not ints, not in
 * order, or not pairs), which the Python version then reads.
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

#define LIT(s) ((Py_ssize_t)(sizeof(s) - 1))

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


/* The reads' ends (into `ends`) and arrival times (borrowed, into `times`) when every read is
 * a pair whose end is an int at or past the one before; 0 when not (the caller computes the
 * times in Python), -1 with an exception set when out of memory. */
static int
take_reads(PyObject *reads, Py_ssize_t count, Py_ssize_t *ends, PyObject **times)
{
    Py_ssize_t previous = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *read = PySequence_Fast_GET_ITEM(reads, i);
        PyObject *t, *end;
        if (PyTuple_CheckExact(read) && PyTuple_GET_SIZE(read) == 2) {
            t = PyTuple_GET_ITEM(read, 0);
            end = PyTuple_GET_ITEM(read, 1);
        }
        else if (PyList_CheckExact(read) && PyList_GET_SIZE(read) == 2) {
            t = PyList_GET_ITEM(read, 0);
            end = PyList_GET_ITEM(read, 1);
        }
        else {
            return 0;
        }
        if (!PyLong_CheckExact(end)) {
            return 0;
        }
        Py_ssize_t at = PyLong_AsSsize_t(end);
        if (at == -1 && PyErr_Occurred()) {
            PyErr_Clear(); /* past Py_ssize_t: Python's slicing reads it */
            return 0;
        }
        if (at < previous) {
            return 0;
        }
        ends[i] = previous = at;
        times[i] = t;
    }
    return 1;
}

/* Each event's arrival: the time of the first read that ended at or past the offset where the
 * event was complete (`completes`, in order), None past the last read. */
static PyObject *
arrivals(const Py_ssize_t *completes, Py_ssize_t events, const Py_ssize_t *ends, PyObject **times, Py_ssize_t count)
{
    PyObject *out = PyList_New(events);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t read = 0;
    for (Py_ssize_t i = 0; i < events; i++) {
        while (read < count && ends[read] < completes[i]) {
            read++;
        }
        PyObject *t = read < count ? times[read] : Py_None;
        Py_INCREF(t);
        PyList_SET_ITEM(out, i, t);
    }
    return out;
}

static PyObject *
cut(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "cut(body, done, reads=None) takes two or three arguments");
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
    PyObject *reads = NULL;       /* the reads as a fast sequence, when given */
    Py_ssize_t count = 0;         /* how many */
    Py_ssize_t *ends = NULL;      /* their ends, when every one is taken */
    PyObject **read_times = NULL; /* and their times (borrowed from `reads`) */
    Py_ssize_t *completes = NULL; /* where each event was complete, while timing */
    Py_ssize_t capacity = 0;
    PyObject *times = NULL;       /* each event's arrival, or None */
    char *o = NULL, *o_start = NULL; /* where the payloads go */
    Py_ssize_t events = 0;

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

    if (nargs == 3 && args[2] != Py_None) {
        reads = PySequence_Fast(args[2], "reads must be a sequence");
        if (reads == NULL) {
            goto finally;
        }
        count = PySequence_Fast_GET_SIZE(reads);
        if (count) {
            ends = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)count);
            read_times = PyMem_Malloc(sizeof(PyObject *) * (size_t)count);
            if (ends == NULL || read_times == NULL) {
                PyErr_NoMemory();
                goto finally;
            }
            if (!take_reads(reads, count, ends, read_times)) {
                count = 0; /* not taken: no times from here */
            }
            else {
                capacity = 64;
                completes = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)capacity);
                if (completes == NULL) {
                    PyErr_NoMemory();
                    goto finally;
                }
            }
        }
    }

    out = PyBytes_FromStringAndSize(NULL, view.len);
    if (out == NULL) {
        goto finally;
    }
    o = o_start = PyBytes_AS_STRING(out);
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
        if (completes != NULL) {
            if (events == capacity) {
                Py_ssize_t *grown = PyMem_Realloc(completes, sizeof(Py_ssize_t) * (size_t)(capacity *= 2));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto reject;
                }
                completes = grown;
            }
            /* Complete with its blank line: LF LF, or with CRLF the blank line's CR (a lone CR
             * ends a line, so the last LF may come in a later read). */
            completes[events] = (eol - (const char *)view.buf) + (crlf ? 3 : 2);
        }
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
    if (completes != NULL) {
        times = arrivals(completes, events, ends, read_times, count);
        if (times == NULL) {
            goto reject;
        }
    }
    else {
        times = Py_None;
        Py_INCREF(times);
    }
    result = Py_BuildValue("(NnON)", out, events, done ? Py_True : Py_False, times);
    out = NULL; /* the tuple holds them now (or they were released with the tuple that failed) */
    goto finally;

reject:
    Py_CLEAR(out);
finally:
    PyBuffer_Release(&view);
    PyMem_Free(completes);
    PyMem_Free(ends);
    PyMem_Free(read_times);
    Py_XDECREF(reads);
    if (result == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"cut", (PyCFunction)(void (*)(void))cut, METH_FASTCALL,
     "cut(body, done, reads=None) -> (payloads, events, done, times) or None: an event-stream body's "
     "JSON payloads, one per line, and each event's arrival, when the body has one of the common shapes "
     "(see analyzer.protocols.events.whole_lines)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "analyzer._sse",
    .m_doc = "The fast path's cut of an event-stream body, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__sse(void)
{
    PyObject *m = PyModule_Create(&module);
    /* What `cut` takes and gives: analyzer.protocols.events uses this module only when it is
     * the version it was written for (an editable install may hold an older build). */
    if (m != NULL && PyModule_AddIntConstant(m, "VERSION", 2) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
