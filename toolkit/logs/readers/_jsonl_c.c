/* Optional accelerator for toolkit/logs/readers/jsonl.py: template lines of a JSONL block.
 *
 * parse_block(block: bytes, tokens: tuple[bytes, ...]) ->
 *     (fast_lines: bytearray of int64, values: bytearray of float64 (k columns, column-major),
 *      other: list[(line, start, end)], n_lines)
 *
 * A line is a template line when it is exactly tokens[0] N1 tokens[1] N2 ... Nk tokens[k]
 * (then "\n" or "\r\n"), every N a JSON number. Numbers are converted exactly (the same double
 * as Python's float() / json.loads): Clinger's fast path (significand <= 2^53, |p| <= 22, one
 * IEEE multiply or divide), else x87 long double (significand and 10^|p| exact for |p| <= 27,
 * one rounding) unless the 11 bits dropped going to double are within one of halfway. Any
 * number outside these cases, and any line that is not a template line, is returned in
 * `other` for json.loads: this code decides speed, never values. Same contract as the numpy
 * path (numbers.py, _parse_block); tests check both against json.loads.
 *
 * The GIL is released while parsing, so blocks parse in parallel on threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && LDBL_MANT_DIG == 64
#define HAVE_X87 1
static long double POW10L[28];
#endif

#define MAX_KEYS 64

static const double POW10D[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* One JSON number at p (not past e). Returns the end of the number and sets *out, or NULL when
 * the text is not a JSON number or its value is not decided exactly here. */
static const char *parse_number(const char *p, const char *e, double *out) {
    int neg = 0, is_int = 1, digits = 0, frac = 0, x = 0;
    uint64_t m = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && (unsigned)(*p - '0') < 10) {
            if (digits == 19) return NULL;
            m = m * 10 + (uint64_t)(*p - '0');
            digits++;
            p++;
        }
    } else {
        return NULL;
    }
    if (p < e && *p == '.') {
        const char *start;
        is_int = 0;
        p++;
        start = p;
        while (p < e && (unsigned)(*p - '0') < 10) {
            if (m != 0 || *p != '0') { /* leading zeros of 0.000x are not significant */
                if (digits == 19) return NULL;
                m = m * 10 + (uint64_t)(*p - '0');
                digits++;
            }
            frac++;
            p++;
        }
        if (p == start) return NULL;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        int xneg = 0;
        const char *start;
        is_int = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            xneg = *p == '-';
            p++;
        }
        start = p;
        while (p < e && (unsigned)(*p - '0') < 10) {
            if (p - start == 5) return NULL;
            x = x * 10 + (*p - '0');
            p++;
        }
        if (p == start) return NULL;
        if (xneg) x = -x;
    }
    {
        int p10 = x - frac;
        double v;
        if (m == 0) {
            v = 0.0;
        } else if (m <= (UINT64_C(1) << 53) && p10 >= -22 && p10 <= 22) {
            v = (double)m;
            v = p10 >= 0 ? v * POW10D[p10] : v / POW10D[-p10];
        }
#ifdef HAVE_X87
        else if (p10 >= -27 && p10 <= 27) {
            long double r = (long double)m;
            uint64_t sig;
            r = p10 >= 0 ? r * POW10L[p10] : r / POW10L[-p10];
            memcpy(&sig, &r, sizeof sig); /* x87: the 64-bit significand comes first */
            if ((sig & 0x7FF) - 0x3FF <= 2) return NULL; /* within one of halfway */
            v = (double)r;
        }
#endif
        else {
            return NULL;
        }
        if (neg && !(is_int && m == 0)) v = -v; /* json: -0 is the int 0, -0.0 is -0.0 */
        *out = v;
    }
    return p;
}

static PyObject *parse_block(PyObject *self, PyObject *args) {
    Py_buffer buf;
    PyObject *tokens, *fast_obj = NULL, *values_obj = NULL, *other = NULL, *result = NULL;
    const char *tok[MAX_KEYS + 1];
    Py_ssize_t tok_len[MAX_KEYS + 1];
    Py_ssize_t k, i, n_lines = 0, n_fast = 0, n_other = 0;
    double *cols = NULL;
    int64_t *fast = NULL, *spans = NULL;
    const char *data, *end;
    (void)self;

    if (!PyArg_ParseTuple(args, "y*O!", &buf, &PyTuple_Type, &tokens)) return NULL;
    k = PyTuple_GET_SIZE(tokens) - 1;
    if (k < 1 || k > MAX_KEYS) {
        PyErr_Format(PyExc_ValueError, "parse_block: need 2..%d tokens, got %zd", MAX_KEYS + 1,
                     k + 1);
        goto done;
    }
    for (i = 0; i <= k; i++) {
        PyObject *t = PyTuple_GET_ITEM(tokens, i);
        if (!PyBytes_Check(t)) {
            PyErr_SetString(PyExc_TypeError, "parse_block: tokens must be bytes");
            goto done;
        }
        tok[i] = PyBytes_AS_STRING(t);
        tok_len[i] = PyBytes_GET_SIZE(t);
    }
    data = (const char *)buf.buf;
    end = data + buf.len;
    {
        const char *p = data;
        while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            n_lines++;
            p++;
        }
        if (buf.len && data[buf.len - 1] != '\n') n_lines++;
    }
    cols = PyMem_RawMalloc((size_t)(k * (n_lines ? n_lines : 1)) * sizeof(double));
    fast = PyMem_RawMalloc((size_t)(n_lines ? n_lines : 1) * sizeof(int64_t));
    spans = PyMem_RawMalloc((size_t)(n_lines ? n_lines : 1) * 3 * sizeof(int64_t));
    if (!cols || !fast || !spans) {
        PyErr_NoMemory();
        goto done;
    }

    Py_BEGIN_ALLOW_THREADS
    const char *line = data;
    for (Py_ssize_t li = 0; li < n_lines; li++) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = nl ? nl : end;
        const char *ce = line_end, *p = line;
        double vals[MAX_KEYS];
        int ok = 1;
        if (ce > line && ce[-1] == '\r') ce--;
        for (Py_ssize_t j = 0; j < k && ok; j++) {
            if (ce - p < tok_len[j] || memcmp(p, tok[j], (size_t)tok_len[j]) != 0) {
                ok = 0;
                break;
            }
            p += tok_len[j];
            p = parse_number(p, ce, &vals[j]);
            if (p == NULL) ok = 0;
        }
        if (ok && (ce - p != tok_len[k] || memcmp(p, tok[k], (size_t)tok_len[k]) != 0)) ok = 0;
        if (ok) {
            for (Py_ssize_t j = 0; j < k; j++) cols[j * n_lines + n_fast] = vals[j];
            fast[n_fast++] = li;
        } else {
            spans[3 * n_other] = li;
            spans[3 * n_other + 1] = line - data;
            spans[3 * n_other + 2] = line_end - data;
            n_other++;
        }
        line = line_end + 1;
    }
    Py_END_ALLOW_THREADS

    fast_obj = PyByteArray_FromStringAndSize((const char *)fast, n_fast * 8);
    values_obj = PyByteArray_FromStringAndSize(NULL, k * n_fast * 8);
    other = PyList_New(n_other);
    if (!fast_obj || !values_obj || !other) goto done;
    for (i = 0; i < k; i++)
        memcpy(PyByteArray_AS_STRING(values_obj) + i * n_fast * 8, cols + i * n_lines,
               (size_t)n_fast * 8);
    for (i = 0; i < n_other; i++) {
        PyObject *t = Py_BuildValue("(LLL)", (long long)spans[3 * i], (long long)spans[3 * i + 1],
                                    (long long)spans[3 * i + 2]);
        if (!t) goto done;
        PyList_SET_ITEM(other, i, t);
    }
    result = Py_BuildValue("(OOOn)", fast_obj, values_obj, other, n_lines);

done:
    Py_XDECREF(fast_obj);
    Py_XDECREF(values_obj);
    Py_XDECREF(other);
    PyMem_RawFree(cols);
    PyMem_RawFree(fast);
    PyMem_RawFree(spans);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_block", parse_block, METH_VARARGS,
     "parse_block(block, tokens) -> (fast_lines, values, other, n_lines); see jsonl.py"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonl_c",
                                    "Optional C parser for JSONL template lines (exact).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__jsonl_c(void) {
#ifdef HAVE_X87
    POW10L[0] = 1.0L;
    for (int i = 1; i < 28; i++) POW10L[i] = POW10L[i - 1] * 10.0L; /* exact: 5^27 < 2^64 */
#endif
    return PyModule_Create(&module);
}
