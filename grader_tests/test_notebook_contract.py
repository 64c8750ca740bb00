"""The source notebooks keep the course's contract: graded functions, self-contained tests."""
import ast
import builtins
import re

import pytest

from conftest import ASSIGNMENTS, COURSE_ROOT
from convgrader import sample_class
from convgrader.notebooks import is_solution, is_test, nbgrader_meta, read

GRADED_FUNCTIONS = {
    "01_multi_input_channels": ["corr2d_multi_in"],
    "02_multi_output_channels": ["corr2d_multi_in_out"],
    "03_conv_1x1": ["corr2d_multi_in_out_1x1"],
    "04_padding_and_stride": ["comp_conv2d", "conv_output_shape", "corr2d_pad_stride"],
    "05_max_pooling": ["pool2d", "max_pool2d"],
    "06_conv2d_in_full": ["conv2d_param_count", "conv_output_shape_dilated", "corr2d_dilated",
                          "corr2d_grouped"],
    "07_learning_a_kernel": ["corr2d_kernel_grad", "learn_kernel"],
    "08_transposed_convolution": ["trans_conv", "trans_conv_output_shape", "trans_conv_stride_pad"],
}


def source_notebook(assignment):
    return read(sample_class.notebook_path(COURSE_ROOT / "source", assignment))


def test_the_course_has_its_notebooks_in_teaching_order():
    assert ASSIGNMENTS == sorted(GRADED_FUNCTIONS)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_graded_function_has_its_answer_cell_and_two_test_cells(assignment):
    nb = source_notebook(assignment)
    answers = [nbgrader_meta(c)["grade_id"] for c in nb.cells if is_solution(c)]
    assert answers == GRADED_FUNCTIONS[assignment]
    tests = [nbgrader_meta(c)["grade_id"] for c in nb.cells if is_test(c)]
    # A test belongs to the longest function name it starts with (trans_conv is a prefix
    # of trans_conv_output_shape).
    owner = {t: max((f for f in answers if t.startswith(f"test_{f}_")), key=len, default=None)
             for t in tests}
    for function in answers:
        assert [t for t in tests if owner[t] == function] == \
            [f"test_{function}_worked_example", f"test_{function}_against_pytorch"]
    for cell in nb.cells:
        if is_solution(cell):
            defined = [n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)]
            assert defined == [nbgrader_meta(cell)["grade_id"]]
        if is_test(cell):
            assert "### BEGIN HIDDEN TESTS" in cell.source, f"{cell.id} has no hidden tests"


def free_names(source):
    """Names a cell reads but neither defines nor imports."""
    tree = ast.parse(source)
    bound, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound - set(dir(builtins))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_test_cells_stand_on_their_own(assignment):
    """The grader re-runs test cells in its own process: they may use nothing else."""
    for cell in source_notebook(assignment).cells:
        if is_test(cell):
            assert free_names(cell.source) <= set(GRADED_FUNCTIONS[assignment]), \
                f"{cell.id} uses names it does not define or import"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_text_gives_chinese_terms_and_code_draws_figures(assignment):
    nb = source_notebook(assignment)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"\((?:[^)]*[\u4e00-\u9fff][^)]*)\)", text), "no Chinese term beside an English one"
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                  for o in c.outputs)
    assert figures >= 1
    assert "Check your understanding" in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_test_cells_split_into_a_visible_and_a_hidden_part(assignment):
    """The grader runs every test cell's visible part before the hidden parts: each part
    compiles alone, and the hidden part holds checks."""
    from convgrader.judge import split_hidden
    for cell in source_notebook(assignment).cells:
        if is_test(cell):
            visible, hidden = split_hidden(cell.source)
            assert "HIDDEN TESTS" not in visible, f"{cell.id}: a hidden block is not at the top level"
            compile(visible, cell.id, "exec"), compile(hidden, cell.id, "exec")
            assert "check_" in visible and "check_" in hidden


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_cell_uses_what_a_test_cell_defines(assignment):
    """While grading, test cells run after every other cell: nothing may depend on them."""
    cells = source_notebook(assignment).cells
    defined_by_tests = set()
    for cell in cells:
        if cell.cell_type != "code":
            continue
        source = cell.source.replace("%matplotlib inline", "")
        if is_test(cell):
            defined_by_tests |= {n.id for n in ast.walk(ast.parse(source))
                                 if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        else:
            used = free_names(source) & defined_by_tests - free_names_defined_before(cells, cell)
            assert not used, f"{cell.id} uses {sorted(used)}, defined by a test cell"


def free_names_defined_before(cells, upto):
    """Names that cells other than test cells define before ``upto``."""
    defined = set()
    for cell in cells:
        if cell is upto:
            break
        if cell.cell_type == "code" and not is_test(cell):
            tree = ast.parse(cell.source.replace("%matplotlib inline", ""))
            defined |= {n.id for n in ast.walk(tree)
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            defined |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
                        if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
            defined |= {n.name for n in ast.walk(tree)
                        if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return defined
