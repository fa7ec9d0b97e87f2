"""Build hook for the one optional C extension; all other metadata is in pyproject.toml.

``toolkit.logs.readers._jsonl_c`` speeds up JSONL log parsing. ``optional=True``: without a C
compiler the install still succeeds and the reader uses its numpy path (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "toolkit.logs.readers._jsonl_c",
            ["toolkit/logs/readers/_jsonl_c.c"],
            optional=True,
        )
    ]
)
