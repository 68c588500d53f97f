"""Maps the folder src/ onto the import package ``evalport`` (see docs/architecture.md)."""

from setuptools import find_packages, setup

setup(
    package_dir={"evalport": "src"},
    packages=["evalport", *("evalport." + p for p in find_packages("src"))],
)
