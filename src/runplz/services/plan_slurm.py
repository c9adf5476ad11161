"""`runplz plan slurm`: one function's Slurm batch job, written out without
connecting to the login node or asking the scheduler anything.

The batch script is the one `slurm_jobs.render_script` submits, rendered for
a run folder ``<home>/.runplz/slurm-runs/<new>`` (``<home>``: the login's
$HOME, or ``SlurmConfig.workdir``); what only the login node knows (its
home, the venv's key) stays a placeholder.
"""

from __future__ import annotations

from typing import Any

from ..domain.layout import BOOT_SCRIPT, PAYLOAD_FILE
from ..domain.limits import run_limit
from ..domain.local_plan import native_plan
from ..domain.plan import NEW_RUN, FunctionPlan, ImagePlan, SlurmPlan, Step
from ..domain.remote_layout import CTL, OUT, REPO, bundle_dir
from ..domain.slurm import check_container_image
from ..domain.spec import FunctionSpec
from .native_steps import native_steps
from .plan_steps import pip_lines
from .remote_run import RemoteJob
from .slurm_backend import MAP_CONCURRENCY, RUNS_FOLDER
from .slurm_jobs import render_script

_HOME = "@@home@@"  # placeholders that shlex leaves unquoted, shown as <home> and <new>
_RUN = "@@new@@"
_KEY = "@@key@@"


def _shown(text: str) -> str:
    return text.replace(_HOME, "<home>").replace(_RUN, NEW_RUN).replace(_KEY, "<key>")


def slurm_function(
    app: Any, spec: FunctionSpec, implicit: bool, login: str, repo_root: str, trees: Any,
    bundle_digest: str, files: int, outputs: str,
) -> FunctionPlan:
    """The plan of one function on Slurm (refusing what a run refuses before anything is sent)."""
    config = app.slurm_config
    check_container_image(config, spec.image, spec.name)
    limit = run_limit(spec.timeout, config.max_runtime_seconds)
    home = config.workdir or _HOME
    folder = f"{RUNS_FOLDER}/{_RUN}"
    bundle = bundle_dir(bundle_digest)
    payload = f"{home}/{folder}/{CTL}/{PAYLOAD_FILE}"
    boot = f"{home}/{bundle}/{BOOT_SCRIPT}"
    if config.container == "none":
        plan = native_plan(spec.image, spec.name)
        pip, _ = native_steps(plan, repo_root, trees, lambda p: f"<home>/{RUNS_FOLDER}/{NEW_RUN}/{REPO}" + ("" if p == "." else f"/{p}"))
        image = ImagePlan("native", pip_lines(pip), warnings=plan.warnings)
        python = f"{home}/.runplz/venvs/{_KEY}/bin/python"
    else:
        image = ImagePlan("registry", f"{spec.image.base.ref}\n# run as it is by {config.container}; no venv is made\n")
        python = "python3"
    env = {name: "" for name in spec.env} | {"RUNPLZ_OUT": ""}
    job = RemoteJob(folder, (python, boot, payload), f"{home}/{folder}/{REPO}", env, "",
                    limit=limit.seconds if limit else None)
    script = _shown(render_script(job, spec, config, app.name))
    directives = tuple(line for line in script.splitlines() if line.startswith("#SBATCH "))
    slurm = SlurmPlan(
        login=login, workdir=_shown(home), container=config.container, directives=directives, script=script,
        array="--array=0-<N-1>%<K>",
        map_concurrency=MAP_CONCURRENCY,
        limit_seconds=limit.seconds if limit else None, limit_reason=limit.reason if limit else None,
    )
    where = "ssh " + login if login != "this machine" else "this machine"
    run = f"<home>/{RUNS_FOLDER}/{NEW_RUN}"
    steps = [
        Step("connect", f"{where} (one shared connection; waits up to {config.ssh_ready_wait_seconds:g}s)"),
        Step("probe", f"{where}: sh -c '<probe: home, python3, rsync; has: bundle {bundle}>' "
             "(the job's hardware is the scheduler's to find: not checked here)"),
        Step("upload", f"rsync <runtime bundle> -> <home>/{bundle}", "the login node lacks this runplz bundle"),
        Step("upload", f"rsync {files} files (the upload above) -> {run}/{REPO}"),
    ]
    if config.container == "none":
        steps.append(Step("build", "make the venv <home>/.runplz/venvs/<key> from the pip steps above, on the "
                          "login node under a file lock (the nodes share it)", "no venv has these steps yet"))
    steps += [
        Step("run", f"write {run}/{CTL}/payload.json, {CTL}/env (mode 600: the values of {', '.join(sorted(env))}) "
             f"and {CTL}/job.sh (the script above); sbatch --parsable < {run}/{CTL}/job.sh" + ("" if limit else (
                 "; --time: partition default (no timeout= or SlurmConfig.max_runtime_seconds): before submitting, "
                 "scontrol show partition -o names the limit that applies, a warning when it is UNLIMITED"))),
        Step("follow", "squeue -h -j <job> -o '%i\\t%T\\t%r' while it lives, then sacct -n -P -X -j <job> "
             "-o JobID,State,ExitCode (every poll_seconds, backing off to max_poll_seconds); the log: "
             f"python3 <home>/{bundle}/{BOOT_SCRIPT} agent follow {run} <offset> <seconds>"),
        Step("collect", f"rsync {run}/{OUT}/ -> {outputs} (each file leaves the cluster once it arrived)"),
    ]
    target = f"Slurm through {where}"
    return FunctionPlan(spec.name, implicit, spec.timeout, target, image, tuple(steps), slurm=slurm)
