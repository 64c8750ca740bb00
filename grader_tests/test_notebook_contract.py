"""The source notebooks keep the course's contract: graded functions, self-contained tests."""
import ast
import builtins
import re

import pytest

from convgrader.notebooks import is_solution, is_test, nbgrader_meta, read
from convgrader.tools import sample_class
from course_copies import ASSIGNMENTS, COURSE_ROOT

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


def is_figure(cell):
    return cell.cell_type == "code" and any("image/png" in o.get("data", {})
                                            for o in cell.get("outputs", []))


def is_source_hidden(cell):
    return bool(cell.metadata.get("jupyter", {}).get("source_hidden"))


class _Reads(ast.NodeVisitor):
    """The ``names`` a cell reads before it binds them itself, walked in the order Python
    evaluates them (the value of an assignment before its targets, a comprehension's loops
    before its element); a function's body reads what it does not bind locally."""

    def __init__(self, names, bound=()):
        self.names, self.bound, self.read = set(names), set(bound), set()

    def visit_Name(self, node):
        if node.id in self.names and node.id not in self.bound:
            if isinstance(node.ctx, ast.Load):
                self.read.add(node.id)
            else:
                self.bound.add(node.id)

    def bind(self, name):
        if name in self.names and name not in self.bound:
            self.bound.add(name)

    def visit_Assign(self, node):
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_AugAssign(self, node):
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self.visit(ast.Name(id=node.target.id, ctx=ast.Load()))
        self.visit(node.target)

    def visit_NamedExpr(self, node):
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node):
        self.visit(node.iter)
        self.visit(node.target)
        for statement in node.body + node.orelse:
            self.visit(statement)

    def _comprehension(self, node, *parts):
        for generator in node.generators:
            self.visit(generator.iter)
            self.visit(generator.target)
            for condition in generator.ifs:
                self.visit(condition)
        for part in parts:
            self.visit(part)

    def visit_ListComp(self, node):
        self._comprehension(node, node.elt)

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node):
        self._comprehension(node, node.key, node.value)

    def visit_Import(self, node):
        for alias in node.names:
            self.bind((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    def _function(self, node, body):
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(default)
        local = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        local |= {n.id for b in body for n in ast.walk(b)
                  if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        inner = _Reads(self.names - self.bound, local)
        for statement in body:
            inner.visit(statement)
        self.read |= inner.read

    def visit_FunctionDef(self, node):
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._function(node, node.body)
        self.bind(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._function(node, [node.body])

    def visit_ClassDef(self, node):
        self.generic_visit(node)
        self.bind(node.name)


def reads(source, names):
    """Which of ``names`` the cell ``source`` reads before binding them."""
    visitor = _Reads(names)
    visitor.visit(ast.parse(source.replace("%matplotlib inline", "")))
    return visitor.read


def binds(source):
    """Every name a cell binds: assigned, imported, or defined by def or class."""
    tree = ast.parse(source.replace("%matplotlib inline", ""))
    names = {n.id for n in ast.walk(tree)
             if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
              if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    names |= {n.name for n in ast.walk(tree)
              if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return names


def test_reads_follows_the_order_of_evaluation():
    assert reads("X = torch.cat((X, X + 1), 1)", {"X"}) == {"X"}
    assert reads("X = 1\nprint(X)", {"X"}) == set()
    assert reads("rows = [o for o in range(2)]", {"o", "rows"}) == set()
    assert reads("def f(a):\n    return a + Y5", {"a", "Y5"}) == {"Y5"}
    assert reads("def f():\n    first = 1\n    return first", {"first"}) == set()
    assert reads("t += 1", {"t"}) == {"t"}
    assert reads("for i in range(3):\n    print(i)", {"i"}) == set()
    assert reads("fig, ax = plt.subplots()\nfig.tight_layout()", {"fig"}) == set()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_figure_cells_are_collapsed_and_only_draw(assignment):
    """d2l shows its figures as pictures: every cell with a figure has its source hidden
    (nbformat's ``jupyter.source_hidden``; JupyterLab shows it collapsed, one click away).
    Hidden, a cell may hide nothing the reader needs: it draws and does nothing else, so no
    later cell reads a name it binds, it prints nothing, its only outputs are the figure,
    and it is no nbgrader cell (tensors and prints the text uses sit in the visible cell
    above it)."""
    cells = [c for c in source_notebook(assignment).cells if c.cell_type == "code"]
    for index, cell in enumerate(cells):
        if is_figure(cell):
            assert is_source_hidden(cell), \
                f"{cell.id} draws a figure but its source is not hidden (jupyter.source_hidden)"
        if not is_source_hidden(cell):
            continue
        assert is_figure(cell), f"{cell.id} is hidden but draws no figure"
        assert not nbgrader_meta(cell), f"{cell.id} is an nbgrader cell: it must stay visible"
        tree = ast.parse(cell.source.replace("%matplotlib inline", ""))
        printing = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Name) and n.func.id in ("print", "display")]
        assert not printing, f"{cell.id} is hidden but prints: show that in a visible cell"
        shown = [o.output_type for o in cell.outputs if o.output_type != "display_data"
                 or not set(o.get("data", {})) <= {"image/png", "text/plain"}]
        assert not shown, f"{cell.id} is hidden but shows more than its figure: {shown}"
        live = binds(cell.source)
        for later in cells[index + 1:]:
            used = reads(later.source, live)
            assert not used, (f"{later.id} uses {sorted(used)}, which hidden cell {cell.id} "
                              "binds: compute it in a visible cell")
            live -= binds(later.source)
