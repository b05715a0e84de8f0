"""The one thing pyproject.toml cannot declare: the optional C accelerator.

``mailseal.dkim._canon`` speeds up relaxed body canonicalization (see
docs/performance.md). It is optional: without a C compiler the build skips it and
``mailseal.dkim.canonical`` uses its pure-Python transform instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("mailseal.dkim._canon", ["src/mailseal/dkim/_canon.c"], optional=True),
    ],
)
