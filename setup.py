"""Build hook for the one C extension; everything else is configured in pyproject.toml.

``trajrec.recorder._cdiff`` speeds up the recorder's state diff, its usual step's write and the reader's step
record checks (recorder/_cdiff.c). It is optional: where no C compiler is available the build goes on without it
and the recorder uses its pure-Python walk, which gives the same rows, and its Python write, which writes the same
bytes, and the reader its Python checks, which give the same verdicts (``TRAJREC_PURE_PYTHON=1`` chooses the
Python code at run time).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("trajrec.recorder._cdiff", ["recorder/_cdiff.c"], optional=True)])
