# nbgrader's settings for the student kit, installed in the kit's venv (etc/jupyter), where
# `nbgrader validate` and JupyterLab's Validate button read them.
c = get_config()  # noqa: F821
# Validate shows the checks' failure lines whole: nbgrader cuts each at 90 characters, which
# cut their "expected ..., got ..." off.
c.Validator.width = 300
