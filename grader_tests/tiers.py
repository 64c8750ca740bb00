"""The tests' tiers, declared where they apply.

`make check`, the edit loop, runs ``-m "not grading and not kit"``; `make test` runs all but
``kit``. A test that grades notebooks or starts grading kernels carries the ``grading``
marker, declared in its own module: ``pytestmark = pytest.mark.grading`` where every test
grades, ``@pytest.mark.grading`` on the tests that do in a mixed module. A fixture that
grades is made with ``grading_fixture(...)`` instead of ``pytest.fixture(...)``: conftest's
one check at collection fails a run where a test uses such a fixture without the marker, so
that no grading test enters the quick tier by a forgotten marker.
"""
import pytest

# The names of the fixtures made with grading_fixture, filled as their modules are imported.
GRADING_FIXTURES = set()


def grading_fixture(**options):
    """``pytest.fixture(**options)`` for a fixture that grades: its name goes into
    GRADING_FIXTURES, which conftest checks the tests' markers against."""
    def register(function):
        GRADING_FIXTURES.add(options.get("name", function.__name__))
        return pytest.fixture(**options)(function)
    return register
