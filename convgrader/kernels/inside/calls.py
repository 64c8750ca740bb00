"""What a grading kernel runs when the grader calls one of the student's functions.

While grading, test cells never run in the student's kernel: the grader runs them in its
own process (``convgrader.judge``) and, for each call of a student's function, sends the
kernel one line of code that calls ``call`` with the function's name and its arguments.
The kernel answers with a record of what the function did (``convcourse.records``): plain
data the grader judges against the expected values it computes itself.

Nothing here is trusted: student code in the kernel may replace any of it, and then it
only changes what this student's own function is reported to return.
"""
from IPython import get_ipython
from IPython.display import publish_display_data

from convcourse import records


def call(name: str, payload: str) -> None:
    """Call the notebook's function ``name`` on the grader's arguments; publish what it
    returned (or raised) as a record."""
    args, kwargs = records.decode_call(payload)
    function = get_ipython().user_ns.get(name)
    if not callable(function):
        record = records.missing()
    else:
        try:
            record = records.observe(function(*args, **kwargs))
        except Exception as error:
            record = records.raised(error)
    publish_display_data({records.MIME: record})
