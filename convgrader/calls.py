"""What a grading kernel runs when the grader calls one of the student's functions.

While grading, test cells never run in the student's kernel: the grader runs them in its
own process (``convgrader.judge``) and, for each call of a student's function, sends the
kernel one line of code that calls ``call`` with the function's name and its arguments.
The kernel answers with an observation of the result (``convcourse.checks.observe``):
plain data the grader judges against the expected values it computes itself.

Nothing here is trusted: student code in the kernel may replace any of it, and then it
only changes what this student's own function is reported to return.
"""
import base64
import io

MIME = "application/vnd.convcourse.call+json"


def encode(args, kwargs):
    """The arguments of a call as text (torch's pickle, in base64), for ``call``."""
    import torch
    buffer = io.BytesIO()
    torch.save((args, kwargs), buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(payload):
    import torch
    # The payload comes from the grader, never from a student: a full unpickler is fine.
    return torch.load(io.BytesIO(base64.b64decode(payload)), weights_only=False)


def call(name, payload):
    """Call the notebook's function ``name`` on the grader's arguments; publish what it
    returned (or raised) as an observation."""
    from IPython import get_ipython
    from IPython.display import publish_display_data

    from convcourse.checks import observe
    args, kwargs = decode(payload)
    function = get_ipython().user_ns.get(name)
    if not callable(function):
        record = {"kind": "missing"}  # the grader words the message itself
    else:
        try:
            record = observe(function(*args, **kwargs))
        except Exception as error:
            record = {"kind": "error", "ename": type(error).__name__,
                      "evalue": _message(error)}
    publish_display_data({MIME: record})


def _message(error):
    try:
        return str(error)[:300]
    except Exception:
        return "(its message could not be read)"
