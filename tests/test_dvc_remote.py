"""Integration: share results through a DVC remote, then let Snakemake take them over.

One repository runs the tiny config with `dvc repro` and pushes to a local remote; a fresh
`git clone` of it pulls. Every artifact must come back byte-identical, Snakemake must accept
the pulled files after `snakemake --touch --forceall` (and keep its re-run triggers), and a
plot-only code change must re-run only the figure, in both tools.
"""

import hashlib
import re
import sys

import pytest

from conftest import SNAKEMAKE, copy_repo, run
from test_workflow import job_counts

pytestmark = pytest.mark.slow

# The tiny config without the aux / Figure 3 / Table 4 experiments (null drops what
# config.yaml sets): the round trip is about artifacts, not about which experiments made them.
CF_FILE = "config/test_dvc_remote.yaml"
CF = ["--configfile", CF_FILE]
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
FIGURE_CODE = "src/vlm4vla/report/figures.py"


def _tree_digests(root) -> dict[str, str]:
    """sha256 of every file under results/ (tables, figures, eval logs, weights, demos)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "results").rglob("*"))
            if p.is_file() and p.name not in (".gitignore", ".snakemake_timestamp")}


def _dvc_stages_to_run(dry_output: str) -> list[str]:
    return sorted(re.findall(r"Running stage '([^']+)'", dry_output))


def _reduced(work) -> str:
    import yaml

    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    for key in ("aux", "capability", "vision_supervision"):
        cfg["experiments"][key] = None
    return "# config/test.yaml without the aux, capability and vision-supervision experiments\n" + \
        yaml.safe_dump(cfg, sort_keys=False)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """A repository that ran the tiny config with `dvc repro` and pushed to a local remote."""
    root = tmp_path_factory.mktemp("dvc_remote")
    work = copy_repo(root / "origin")
    (work / CF_FILE).write_text(_reduced(work))
    run(["git", "init", "-q"], cwd=work)
    run([sys.executable, "workflow_scripts/make_dvc_yaml.py", *CF, "--out", "dvc.yaml"], cwd=work)
    run(["dvc", "repro"], cwd=work)
    run(["dvc", "remote", "modify", "local", "url", str(root / "remote")], cwd=work)
    push = run(["dvc", "push"], cwd=work)
    assert "pushed" in push.stdout, push.stdout
    run(["git", "add", "-A"], cwd=work)   # dvc.yaml, dvc.lock, .dvc/config; results/ is ignored
    run([*GIT, "commit", "-q", "-m", "results of the tiny config"], cwd=work)
    return work


@pytest.fixture(scope="module")
def clone(origin):
    """A fresh clone (no results, no .snakemake/, its own DVC cache) after `dvc pull`."""
    fresh = origin.parent / "clone"
    run(["git", "clone", "-q", str(origin), str(fresh)], cwd=origin.parent)
    assert not (fresh / "results").exists() and not (fresh / ".snakemake").exists()
    pull = run(["dvc", "pull"], cwd=fresh)
    assert re.search(r"\d+ files? fetched", pull.stdout), pull.stdout
    return fresh


@pytest.fixture(scope="module")
def touched(clone):
    """Snakemake told that the pulled files are up to date (it has no metadata for them yet)."""
    return run([*SNAKEMAKE, "--touch", "--forceall", "--cores", "1", *CF], cwd=clone)


def test_pull_restores_every_artifact_byte_identical(origin, clone):
    ours, theirs = _tree_digests(origin), _tree_digests(clone)
    for kind in ("results/tables/", "results/figures/", "results/eval/", "results/vla/", "results/demos/"):
        assert any(k.startswith(kind) for k in ours), kind
    assert any(k.endswith(".safetensors") for k in ours)
    assert theirs == ours
    assert "up to date" in run(["dvc", "status"], cwd=clone).stdout


def test_snakemake_accepts_pulled_artifacts_after_touch(clone, touched):
    out = run([*SNAKEMAKE, "-n", *CF], cwd=clone)
    text = out.stdout + out.stderr
    assert "Nothing to be done" in text, text[-3000:]
    # --forceall records provenance for every job; a bare --touch skips jobs it does not need
    # (training, demos), which then never re-run when their config changes.
    assert "missing provenance" not in text, text[-3000:]
    # the touch must not change what DVC tracks (Snakemake puts .snakemake_timestamp into
    # directory() outputs: .dvcignore must list it)
    status = run(["dvc", "status"], cwd=clone)
    assert "up to date" in status.stdout, status.stdout


def test_config_change_after_touch_reruns_only_what_depends_on_it(clone, touched):
    cfg = clone / CF_FILE
    original = cfg.read_text()
    changed = re.sub(r"(?m)^(  steps: )(\d+)", lambda m: f"{m[1]}{int(m[2]) + 1}", original, count=1)
    assert changed != original, f"train.steps not found in {CF_FILE}"
    try:
        cfg.write_text(changed)
        counts = job_counts((p := run([*SNAKEMAKE, "-n", *CF], cwd=clone)).stdout + p.stderr)
    finally:
        cfg.write_text(original)
    assert counts.get("finetune_vla") and counts.get("evaluate"), counts
    assert "prepare_demos" not in counts, counts


def test_plot_only_change_reruns_only_the_figure(clone, touched):
    code = clone / FIGURE_CODE
    original = code.read_text()
    try:
        code.write_text(original + "# a comment: plot-only change\n")
        (clone / "workflow_scripts" / "figure_main.py").touch()

        # DVC: the figure code is a dependency of figure_main and of nothing else
        status = run(["dvc", "status"], cwd=clone).stdout
        assert re.findall(r"^(\S+):$", status, re.M) == ["figure_main"], status
        assert _dvc_stages_to_run(run(["dvc", "repro", "--dry"], cwd=clone).stdout) == ["figure_main"]

        # Snakemake: code outside a rule's shell command is not a re-run trigger, so editing
        # plotting code (or touching the figure script) schedules nothing by itself ...
        dry = run([*SNAKEMAKE, "-n", *CF], cwd=clone)
        assert "Nothing to be done" in dry.stdout + dry.stderr
        # ... and re-running the figure on purpose re-runs only the figure.
        forced = run([*SNAKEMAKE, "-n", "--forcerun", "figure_main", *CF], cwd=clone)
        assert job_counts(forced.stdout + forced.stderr) == {"figure_main": 1, "all": 1}
    finally:
        code.write_text(original)
