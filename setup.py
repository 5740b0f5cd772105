"""Build hook for the one C extension; everything else is configured in pyproject.toml.

``trajrec.recorder._cdiff`` speeds up the recorder's state diff (recorder/_cdiff.c). It is optional: where no C
compiler is available the build goes on without it and the recorder uses its pure-Python walk, which gives the
same rows (``TRAJREC_PURE_PYTHON=1`` chooses that walk at run time).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("trajrec.recorder._cdiff", ["recorder/_cdiff.c"], optional=True)])
