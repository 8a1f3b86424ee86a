/* analyzer._sse: the event-stream interpretation of the HTML standard, in C, in one pass over a
 * whole stream body (memchr for the line ends, each data line copied once).
 *
 * Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 *
 * It reads exactly what `analyzer.sse.SSEDecoder` reads, and gives the same events, with the
 * same arrival times when the network reads are given; tests/test_sse_framing.py holds the
 * two to each other on hypothesis streams built from every framing feature. Where this module
 * was not built, `analyzer.sse` gives the same results in Python. Like the Python decoder, and
 * unlike the spec, an event open when the stream ends is still given, marked unterminated, and
 * so is a last line without its line end (dumps often lack the final blank line).
 *
 *   events(body, reads=None) -> (events, comments, fields)
 *       every event as (data, event, id, retry, t_ms, unterminated); each comment's text
 *       (stripped, as the Python decoder keeps it); each field the spec does not know, as
 *       (name, value)
 *
 *   cut(body, done, reads=None)
 *       -> (payloads, count, times, done, names, ids, comments, fields, unterminated) or None
 *       The fast path's form: every event's data, in order, each after the one before and an
 *       LF (`payloads`), when every event's data is the text of one JSON object (it begins
 *       with `{` and ends with `}`); else None. With `done`, a last event whose data is
 *       `[DONE]` (chat/completions' end) is left out and `done` is True. `times`: each event's
 *       arrival (None without reads); `names`: the set of event names used, or None; `ids`:
 *       each event's last event ID, or None when no event has one; `unterminated`: the last
 *       event was still open at the end.
 *
 * An LF is JSON whitespace and no JSON string holds one raw, so decoded as whitespace-separated
 * values (msgspec's `decode_lines`), `payloads` gives `count` values only when each event holds
 * exactly one: a value cannot run across a `}` LF `{` boundary (after a whole value inside an
 * open one only `,` or a closing bracket may follow, not `{`). An event whose data spans
 * several `data:` lines holds LFs too, joined as the spec joins them, and the same holds.
 *
 * `reads`: the network reads, each `(t_ms, end)`: its arrival time and the offset where it
 * ended, as `analyzer.sse.decode` takes them (a read ending at or before the one before
 * delivered nothing; bytes past the last read arrived at no known time). An event arrived with
 * the read that brought its blank line's first byte (a CR ends a line: the LF of a CRLF may
 * come later); an event left open at the end, with the last read. Reads that are not pairs
 * with an int end raise TypeError (the Python version then reads them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <string.h>

/* The bytes one read delivered, and when. */
typedef struct {
    long long start, end;
    PyObject *t; /* borrowed from `reads` */
} Piece;

typedef struct {
    const char *body;
    /* The reads: what each delivered; `piece` is the one the last event arrived with. */
    Piece *pieces;
    Py_ssize_t count_pieces, piece;
    PyObject *last_t; /* the time of the end of the stream (borrowed) */
    /* The spec's buffers. `has_data`: a data line was read (the Python decoder's `_data is not
     * None`: an event of empty data lines is still an event); the data buffer is written in
     * place into `out`, from `data_start` to `o`. */
    int has_data;
    char *out, *o, *data_start;
    const char *type;       /* the event type buffer, in the body (decoded only when given) */
    Py_ssize_t type_size;
    int has_type;           /* 0: the buffer is empty */
    const char *seen;       /* cut: the last name put in `names`, in the body */
    Py_ssize_t seen_size;
    PyObject *last_id;      /* the last event ID buffer, or NULL */
    PyObject *retry;        /* the reconnection time, or NULL */
    PyObject *comments;     /* list of str */
    PyObject *fields;       /* list of (name, value) */
    /* What is given: `cut`'s form (whole) or `events`'. */
    int whole, want_done, done, unterminated;
    Py_ssize_t count;
    PyObject *events;       /* events: the list of event tuples */
    PyObject *times, *ids;  /* cut: each event's arrival and last event ID (NULL until one is set) */
    PyObject *names;        /* cut: the set of event names used (NULL until one is) */
} Parser;

enum { OK = 0, FAILED = -1, REFUSED = 1 };

static PyObject *
text(const char *p, Py_ssize_t size)
{
    return PyUnicode_DecodeUTF8(p, size, "replace");
}

/* The time of the read that delivered the byte at `at`; the last read's time for an event
 * left open at the end (`at` < 0). Events come in order, so the reads are walked once. */
static PyObject *
arrival(Parser *s, Py_ssize_t at)
{
    if (at < 0) {
        return s->last_t;
    }
    while (s->piece < s->count_pieces && s->pieces[s->piece].end <= at) {
        s->piece++;
    }
    return s->piece < s->count_pieces ? s->pieces[s->piece].t : Py_None;
}

/* `list` (created with `count` Nones when NULL) with `value` (or None) appended. */
static int
append_or_none(PyObject **list, Py_ssize_t count, PyObject *value)
{
    if (*list == NULL) {
        if (value == NULL) {
            return OK;
        }
        if ((*list = PyList_New(count)) == NULL) {
            return FAILED;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_INCREF(Py_None);
            PyList_SET_ITEM(*list, i, Py_None);
        }
    }
    return PyList_Append(*list, value != NULL ? value : Py_None);
}

/* `cut`: the event's name into the set of names used; most streams name their events with a
 * few names, most often the one before, which is then not decoded again. */
static int
name_used(Parser *s)
{
    if (s->names != NULL && s->seen_size == s->type_size && memcmp(s->seen, s->type, (size_t)s->type_size) == 0) {
        return OK;
    }
    if (s->names == NULL && (s->names = PySet_New(NULL)) == NULL) {
        return FAILED;
    }
    PyObject *name = text(s->type, s->type_size);
    if (name == NULL || PySet_Add(s->names, name) < 0) {
        Py_XDECREF(name);
        return FAILED;
    }
    Py_DECREF(name);
    s->seen = s->type;
    s->seen_size = s->type_size;
    return OK;
}

/* Whether `size` bytes at `p` can be one JSON object's text, as far as their ends show: `{`
 * first and `}` last, past any JSON whitespace around them (some servers write `data:  {…}`;
 * the SSE spec takes one space off, the rest is the data's). */
static int
braced(const char *p, Py_ssize_t size)
{
#define JSON_SPACE(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')
    const char *end = p + size;
    while (p < end && JSON_SPACE(*p)) {
        p++;
    }
    while (end > p && JSON_SPACE(end[-1])) {
        end--;
    }
#undef JSON_SPACE
    return end - p >= 2 && p[0] == '{' && end[-1] == '}';
}

/* "Dispatch the event": the blank line at `at` (or the end of the stream, at < 0) ends it. */
static int
dispatch(Parser *s, Py_ssize_t at)
{
    char *start = s->data_start;
    Py_ssize_t size = s->o - start;
    PyObject *t = arrival(s, at);
    s->has_data = 0;
    if (s->whole) {
        if (s->done) {
            return REFUSED; /* an event after [DONE] */
        }
        if (s->want_done && size == 6 && memcmp(start, "[DONE]", 6) == 0) {
            s->done = 1; /* chat/completions' end: left out */
            s->o = s->count ? start - 1 : start;
        }
        else if (!braced(start, size)) {
            return REFUSED; /* not a JSON object's text: the general decoder reads it */
        }
        else if (PyList_Append(s->times, t) < 0 || append_or_none(&s->ids, s->count, s->last_id) < 0
                 || (s->has_type && name_used(s) < 0)) {
            return FAILED;
        }
        else {
            s->count++;
        }
    }
    else {
        PyObject *type = s->has_type ? text(s->type, s->type_size) : Py_NewRef(Py_None);
        PyObject *event = type == NULL ? NULL : Py_BuildValue(
            "(y#NOOOO)", start, size, type, s->last_id ? s->last_id : Py_None,
            s->retry ? s->retry : Py_None, t, at < 0 ? Py_True : Py_False);
        if (event == NULL || PyList_Append(s->events, event) < 0) {
            Py_XDECREF(event);
            return FAILED;
        }
        Py_DECREF(event);
        s->o = s->out; /* the next event's data starts the buffer again */
        s->count++;
    }
    /* "Set the data buffer and the event type buffer to the empty string." */
    s->has_type = 0;
    return OK;
}

/* A data line's value: "Append the field value to the data buffer, then append a single U+000A
 * LINE FEED (LF) character to the data buffer" (the last LF is removed at dispatch: here an LF
 * goes between the lines instead, and, in `cut`'s form, between one event's data and the next). */
static void
append_data(Parser *s, const char *value, Py_ssize_t size)
{
    if (s->has_data) {
        *s->o++ = '\n';
    }
    else {
        if (s->whole && s->count) {
            *s->o++ = '\n';
        }
        s->data_start = s->o;
        s->has_data = 1;
    }
    memcpy(s->o, value, (size_t)size);
    s->o += size;
}

/* "Process the field": its name and value. */
static int
field(Parser *s, const char *name, Py_ssize_t name_size, const char *value, Py_ssize_t size)
{
#define NAMED(literal) (name_size == (Py_ssize_t)(sizeof(literal) - 1) && memcmp(name, literal, sizeof(literal) - 1) == 0)
    if (NAMED("event")) {
        /* "Set the event type buffer to the field value." */
        s->type = value;
        s->type_size = size;
        s->has_type = 1;
    }
    else if (NAMED("data")) {
        append_data(s, value, size);
    }
    else if (NAMED("id")) {
        /* "If the field value does not contain U+0000 NULL, then set the last event ID buffer
         * to the field value. Otherwise, ignore the field." */
        if (memchr(value, '\0', (size_t)size) == NULL) {
            PyObject *id = text(value, size);
            if (id == NULL) {
                return FAILED;
            }
            Py_XSETREF(s->last_id, id);
        }
    }
    else if (NAMED("retry")) {
        /* "If the field value consists of only ASCII digits, then interpret the field value as
         * an integer in base ten, and set the event stream's reconnection time to that integer.
         * Otherwise, ignore the field." As browsers keep it, a value past 64 bits is ignored too. */
        unsigned long long retry = 0;
        Py_ssize_t i = 0;
        for (; i < size && value[i] >= '0' && value[i] <= '9'; i++) {
            unsigned digit = (unsigned)(value[i] - '0');
            if (retry > (ULLONG_MAX - digit) / 10) {
                break;
            }
            retry = retry * 10 + digit;
        }
        if (size && i == size) {
            PyObject *number = PyLong_FromUnsignedLongLong(retry);
            if (number == NULL) {
                return FAILED;
            }
            Py_XSETREF(s->retry, number);
        }
    }
    else {
        /* "Otherwise: the field is ignored." The Python decoder keeps it (an `error:` line is a
         * server's error), and so does this. */
        PyObject *key = text(name, name_size), *said = text(value, size), *pair = NULL;
        int failed = key == NULL || said == NULL || (pair = PyTuple_Pack(2, key, said)) == NULL
                     || PyList_Append(s->fields, pair) < 0;
        Py_XDECREF(key);
        Py_XDECREF(said);
        Py_XDECREF(pair);
        if (failed) {
            return FAILED;
        }
    }
    return OK;
#undef NAMED
}

/* One line, from `p` to `eol` (its line end, or the end of the stream); `at` is the offset of its
 * line end (-1 for a last line without one). */
static int
line(Parser *s, const char *p, const char *eol, Py_ssize_t at)
{
    Py_ssize_t size = eol - p;
    /* "If the line is empty (a blank line): dispatch the event." With nothing in the data buffer
     * there is no event, and the event type buffer is emptied. */
    if (size == 0) {
        if (s->has_data) {
            return dispatch(s, at);
        }
        s->has_type = 0;
        return OK;
    }
    /* The line of nearly every event first: a data line. */
    if (size >= 5 && memcmp(p, "data:", 5) == 0) {
        const char *value = p + 5;
        if (value < eol && *value == ' ') {
            value++; /* "If value starts with a U+0020 SPACE character, remove it from value." */
        }
        append_data(s, value, eol - value);
        return OK;
    }
    /* "If the line starts with a U+003A COLON character (:): ignore the line." The Python decoder
     * keeps its text, stripped of ASCII whitespace, and so does this. */
    if (*p == ':') {
        const char *first = p + 1, *last = eol;
        while (first < last && (*first == ' ' || *first == '\t' || *first == '\v' || *first == '\f')) {
            first++;
        }
        while (last > first && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\v' || last[-1] == '\f')) {
            last--;
        }
        PyObject *comment = text(first, last - first);
        if (comment == NULL || PyList_Append(s->comments, comment) < 0) {
            Py_XDECREF(comment);
            return FAILED;
        }
        Py_DECREF(comment);
        return OK;
    }
    /* "If the line contains a U+003A COLON character: the field name is the characters before
     * the first colon, the value those after it (after one leading space, if any). Otherwise
     * the whole line is the field name and the empty string the value." */
    const char *colon = memchr(p, ':', (size_t)size);
    if (colon == NULL) {
        return field(s, p, size, eol, 0);
    }
    const char *value = colon + 1;
    if (value < eol && *value == ' ') {
        value++;
    }
    return field(s, p, colon - p, value, eol - value);
}

/* The reads as the pieces of the body each delivered, as `analyzer.sse.decode` slices them. */
static int
take_reads(Parser *s, PyObject *reads, Py_ssize_t size)
{
    Py_ssize_t count = PySequence_Fast_GET_SIZE(reads);
    if (count == 0) {
        return OK; /* no reads: no times */
    }
    if ((s->pieces = PyMem_Malloc(sizeof(Piece) * (size_t)(count + 1))) == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    long long start = 0;
    PyObject *t = Py_None;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *read = PySequence_Fast_GET_ITEM(reads, i);
        PyObject *end_object;
        if ((PyTuple_Check(read) && PyTuple_GET_SIZE(read) == 2)) {
            t = PyTuple_GET_ITEM(read, 0);
            end_object = PyTuple_GET_ITEM(read, 1);
        }
        else if (PyList_Check(read) && PyList_GET_SIZE(read) == 2) {
            t = PyList_GET_ITEM(read, 0);
            end_object = PyList_GET_ITEM(read, 1);
        }
        else {
            PyErr_SetString(PyExc_TypeError, "a read is a (t_ms, end) pair");
            return FAILED;
        }
        if (!PyLong_Check(end_object)) {
            PyErr_SetString(PyExc_TypeError, "a read's end is an int");
            return FAILED;
        }
        int overflow;
        long long end = PyLong_AsLongLongAndOverflow(end_object, &overflow);
        if (end == -1 && PyErr_Occurred()) {
            return FAILED;
        }
        if (overflow) {
            end = overflow > 0 ? LLONG_MAX : LLONG_MIN;
        }
        if (end > start) { /* a read ending at or before the one before delivered nothing */
            s->pieces[s->count_pieces++] = (Piece){start, end < size ? end : size, t};
            start = end;
        }
    }
    if (start < size) { /* bytes past the last read: arrived at no known time */
        s->pieces[s->count_pieces++] = (Piece){start, size, Py_None};
        t = Py_None;
    }
    s->last_t = t;
    return OK;
}

/* The whole interpretation, over `body`; the results are left in `s`. */
static int
interpret(Parser *s, const char *body, Py_ssize_t size)
{
    const char *p = body, *end = body + size;
    /* "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present." */
    if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
    }
    /* "Lines must be separated by either a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF)
     * character pair, a single U+000A LINE FEED (LF) character, or a single U+000D CARRIAGE
     * RETURN (CR) character." The next CR and the next LF are each found by memchr only when
     * the line passes the last one found, so every byte is looked at about twice. */
    const char *cr = NULL, *lf = NULL; /* the next CR and the next LF, once looked for */
    for (;;) {
        if ((cr == NULL || cr < p) && (cr = memchr(p, '\r', (size_t)(end - p))) == NULL) {
            cr = end;
        }
        if ((lf == NULL || lf < p) && (lf = memchr(p, '\n', (size_t)(end - p))) == NULL) {
            lf = end;
        }
        const char *eol = cr < lf ? cr : lf;
        if (eol == end) {
            break;
        }
        int result = line(s, p, eol, eol - body);
        if (result != OK) {
            return result;
        }
        p = eol + 1;
        if (*eol == '\r' && p < end && *p == '\n') {
            p++; /* CRLF: one line end */
        }
    }
    /* "Once the end of the file is reached, any pending data must be discarded": here a last
     * line without its line end still counts, and an event still open is given, unterminated. */
    if (p < end) {
        int result = line(s, p, end, -1);
        if (result != OK) {
            return result;
        }
    }
    if (s->has_data) {
        s->unterminated = 1;
        return dispatch(s, -1);
    }
    return OK;
}

/* The shared work of `events` and `cut`: `whole` picks the form. */
static PyObject *
run(PyObject *body_object, PyObject *reads_object, int whole, int want_done)
{
    Py_buffer view;
    if (PyObject_GetBuffer(body_object, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Parser s = {0};
    s.whole = whole;
    s.want_done = want_done;
    s.last_t = Py_None;
    PyObject *reads = NULL, *result = NULL, *payloads = NULL;
    int outcome = FAILED;
    if (reads_object != Py_None) {
        if ((reads = PySequence_Fast(reads_object, "reads must be a sequence")) == NULL
            || take_reads(&s, reads, view.len) < 0) {
            goto finally;
        }
    }
    /* The data buffers: each data line's value and one LF at most, in fewer bytes than its line. */
    if ((payloads = PyBytes_FromStringAndSize(NULL, view.len + 1)) == NULL) {
        goto finally;
    }
    s.out = s.o = s.data_start = PyBytes_AS_STRING(payloads);
    if ((s.comments = PyList_New(0)) == NULL || (s.fields = PyList_New(0)) == NULL) {
        goto finally;
    }
    if (whole ? (s.times = PyList_New(0)) == NULL : (s.events = PyList_New(0)) == NULL) {
        goto finally;
    }
    outcome = interpret(&s, view.buf, view.len);
    if (outcome != OK) {
        goto finally;
    }
    if (!whole) {
        result = Py_BuildValue("(OOO)", s.events, s.comments, s.fields);
    }
    else if (s.count == 0) {
        outcome = REFUSED; /* no event to decode: the general decoder says what there was */
    }
    else if (_PyBytes_Resize(&payloads, s.o - s.out) == 0) {
        result = Py_BuildValue(
            "(OnOOOOOOO)", payloads, s.count, s.times, s.done ? Py_True : Py_False, s.names ? s.names : Py_None,
            s.ids ? s.ids : Py_None, s.comments, s.fields, s.unterminated ? Py_True : Py_False);
    }
finally:
    PyBuffer_Release(&view);
    PyMem_Free(s.pieces);
    Py_XDECREF(reads);
    Py_XDECREF(payloads);
    Py_XDECREF(s.last_id);
    Py_XDECREF(s.retry);
    Py_XDECREF(s.comments);
    Py_XDECREF(s.fields);
    Py_XDECREF(s.events);
    Py_XDECREF(s.times);
    Py_XDECREF(s.names);
    Py_XDECREF(s.ids);
    if (outcome == REFUSED && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return result;
}

static PyObject *
events(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 1 && nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "events(body, reads=None) takes one or two arguments");
        return NULL;
    }
    return run(args[0], nargs == 2 ? args[1] : Py_None, 0, 0);
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
    return run(args[0], nargs == 3 ? args[2] : Py_None, 1, want_done);
}

static PyMethodDef methods[] = {
    {"events", (PyCFunction)(void (*)(void))events, METH_FASTCALL,
     "events(body, reads=None) -> (events, comments, fields): every event of an event-stream body as "
     "(data, event, id, retry, t_ms, unterminated), as analyzer.sse.SSEDecoder gives them."},
    {"cut", (PyCFunction)(void (*)(void))cut, METH_FASTCALL,
     "cut(body, done, reads=None) -> (payloads, count, times, done, names, ids, comments, fields, "
     "unterminated) or None: every event's data, one after the other with an LF between, when each is a "
     "JSON object's text (see analyzer.sse.cut)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "analyzer._sse",
    .m_doc = "The event-stream interpretation of the HTML standard, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__sse(void)
{
    PyObject *m = PyModule_Create(&module);
    /* What `cut` and `events` take and give: analyzer.sse uses this module only when it is the
     * version it was written for (an editable install may hold an older build). */
    if (m != NULL && PyModule_AddIntConstant(m, "VERSION", 4) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
