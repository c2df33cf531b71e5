/*
 * bprop.backend._fused: Adam's update as one pass over the parameter buffer, ReLU's backward pass in one
 * pass, a fast test that an array is finite, and the flushing of subnormal numbers to zero.
 *
 * NumPy cannot fuse element-wise operations, so optim.Adam's NumPy code reads and writes the
 * whole buffer thirteen times per step; this loop does the same arithmetic, operation for
 * operation and in the same precision, in one pass. Its results are bit for bit the NumPy path's (the
 * tests compare them), which is why the build turns off floating-point contraction: a fused
 * multiply-add rounds once where NumPy rounds twice.
 *
 * The extension is optional. When it cannot be built, or when the environment variable
 * BPROP_NO_FUSED is set, bprop runs the NumPy code (see kernels.py).
 *
 * Per element, Adam as PyTorch computes it (see optim.Adam), with the moments m (exp_avg) and
 * v (exp_avg_sq), step_size = lr / (1 - b1^t) and bias_correction2_sqrt = sqrt(1 - b2^t):
 *     m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g g,
 *     value <- value - step_size m / (sqrt(v) / bias_correction2_sqrt + eps)
 * and, for fit's guard against divergence, the old value kept in a backup array and the new
 * one tested for NaN and infinity, in the same pass.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The results must be the NumPy code's, bit for bit, and the finiteness test must see NaN:
 * refuse to build (bprop then runs its NumPy code) where the compiler may reorder, contract or
 * widen float arithmetic, or assume that no value is NaN. */
#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__) \
    || (defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0)
#error "bprop.backend._fused needs IEEE arithmetic: build it without -ffast-math and not for x87"
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define restrict __restrict
#endif

/* On x86-64 Linux with glibc, compile the loops for AVX-512 and AVX2 as well as the baseline,
 * and let the loader pick the widest the processor has. Wider vectors do more square roots and
 * divisions per cycle: over 235,146 float64 values, Adam's pass (then with one division per
 * element, now two) took about 680 microseconds with the baseline's SSE2, 180 with AVX2 and
 * 90 with AVX-512, where it runs at about the speed of its loads and stores alone. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define WIDEST_VECTORS __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef WIDEST_VECTORS
#define WIDEST_VECTORS
#endif

/* One Adam step over n elements; returns whether every updated value and moment is finite (a
 * gradient whose square overflows makes v infinite and the step 0: a silent stall, unless it is
 * caught). With KEEP,
 * each value is first copied into backup (so that the caller can undo the step): one pass
 * instead of a copy before the step and a check after it. With NEW, the updated moments go to
 * new_exp_avg and new_exp_avg_sq and exp_avg and exp_avg_sq are only read, so that an undone
 * step leaves the optimizer's state as it was without a copy of it (the caller swaps the
 * arrays when the step is kept); without, they are updated in place. x - x is 0 for finite x
 * and NaN for NaN or infinity, and NaN == 0 is false; an integer AND, unlike a running float
 * test, lets the loop be vectorised. */
#define ADAM_LOOP(type, root, name, KEEP, NEW)                                       \
    WIDEST_VECTORS static int name(type *restrict values, const type *restrict grads,  \
                                   type *restrict exp_avg, type *restrict exp_avg_sq,  \
                                   type *restrict backup, type *restrict new_exp_avg,  \
                                   type *restrict new_exp_avg_sq, Py_ssize_t n,        \
                                   type beta1, type one_minus_beta1, type beta2,       \
                                   type one_minus_beta2, type step_size,               \
                                   type bias_correction2_sqrt, type eps)               \
    {                                                                                \
        int finite = 1;                                                              \
        for (Py_ssize_t i = 0; i < n; i++) {                                         \
            type g = grads[i];                                                       \
            type m = exp_avg[i] * beta1 + one_minus_beta1 * g;                       \
            type v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g;                \
            if (NEW) {                                                               \
                new_exp_avg[i] = m;                                                  \
                new_exp_avg_sq[i] = v;                                               \
            } else {                                                                 \
                exp_avg[i] = m;                                                      \
                exp_avg_sq[i] = v;                                                   \
            }                                                                        \
            type denominator = root(v) / bias_correction2_sqrt + eps;                \
            type value = values[i];                                                  \
            if (KEEP)                                                                \
                backup[i] = value;                                                   \
            value -= step_size * m / denominator;                                    \
            values[i] = value;                                                       \
            finite &= (value - value == 0) & (m - m == 0) & (v - v == 0);            \
        }                                                                            \
        return finite;                                                               \
    }

ADAM_LOOP(float, sqrtf, adam_float, 0, 0)
ADAM_LOOP(double, sqrt, adam_double, 0, 0)
ADAM_LOOP(float, sqrtf, adam_keep_float, 1, 0)
ADAM_LOOP(double, sqrt, adam_keep_double, 1, 0)
ADAM_LOOP(float, sqrtf, adam_new_float, 0, 1)
ADAM_LOOP(double, sqrt, adam_new_double, 0, 1)
ADAM_LOOP(float, sqrtf, adam_keep_new_float, 1, 1)
ADAM_LOOP(double, sqrt, adam_keep_new_double, 1, 1)

typedef int (*adam_float_loop)(float *, const float *, float *, float *, float *, float *,
                               float *, Py_ssize_t, float, float, float, float, float, float,
                               float);
typedef int (*adam_double_loop)(double *, const double *, double *, double *, double *,
                                double *, double *, Py_ssize_t, double, double, double, double,
                                double, double, double);
/* indexed [keep][new] */
static const adam_float_loop adam_float_loops[2][2] = {
    {adam_float, adam_new_float}, {adam_keep_float, adam_keep_new_float}};
static const adam_double_loop adam_double_loops[2][2] = {
    {adam_double, adam_new_double}, {adam_keep_double, adam_keep_new_double}};

#define FINITE_LOOP(type)                                                            \
    WIDEST_VECTORS static int all_finite_##type(const type *restrict x, Py_ssize_t n)   \
    {                                                                                \
        int finite = 1; /* as in ADAM_LOOP */                                                              \
        for (Py_ssize_t i = 0; i < n; i++)                                           \
            finite &= (x[i] - x[i] == 0);                                            \
        return finite;                                                               \
    }

FINITE_LOOP(float)
FINITE_LOOP(double)

/* Subnormal numbers (below FLT_MIN or DBL_MIN in magnitude) become zero, keeping their sign:
 * x * 1 is x and x * 0 is a signed zero, exactly as the NumPy fallback computes it. */
#define FLUSH_LOOP(type, magnitude, smallest_normal)                                             \
    WIDEST_VECTORS static void flush_##type(type *restrict x, Py_ssize_t n)           \
    {                                                                                \
        for (Py_ssize_t i = 0; i < n; i++)                                           \
            x[i] *= (type)(magnitude(x[i]) >= smallest_normal);                     \
    }

FLUSH_LOOP(float, fabsf, FLT_MIN)
FLUSH_LOOP(double, fabs, DBL_MIN)

/* ReLU's backward pass, grad_in = grad_out * (out > 0), as NumPy computes it (a NaN or
 * infinite grad_out times 0 is NaN, a negative one gives -0) but in one pass: NumPy makes a
 * boolean mask and then multiplies by it with a conversion to float in its slow mixed-type
 * loop. */
#define RELU_BACKWARD_LOOP(type)                                                     \
    WIDEST_VECTORS static void relu_backward_##type(const type *restrict grad_out,     \
                                                    const type *restrict out,          \
                                                    type *restrict grad_in, Py_ssize_t n) \
    {                                                                                \
        for (Py_ssize_t i = 0; i < n; i++)                                           \
            grad_in[i] = grad_out[i] * (type)(out[i] > 0);                           \
    }

RELU_BACKWARD_LOOP(float)
RELU_BACKWARD_LOOP(double)

/* Which of float32 ('f') or float64 ('d') a buffer holds, or 0 for anything else. */
static char element_type(const Py_buffer *view)
{
    const char *format = view->format ? view->format : "B";
#if PY_LITTLE_ENDIAN
    const char native_order = '<';
#else
    const char native_order = '>';
#endif
    if (format[0] == '=' || format[0] == '@' || format[0] == native_order)
        format++;
    if (strcmp(format, "f") == 0 && view->itemsize == sizeof(float))
        return 'f';
    if (strcmp(format, "d") == 0 && view->itemsize == sizeof(double))
        return 'd';
    return 0;
}

static void release(Py_buffer *views, int count)
{
    while (count > 0)
        PyBuffer_Release(&views[--count]);
}

/* The buffer of one contiguous float32 or float64 array, and which ('f' or 'd'); or 0, with
 * the error set (naming the function and the argument) and nothing held, for anything else. */
static char float_buffer(PyObject *array, Py_buffer *view, int writable, const char *function,
                         const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(array, view, flags) < 0)
        return 0;
    char type = element_type(view);
    if (type == 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s: %s must be float32 or float64", function, name);
    }
    return type;
}

/* The buffers of count contiguous arrays of one float type and one size, none that is written
 * (writable[i]) overlapping another: the loops promise the compiler (restrict) that they do
 * not. Returns the type ('f' or 'd') with every buffer held, or 0 with the error set (naming
 * the function and the argument) and none held. */
static char float_buffers(PyObject *const *arrays, const char *const *names, const int *writable,
                          int count, Py_buffer *views, const char *function)
{
    char type = 0;
    int taken = 0;
    for (; taken < count; taken++) {
        char this_type = float_buffer(arrays[taken], &views[taken], writable[taken], function,
                                      names[taken]);
        if (this_type == 0)
            goto fail;
        if (taken == 0)
            type = this_type;
        else if (this_type != type || views[taken].len != views[0].len) {
            PyErr_Format(PyExc_ValueError, "%s: %s must have the same dtype and size as %s",
                         function, names[taken], names[0]);
            taken++;
            goto fail;
        }
    }
    for (int i = 0; i < count; i++) {
        for (int j = i + 1; j < count; j++) {
            const char *a = views[i].buf, *b = views[j].buf;
            if ((writable[i] || writable[j]) && a < b + views[j].len && b < a + views[i].len) {
                PyErr_Format(PyExc_ValueError, "%s: %s and %s share memory", function, names[i],
                             names[j]);
                goto fail;
            }
        }
    }
    return type;
fail:
    release(views, taken);
    return 0;
}

static PyObject *adam(PyObject *self, PyObject *args)
{
    PyObject *given[7] = {NULL, NULL, NULL, NULL, Py_None, Py_None, Py_None};
    double beta1, beta2, step_size, bias_correction2_sqrt, eps;
    if (!PyArg_ParseTuple(args, "OOOOddddd|OOO:adam", &given[0], &given[1], &given[2],
                          &given[3], &beta1, &beta2, &step_size, &bias_correction2_sqrt, &eps,
                          &given[4], &given[5], &given[6]))
        return NULL;
    int keep = given[4] != Py_None, new = given[5] != Py_None;
    if (new != (given[6] != Py_None)) {
        PyErr_SetString(PyExc_TypeError,
                        "adam: give both new_exp_avg and new_exp_avg_sq, or neither");
        return NULL;
    }
    /* the arrays given, in a row: values, grads, exp_avg, exp_avg_sq[, backup][, new_...] */
    static const char *const all_names[7] = {"values", "grads", "exp_avg", "exp_avg_sq",
                                             "backup", "new_exp_avg", "new_exp_avg_sq"};
    PyObject *arrays[7];
    const char *names[7];
    int writable[7], count = 0, at[7] = {0};
    for (int i = 0; i < 7; i++) {
        if (given[i] == Py_None)
            continue;
        at[i] = count;
        arrays[count] = given[i];
        names[count] = all_names[i];
        /* the moments are only read when the new ones go elsewhere */
        writable[count] = i == 1 ? 0 : (i == 2 || i == 3) ? !new : 1;
        count++;
    }
    Py_buffer views[7];
    char type = float_buffers(arrays, names, writable, count, views, "adam");
    if (type == 0)
        return NULL;
    Py_ssize_t n = views[0].len / views[0].itemsize;
    void *backup = keep ? views[at[4]].buf : NULL;
    void *new_exp_avg = new ? views[at[5]].buf : NULL;
    void *new_exp_avg_sq = new ? views[at[6]].buf : NULL;
    /* 1 - beta in double, as Python computes it; every scalar then rounded to the arrays'
     * type, as NumPy rounds a Python float that meets an array */
    double one_minus_beta1 = 1.0 - beta1, one_minus_beta2 = 1.0 - beta2;
    int finite;
    Py_BEGIN_ALLOW_THREADS
    if (type == 'f')
        finite = adam_float_loops[keep][new](
            views[0].buf, views[1].buf, views[2].buf, views[3].buf, backup, new_exp_avg,
            new_exp_avg_sq, n, (float)beta1, (float)one_minus_beta1, (float)beta2,
            (float)one_minus_beta2, (float)step_size, (float)bias_correction2_sqrt, (float)eps);
    else
        finite = adam_double_loops[keep][new](
            views[0].buf, views[1].buf, views[2].buf, views[3].buf, backup, new_exp_avg,
            new_exp_avg_sq, n, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size,
            bias_correction2_sqrt, eps);
    Py_END_ALLOW_THREADS
    release(views, count);
    return PyBool_FromLong(finite);
}

static PyObject *all_finite(PyObject *self, PyObject *array)
{
    Py_buffer view;
    char type = float_buffer(array, &view, 0, "all_finite", "the array");
    if (type == 0)
        return NULL;
    Py_ssize_t n = view.len / view.itemsize;
    int finite;
    Py_BEGIN_ALLOW_THREADS
    finite = type == 'f' ? all_finite_float(view.buf, n) : all_finite_double(view.buf, n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyBool_FromLong(finite);
}

static PyObject *relu_backward(PyObject *self, PyObject *args)
{
    PyObject *arrays[3];
    if (!PyArg_ParseTuple(args, "OOO:relu_backward", &arrays[0], &arrays[1], &arrays[2]))
        return NULL;
    static const char *const names[3] = {"grad_out", "out", "grad_in"};
    static const int writable[3] = {0, 0, 1};
    Py_buffer views[3];
    char type = float_buffers(arrays, names, writable, 3, views, "relu_backward");
    if (type == 0)
        return NULL;
    Py_ssize_t n = views[0].len / views[0].itemsize;
    Py_BEGIN_ALLOW_THREADS
    if (type == 'f')
        relu_backward_float(views[0].buf, views[1].buf, views[2].buf, n);
    else
        relu_backward_double(views[0].buf, views[1].buf, views[2].buf, n);
    Py_END_ALLOW_THREADS
    release(views, 3);
    Py_RETURN_NONE;
}

static PyObject *flush_subnormals(PyObject *self, PyObject *array)
{
    Py_buffer view;
    char type = float_buffer(array, &view, 1, "flush_subnormals", "the array");
    if (type == 0)
        return NULL;
    Py_ssize_t n = view.len / view.itemsize;
    Py_BEGIN_ALLOW_THREADS
    if (type == 'f')
        flush_float(view.buf, n);
    else
        flush_double(view.buf, n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS,
     "adam(values, grads, exp_avg, exp_avg_sq, beta1, beta2, step_size,\n"
     "     bias_correction2_sqrt, eps[, backup[, new_exp_avg, new_exp_avg_sq]]) -> bool\n\n"
     "One Adam step in place over separate contiguous arrays of one dtype (float32 or\n"
     "float64), as PyTorch computes it: m = beta1 m + (1 - beta1) g; v = beta2 v +\n"
     "(1 - beta2) g g; values -= step_size m / (sqrt(v) / bias_correction2_sqrt + eps),\n"
     "with m and v the arrays exp_avg and exp_avg_sq. The scalars (and 1 - beta1, 1 - beta2,\n"
     "computed in double) are rounded to the arrays' dtype first, as NumPy does. With backup\n"
     "(not None), the values are first copied into it. With new_exp_avg and new_exp_avg_sq\n"
     "(not None), the updated moments are written there and exp_avg, exp_avg_sq are only\n"
     "read. Returns whether every updated value and moment is finite."},
    {"all_finite", all_finite, METH_O,
     "all_finite(array)\n\nWhether every element of a contiguous float32 or float64 array is\n"
     "finite (no NaN, no infinity), in one vectorised pass."},
    {"flush_subnormals", flush_subnormals, METH_O,
     "flush_subnormals(array)\n\nSet the subnormal elements of a contiguous float32 or float64\n"
     "array to zero (keeping their sign), in place."},
    {"relu_backward", relu_backward, METH_VARARGS,
     "relu_backward(grad_out, out, grad_in)\n\ngrad_in = grad_out * (out > 0) over contiguous\n"
     "float32 or float64 arrays of one dtype and size, in one pass; grad_in may not overlap\n"
     "the others."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fused",
    "Adam's update and ReLU's backward in one pass each, and two array helpers (optional).",
    -1,
    methods,
};

PyMODINIT_FUNC PyInit__fused(void)
{
    PyObject *m = PyModule_Create(&module);
    /* kernels.py uses the extension only when this matches what it expects */
    if (m != NULL && PyModule_AddIntConstant(m, "API_VERSION", 5) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
