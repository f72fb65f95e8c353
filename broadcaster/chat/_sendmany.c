/* One batch to many viewer sockets in one call: the chat fan-out's write pass.
 *
 * At 10,000 viewers the fan-out's cost is its socket writes (one per viewer
 * per batch, tens of thousands a second).  Written from Python, each one pays
 * the interpreter loop, the event loop transport's bookkeeping and write(2)'s
 * file layer besides the TCP send itself; here the per-viewer checks are a few
 * C-API calls and the sends one send(2) per socket with the GIL released.
 *
 * A socket is sent to only when its transport is not closing (so its fd is
 * still the viewer's: a closed fd can be reused by the next accept) and holds
 * no bytes (so the batch cannot overtake them); the checks and the sends run
 * without any Python code in between.  The caller (FanOut.write in
 * broadcaster/chat/fanout.py) decides about the rest: it hands what a socket
 * did not take (a partial send, EAGAIN, an error) to that socket's transport,
 * which queues it or meets the error and closes, and it writes the viewers
 * with queued bytes through their transports or drops them when too slow.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <sys/socket.h>

PyDoc_STRVAR(send_batch_doc,
"send_batch(viewers, data, /) -> tuple[list, list, list]\n\n"
"One fan-out pass over ``viewers`` (objects with ``closed``, ``transport`` and\n"
"``fd`` attributes, as broadcaster.chat.room.Viewer): ``data`` is sent with\n"
"send(2) (MSG_DONTWAIT | MSG_NOSIGNAL) on the socket of every viewer whose\n"
"``fd`` is not -1 and whose transport holds nothing.  Returns (gone, queued,\n"
"short): the viewers that are closed or whose transport is closing; (viewer,\n"
"bytes buffered) for the others, which this call did not write to; (viewer,\n"
"bytes sent) for every socket that took less than all of ``data`` (0 when the\n"
"call failed: EAGAIN or a connection error).");

static PyObject *str_closed, *str_transport, *str_fd, *str_is_closing, *str_get_write_buffer_size;

/* Appends (a, b) to list; -1 on error. */
static int
append_pair(PyObject *list, PyObject *a, Py_ssize_t b)
{
    PyObject *pair = Py_BuildValue("(On)", a, b);
    if (pair == NULL)
        return -1;
    int rc = PyList_Append(list, pair);
    Py_DECREF(pair);
    return rc;
}

/* Classifies one viewer: 1 = send directly on *fd, 0 = handled (gone or queued), -1 = error. */
static int
classify(PyObject *viewer, PyObject *gone, PyObject *queued, int *fd)
{
    PyObject *closed = PyObject_GetAttr(viewer, str_closed);
    if (closed == NULL)
        return -1;
    int is_closed = PyObject_IsTrue(closed);
    Py_DECREF(closed);
    if (is_closed < 0)
        return -1;
    if (is_closed)
        return PyList_Append(gone, viewer);
    PyObject *transport = PyObject_GetAttr(viewer, str_transport);
    if (transport == NULL)
        return -1;
    PyObject *closing = PyObject_CallMethodNoArgs(transport, str_is_closing);
    int is_closing = closing == NULL ? -1 : PyObject_IsTrue(closing);
    Py_XDECREF(closing);
    if (is_closing != 0) {
        Py_DECREF(transport);
        return is_closing < 0 ? -1 : PyList_Append(gone, viewer);
    }
    PyObject *size = PyObject_CallMethodNoArgs(transport, str_get_write_buffer_size);
    Py_DECREF(transport);
    if (size == NULL)
        return -1;
    Py_ssize_t buffered = PyLong_AsSsize_t(size);
    Py_DECREF(size);
    if (buffered == -1 && PyErr_Occurred())
        return -1;
    PyObject *fd_obj = PyObject_GetAttr(viewer, str_fd);
    if (fd_obj == NULL)
        return -1;
    long value = PyLong_AsLong(fd_obj);
    Py_DECREF(fd_obj);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (buffered == 0 && value >= 0 && value <= INT_MAX) {
        *fd = (int)value;
        return 1;
    }
    return append_pair(queued, viewer, buffered);
}

static PyObject *
send_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "send_batch() takes exactly 2 arguments (viewers, data)");
        return NULL;
    }
    if (!PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "viewers must be a list");
        return NULL;
    }
    PyObject *viewers = args[0];
    Py_buffer data;
    if (PyObject_GetBuffer(args[1], &data, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    PyObject *gone = PyList_New(0), *queued = PyList_New(0), *shorts = PyList_New(0);
    /* The viewers to send to (a reference each) and their fds. */
    Py_ssize_t n = PyList_GET_SIZE(viewers), count = 0;
    PyObject **who = PyMem_Malloc((n ? n : 1) * sizeof(PyObject *));
    int *fds = PyMem_Malloc((n ? n : 1) * sizeof(int));
    ssize_t *sent = PyMem_Malloc((n ? n : 1) * sizeof(ssize_t));
    PyObject *result = NULL;
    const char *bytes = (const char *)data.buf;
    const size_t len = (size_t)data.len;
    if (gone == NULL || queued == NULL || shorts == NULL)
        goto done;
    if (who == NULL || fds == NULL || sent == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* (the list's size is read each time: classify() calls Python methods) */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(viewers) && count < n; i++) {
        PyObject *viewer = PyList_GET_ITEM(viewers, i);
        Py_INCREF(viewer);
        int fd = -1;
        int kind = classify(viewer, gone, queued, &fd);
        if (kind == 1) {
            who[count] = viewer;
            fds[count++] = fd;
            continue;
        }
        Py_DECREF(viewer);
        if (kind < 0)
            goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count; k++) {
        ssize_t r;
        do {
            r = send(fds[k], bytes, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (r < 0 && errno == EINTR);
        sent[k] = r;
    }
    Py_END_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count; k++) {
        if (sent[k] != (ssize_t)len && append_pair(shorts, who[k], sent[k] < 0 ? 0 : (Py_ssize_t)sent[k]) < 0)
            goto done;
    }
    result = PyTuple_Pack(3, gone, queued, shorts);
done:
    for (Py_ssize_t k = 0; k < count; k++)
        Py_DECREF(who[k]);
    PyBuffer_Release(&data);
    Py_XDECREF(gone);
    Py_XDECREF(queued);
    Py_XDECREF(shorts);
    PyMem_Free(who);
    PyMem_Free(fds);
    PyMem_Free(sent);
    return result;
}

static PyMethodDef sendmany_methods[] = {
    {"send_batch", (PyCFunction)(void (*)(void))send_batch, METH_FASTCALL, send_batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef sendmany_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "broadcaster.chat._sendmany",
    .m_doc = "One batch to many viewer sockets in one call (the chat fan-out's write pass).",
    .m_size = 0,
    .m_methods = sendmany_methods,
};

PyMODINIT_FUNC
PyInit__sendmany(void)
{
    if ((str_closed = PyUnicode_InternFromString("closed")) == NULL
            || (str_transport = PyUnicode_InternFromString("transport")) == NULL
            || (str_fd = PyUnicode_InternFromString("fd")) == NULL
            || (str_is_closing = PyUnicode_InternFromString("is_closing")) == NULL
            || (str_get_write_buffer_size = PyUnicode_InternFromString("get_write_buffer_size")) == NULL)
        return NULL;
    return PyModuleDef_Init(&sendmany_module);
}
