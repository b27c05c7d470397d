#include <Python.h>

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "gunship_test_speedups", NULL, -1, NULL};

PyMODINIT_FUNC PyInit_gunship_test_speedups(void) { return PyModule_Create(&module); }
