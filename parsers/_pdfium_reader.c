/* The PDF reader's per-character and per-object loops over pdfium, in C.
 *
 * pdfium has no bulk call for character boxes or page objects, and through ctypes each call
 * costs ~2,700 instructions of marshalling: three a character and two for each text object a
 * page holds only to pass it over. This module makes the same calls from C. It links against
 * nothing: pypdfium2's already-loaded pdfium hands over its functions' addresses (`bind`), and
 * the function types below are those of pdfium's public fpdf_text.h and fpdf_edit.h, with
 * every handle as an opaque pointer (pdfium checks a NULL handle itself).
 *
 * The GIL stays held: pdfium is not thread-safe, and no other thread can start a pdfium call while
 * these loops run (a ctypes call already running in another thread has released the GIL, so only
 * nianbao's reading pdfium from one thread a process keeps that out). The arithmetic is the Python
 * reader's own, in doubles and in the same order (the build turns off contraction into fused
 * multiply-adds), so the columns and matrices are bit for bit what it computed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    float left, top, right, bottom;
} Rect; /* FS_RECTF */

typedef struct {
    float a, b, c, d, e, f;
} Matrix; /* FS_MATRIX */

typedef int (*CountChars)(void *text_page);
typedef unsigned int (*GetUnicode)(void *text_page, int index);
typedef int (*HasUnicodeMapError)(void *text_page, int index);
typedef int (*GetLooseCharBox)(void *text_page, int index, Rect *rect);
typedef int (*CountObjects)(void *page);
typedef void *(*GetObject)(void *page, int index);
typedef int (*ObjectType)(void *object);
typedef int (*ObjectMatrix)(void *object, Matrix *matrix);
typedef int (*FormCount)(void *form);
typedef void *(*FormObject)(void *form, unsigned long index);
typedef int (*SegmentCount)(void *path);
typedef void *(*Segment)(void *path, int index);
typedef int (*SegmentPoint)(void *segment, float *x, float *y);
typedef int (*SegmentType)(void *segment);
typedef int (*SegmentClose)(void *segment);

static struct {
    CountChars count_chars;
    GetUnicode get_unicode;
    HasUnicodeMapError has_map_error;
    GetLooseCharBox loose_box;
    CountObjects count_objects;
    GetObject get_object;
    ObjectType object_type;
    ObjectMatrix object_matrix;
    FormCount form_count;
    FormObject form_object;
    SegmentCount segment_count;
    Segment segment;
    SegmentPoint segment_point;
    SegmentType segment_type;
    SegmentClose segment_close;
} pdfium;

/* `bind`'s keywords: pdfium's function names, and where each address goes. */
static const struct {
    const char *name;
    void **slot;
} functions[] = {
    {"FPDFText_CountChars", (void **)&pdfium.count_chars},
    {"FPDFText_GetUnicode", (void **)&pdfium.get_unicode},
    {"FPDFText_HasUnicodeMapError", (void **)&pdfium.has_map_error},
    {"FPDFText_GetLooseCharBox", (void **)&pdfium.loose_box},
    {"FPDFPage_CountObjects", (void **)&pdfium.count_objects},
    {"FPDFPage_GetObject", (void **)&pdfium.get_object},
    {"FPDFPageObj_GetType", (void **)&pdfium.object_type},
    {"FPDFPageObj_GetMatrix", (void **)&pdfium.object_matrix},
    {"FPDFFormObj_CountObjects", (void **)&pdfium.form_count},
    {"FPDFFormObj_GetObject", (void **)&pdfium.form_object},
    {"FPDFPath_CountSegments", (void **)&pdfium.segment_count},
    {"FPDFPath_GetPathSegment", (void **)&pdfium.segment},
    {"FPDFPathSegment_GetPoint", (void **)&pdfium.segment_point},
    {"FPDFPathSegment_GetType", (void **)&pdfium.segment_type},
    {"FPDFPathSegment_GetClose", (void **)&pdfium.segment_close},
};
#define FUNCTION_COUNT (sizeof functions / sizeof functions[0])
static int bound = 0;

enum { CARRIAGE_RETURN = 0x0D, REPLACEMENT = 0xFFFD, MAX_CODE_POINT = 0x10FFFF };
enum { HIGH_SURROGATE = 0xD800, LOW_SURROGATE = 0xDC00, LAST_SURROGATE = 0xDFFF };
enum { PATH_OBJECT = 2, IMAGE_OBJECT = 3, FORM_OBJECT = 5 };

static PyObject *
bind(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || kwargs == NULL ||
        PyDict_GET_SIZE(kwargs) != (Py_ssize_t)FUNCTION_COUNT) {
        PyErr_Format(PyExc_TypeError, "bind() takes the %d pdfium function addresses by name",
                     (int)FUNCTION_COUNT);
        return NULL;
    }
    void *addresses[FUNCTION_COUNT];
    for (size_t i = 0; i < FUNCTION_COUNT; i++) {
        PyObject *address = PyDict_GetItemString(kwargs, functions[i].name);
        if (address == NULL) {
            PyErr_Format(PyExc_TypeError, "bind() needs %s", functions[i].name);
            return NULL;
        }
        addresses[i] = PyLong_AsVoidPtr(address);
        if (addresses[i] == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "%s has no address", functions[i].name);
            return NULL;
        }
    }
    for (size_t i = 0; i < FUNCTION_COUNT; i++)
        *functions[i].slot = addresses[i];
    bound = 1;
    Py_RETURN_NONE;
}

/* The handle an int argument holds; NULL with an exception set for 0 or before `bind`. */
static void *
handle_of(PyObject *value, const char *what)
{
    if (!bound) {
        PyErr_SetString(PyExc_RuntimeError, "pdfium's functions are not bound");
        return NULL;
    }
    void *handle = PyLong_AsVoidPtr(value);
    if (handle == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "no %s handle", what);
    return handle;
}

static PyObject *
page_chars(PyObject *self, PyObject *args)
{
    PyObject *handle;
    double left, top;
    if (!PyArg_ParseTuple(args, "Odd:page_chars", &handle, &left, &top))
        return NULL;
    void *text_page = handle_of(handle, "text page");
    if (text_page == NULL)
        return NULL;
    int count = pdfium.count_chars(text_page);
    if (count < 0) {
        PyErr_SetString(PyExc_RuntimeError, "Failed to get character count.");
        return NULL;
    }
    Py_UCS4 *codes = PyMem_New(Py_UCS4, count ? count : 1);
    int *kept = PyMem_New(int, count ? count : 1);
    PyObject *text = NULL, *columns[4] = {NULL, NULL, NULL, NULL}, *result = NULL;
    if (codes == NULL || kept == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* pdfium ends lines with \r\n; \n alone marks the break, so the \r are left out before
       their boxes and map errors are asked for. A character above U+FFFF (CJK Extension B, in
       rare names and places) comes as two characters, its UTF-16 halves: they are joined into
       one, with the first half's box. A half without its partner cannot be encoded (the JSON
       and the warehouse refuse it): it reads as U+FFFD. */
    Py_ssize_t length = 0;
    for (int i = 0; i < count; i++) {
        unsigned int code = pdfium.get_unicode(text_page, i);
        if (code == CARRIAGE_RETURN)
            continue;
        kept[length] = i;
        if (code >= HIGH_SURROGATE && code < LOW_SURROGATE && i + 1 < count) {
            unsigned int low = pdfium.get_unicode(text_page, i + 1);
            if (low >= LOW_SURROGATE && low <= LAST_SURROGATE) {
                code = 0x10000 + ((code - HIGH_SURROGATE) << 10) + (low - LOW_SURROGATE);
                i++;
            }
        }
        if (code >= HIGH_SURROGATE && code <= LAST_SURROGATE)
            code = REPLACEMENT;
        codes[length++] = code;
    }
    for (int k = 0; k < 4; k++)
        if ((columns[k] = PyList_New(length)) == NULL)
            goto done;
    for (Py_ssize_t j = 0; j < length; j++) {
        /* A font with no ToUnicode map: pdfium passes the glyph number through as if it were
           a code point, which would read as random scripts, not as unreadable text. */
        if (pdfium.has_map_error(text_page, kept[j]) == 1)
            codes[j] = REPLACEMENT;
        else if (codes[j] > MAX_CODE_POINT) {
            PyErr_SetString(PyExc_ValueError, "chr() arg not in range(0x110000)");
            goto done;
        }
        Rect box = {0, 0, 0, 0}; /* left as zeros where pdfium has no box */
        pdfium.loose_box(text_page, kept[j], &box);
        /* pdfplumber's frame: from the media box's top-left corner. */
        double sides[4] = {(double)box.left - left, (double)box.right - left,
                           top - (double)box.top, top - (double)box.bottom};
        for (int k = 0; k < 4; k++) {
            PyObject *side = PyFloat_FromDouble(sides[k]);
            if (side == NULL)
                goto done;
            PyList_SET_ITEM(columns[k], j, side);
        }
    }
    text = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, codes, length);
    if (text != NULL)
        result = PyTuple_Pack(5, text, columns[0], columns[1], columns[2], columns[3]);
done:
    PyMem_Free(codes);
    PyMem_Free(kept);
    Py_XDECREF(text);
    for (int k = 0; k < 4; k++)
        Py_XDECREF(columns[k]);
    return result;
}

typedef struct {
    double a, b, c, d, e, f;
} Affine; /* a matrix in the reader's doubles */

static const Affine IDENTITY = {1.0, 0.0, 0.0, 1.0, 0.0, 0.0};

/* The object's matrix; the identity where pdfium has none. */
static Affine
matrix_of(void *object)
{
    Matrix m;
    if (!pdfium.object_matrix(object, &m))
        return IDENTITY;
    Affine affine = {m.a, m.b, m.c, m.d, m.e, m.f};
    return affine;
}

/* The matrix that applies `inner`, then `outer`. */
static Affine
compose(Affine outer, Affine inner)
{
    Affine m = {
        inner.a * outer.a + inner.b * outer.c,
        inner.a * outer.b + inner.b * outer.d,
        inner.c * outer.a + inner.d * outer.c,
        inner.c * outer.b + inner.d * outer.d,
        inner.e * outer.a + inner.f * outer.c + outer.e,
        inner.e * outer.b + inner.f * outer.d + outer.f,
    };
    return m;
}

/* A path object as (matrix, [x, y, x, y, …], segment kinds, close flags): the kinds as
   pdfium's FPDF_SEGMENT_* codes in a byte each (its "unknown", -1, reads 255). */
static PyObject *
path_of(void *path, Affine matrix)
{
    int count = pdfium.segment_count(path);
    if (count < 0)
        count = 0;
    PyObject *points = PyList_New(2 * (Py_ssize_t)count);
    PyObject *kinds = PyBytes_FromStringAndSize(NULL, count);
    PyObject *closes = PyBytes_FromStringAndSize(NULL, count);
    PyObject *result = NULL;
    if (points == NULL || kinds == NULL || closes == NULL)
        goto done;
    char *kind = PyBytes_AS_STRING(kinds), *close = PyBytes_AS_STRING(closes);
    for (int i = 0; i < count; i++) {
        void *segment = pdfium.segment(path, i);
        float x = 0, y = 0; /* zeros where pdfium has no point */
        pdfium.segment_point(segment, &x, &y);
        PyObject *px = PyFloat_FromDouble(x), *py = PyFloat_FromDouble(y);
        if (px == NULL || py == NULL) {
            Py_XDECREF(px);
            Py_XDECREF(py);
            goto done;
        }
        PyList_SET_ITEM(points, 2 * (Py_ssize_t)i, px);
        PyList_SET_ITEM(points, 2 * (Py_ssize_t)i + 1, py);
        kind[i] = (char)(unsigned char)pdfium.segment_type(segment);
        close[i] = pdfium.segment_close(segment) ? 1 : 0;
    }
    result = Py_BuildValue("((dddddd)OOO)", matrix.a, matrix.b, matrix.c, matrix.d, matrix.e,
                           matrix.f, points, kinds, closes);
done:
    Py_XDECREF(points);
    Py_XDECREF(kinds);
    Py_XDECREF(closes);
    return result;
}

typedef struct {
    int has_images;
    PyObject *paths; /* list */
    int max_depth;
} Walk;

/* Walks objects [0, count) of a page (`form` NULL) or of a form XObject, depth first in
   content order, as pdfium's own object iterator does. Text objects, most of a page, need
   nothing. Returns -1 with an exception set. */
static int
walk(Walk *walk_state, void *page, void *form, int count, Affine outer, int depth)
{
    for (int i = 0; i < count; i++) {
        void *object = form ? pdfium.form_object(form, (unsigned long)i)
                            : pdfium.get_object(page, i);
        int kind = pdfium.object_type(object);
        if (kind == IMAGE_OBJECT)
            walk_state->has_images = 1;
        else if (kind == PATH_OBJECT) {
            PyObject *path = path_of(object, compose(outer, matrix_of(object)));
            if (path == NULL)
                return -1;
            int appended = PyList_Append(walk_state->paths, path);
            Py_DECREF(path);
            if (appended < 0)
                return -1;
        }
        else if (kind == FORM_OBJECT && depth < walk_state->max_depth) {
            /* Objects inside a form are in the form's space; its matrix maps that to the page. */
            if (walk(walk_state, NULL, object, pdfium.form_count(object),
                     compose(outer, matrix_of(object)), depth + 1) < 0)
                return -1;
        }
    }
    return 0;
}

static PyObject *
page_objects(PyObject *self, PyObject *args)
{
    PyObject *handle;
    int max_depth;
    if (!PyArg_ParseTuple(args, "Oi:page_objects", &handle, &max_depth))
        return NULL;
    void *page = handle_of(handle, "page");
    if (page == NULL)
        return NULL;
    Walk walk_state = {0, PyList_New(0), max_depth};
    if (walk_state.paths == NULL)
        return NULL;
    if (walk(&walk_state, page, NULL, pdfium.count_objects(page), IDENTITY, 0) < 0) {
        Py_DECREF(walk_state.paths);
        return NULL;
    }
    return Py_BuildValue("(NN)", PyBool_FromLong(walk_state.has_images), walk_state.paths);
}

static PyMethodDef methods[] = {
    {"bind", (PyCFunction)(void (*)(void))bind, METH_VARARGS | METH_KEYWORDS,
     "bind(**addresses): the address of each pdfium function this module calls, by its name."},
    {"page_chars", page_chars, METH_VARARGS,
     "page_chars(text_page, left, top) -> (text, x0, x1, top, bottom): every character of a\n"
     "pdfium text page but its \\r, one code point each (U+FFFD where the font has no Unicode\n"
     "map), and the sides of its loose box measured from the media box's top-left corner."},
    {"page_objects", page_objects, METH_VARARGS,
     "page_objects(page, max_depth) -> (has_images, paths): whether the page or a form on it\n"
     "(nested at most max_depth deep) holds an image, and each path object in content order as\n"
     "((a, b, c, d, e, f), [x, y, ...], kinds, closes) with its matrix to page space."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_pdfium_reader",
    .m_doc = "The PDF reader's loops over pdfium's characters and page objects, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__pdfium_reader(void)
{
    return PyModule_Create(&module);
}
