# An sdist that compiles a C extension: its wheel fits the machine that built it, not every host.
from setuptools import Extension, setup

setup(
    name="gunship-test-speedups",
    version="1.0",
    ext_modules=[Extension("gunship_test_speedups", ["speedups.c"])],
)
