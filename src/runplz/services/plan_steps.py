"""The steps a run would take, per backend, written out for `runplz plan`.

Each list follows the code that runs them (services/local_docker.py,
local_native.py, remote_path.py with remote_upload / remote_probe /
docker_setup / venv_setup / inline_steps, brev_backend.py, modal_backend.py)
as far as it can be known without connecting: what the box already has is
only known once the probe has run, so those steps carry their condition.
"""

from __future__ import annotations

import shlex
from typing import Sequence

from ..domain.container_run import ContainerRun, Mount, docker_run_argv
from ..domain.inline_plan import InlinePlan, apt_argvs
from ..domain.layout import BOOT_SCRIPT, BUNDLE_DIR, OUT_DIR, PAYLOAD_FILE, REPO_DIR, RUN_DIR
from ..domain.limits import RunLimit, modal_deadline
from ..domain.naming import container_name
from ..domain.plan import NEW_RUN, BrevPlan, ModalPlan, Step
from ..domain.remote_layout import CTL, OUT, REPO, run_dir
from ..ports.python_env import PipStep
from .remote_run import FOLLOW_SECONDS
from .runs import guarded


def shell(argv: Sequence[str]) -> str:
    return " ".join(arg if arg == NEW_RUN or "<" in arg and " " not in arg else shlex.quote(arg) for arg in argv)


def pip_lines(steps: Sequence[PipStep]) -> str:
    lines = []
    for step in steps:
        argv = ["pip", "install", *(["-e"] if step.editable else []), *step.packages]
        if step.index_url:
            argv += ["--index-url", step.index_url]
        lines.append(shell(argv))
    return "\n".join(lines) + ("\n" if lines else "")


def inline_text(plan: InlinePlan, pip: Sequence[PipStep]) -> str:
    """The box steps (apt through ``sudo -n`` unless the login is root), then the venv's."""
    lines = [f"# applied on the box once (marker ~/{plan.marker}); apt through sudo -n unless the login is root"]
    updated = False
    for step in plan.steps:
        if step.command is not None:
            lines.append(f"sh -c {shlex.quote(step.command)}   # in the run's repo copy")
            continue
        update, install = apt_argvs(step.packages, root=True)
        if not updated:
            lines.append(shell(update))
            updated = True
        lines.append(shell(install))
    if not plan.steps:
        lines.append("# (no apt or shell steps)")
    lines.append("# then a venv from the pip steps:")
    return "\n".join(lines) + "\n" + pip_lines(pip)


def _limit(limit: RunLimit | None) -> str:
    return f"{limit.seconds:g}s ({limit.reason})" if limit else "no limit"


# ---------------------------------------------------------------- local


def local_docker_steps(
    app: str, function: str, base_tag: str, run_tag: str, build: bool, outputs: str,
    env: Sequence[str], uid: int, gid: int, gpus: str | None, limit: RunLimit | None,
) -> tuple[Step, ...]:
    steps = []
    if build:
        steps += [
            Step("build", f"docker image inspect {run_tag}"),
            Step("build", f"docker build -t {base_tag} (the base Dockerfile)", "the engine lacks the run image and the base"),
            Step("build", f"docker build -t {run_tag} (the run layer: repo + runtime bundle)", "the engine lacks the run image"),
        ]
        image = run_tag
    else:
        labels = f"runplz.app={app},runplz.function={function},runplz.kind=run"
        steps.append(Step("build", f"the newest image labelled {labels} (--no-build: nothing is built)"))
        image = f"<newest {function} run image>"
    env_all = {name: "" for name in env} | {"RUNPLZ_OUT": ""} | ({"HOME": ""} if uid else {})
    run = ContainerRun(
        image=image,
        argv=guarded("python3", f"{BUNDLE_DIR}/{BOOT_SCRIPT}", f"{RUN_DIR}/{PAYLOAD_FILE}", limit.seconds if limit else 0),
        name=container_name(app, function, NEW_RUN),
        env=env_all,
        mounts=(Mount(outputs, OUT_DIR), Mount("<private temp folder: payload and result>", RUN_DIR)),
        workdir=REPO_DIR,
        user=f"{uid}:{gid}",
        gpus=gpus,
        labels={"runplz.app": app, "runplz.function": function, "runplz.run": NEW_RUN},
    )
    steps.append(Step("run", shell(docker_run_argv(run)) + f"   # limit: {_limit(limit)}"))
    steps.append(Step("collect", f"nothing to fetch: the job writes straight into {outputs} (bind mount)"))
    return tuple(steps)


def local_native_steps(
    repo_root: str, cache: str, bundle_digest: str, outputs: str, limit: RunLimit | None
) -> tuple[Step, ...]:
    venv = f"{cache}/venvs/<key of the pip steps>"
    boot = f"{cache}/bundles/{bundle_digest[:24]}/{BOOT_SCRIPT}"
    payload = "<private temp folder>/payload.json"
    return (
        Step("env", f"make the venv {venv} from the pip steps (uv, else python -m venv + pip)", "no venv has these steps yet"),
        Step("bundle", f"write the runtime bundle to {cache}/bundles/{bundle_digest[:24]}", "it is not there yet"),
        Step("run", f"cd {shlex.quote(repo_root)} && RUNPLZ_OUT={shlex.quote(outputs)} "
             + shell(guarded(f"{venv}/bin/python", boot, payload, limit.seconds if limit else 0))
             + f"   # limit: {_limit(limit)}"),
        Step("collect", f"nothing to fetch: the job writes straight into {outputs}"),
    )


# ---------------------------------------------------------------- remote (ssh, brev)


def remote_steps(
    where: str, mode: str, bundle_digest: str, basis: str, files: int, outputs: str, wait: float,
    limit: RunLimit | None, docker_job: str | None = None, base_tag: str | None = None,
    inline_marker: str | None = None,
) -> tuple[Step, ...]:
    """The remote run path's steps (services/remote_path.py), box ``where``."""
    folder = run_dir(NEW_RUN)
    bundle = f".runplz/bundles/{bundle_digest[:24]}"
    boot = f"{bundle}/{BOOT_SCRIPT}"
    checks = [f"bundle {bundle}"]
    if base_tag:
        checks.append(f"image {base_tag}")
    if inline_marker:
        checks.append(f"inline steps ~/{inline_marker}")
    steps = [
        Step("connect", f"ssh {where} (one shared connection; waits up to {wait:g}s for the box)"),
        Step("probe", f"ssh {where} sh -c '<probe: cpus, memory, home, python3, rsync"
             + (", docker, NVIDIA runtime" if mode == "docker" else "") + ", GPUs; has: " + ", ".join(checks) + ">'"),
        Step("upload", f"rsync <runtime bundle> {where}:~/{bundle}.part-{NEW_RUN}, then python3 -c <settle> "
             f"(rename into place)", "the box lacks this runplz bundle"),
        Step("upload", f"rsync {files} files (the upload above) -> {where}:~/{folder}/{REPO} "
             f"(unchanged files copied from ~/{basis})"),
    ]
    if mode == "docker":
        steps.append(Step("build", f"docker build -t {base_tag} on {where} (the Dockerfile above; "
                          "sudo -n docker where docker needs it)", "the box lacks the image"))
    if mode == "inline":
        steps.append(Step("build", f"apply the image's apt/shell steps on {where} (above)",
                          "the box has no marker for them"))
    if mode in ("native", "inline"):
        steps.append(Step("build", f"make the venv ~/.runplz/venvs/<key> on {where} from the pip steps above "
                          f"(python3 ~/{boot} agent venv <request>)", "the box has no venv with these steps"))
    job = docker_job or f"~/.runplz/venvs/<key>/bin/python ~/{boot} ~/{folder}/{CTL}/{PAYLOAD_FILE}"
    steps += [
        Step("run", f"ssh {where} python3 ~/{boot} agent start {folder}   # the job: {job}; limit: {_limit(limit)}"),
        Step("follow", f"ssh {where} python3 ~/{boot} agent follow {folder} <offset> {FOLLOW_SECONDS}"
             "   # again until the job ends; reconnects after a dropped connection"),
        Step("collect", f"rsync {where}:~/{folder}/{OUT}/ -> {outputs} (each file leaves the box once it arrived)"),
    ]
    return tuple(steps)


def remote_docker_job(app: str, function: str, base_tag: str, env: Sequence[str], wants_gpu: bool) -> str:
    """The job's ``docker run`` on the box; ``--gpus all`` when the function wants
    a GPU and the probe finds the NVIDIA runtime there."""
    folder = f"~/{run_dir(NEW_RUN)}"
    run = ContainerRun(
        image=base_tag,
        argv=("python3", f"{BUNDLE_DIR}/{BOOT_SCRIPT}", f"{RUN_DIR}/{PAYLOAD_FILE}"),
        name=container_name(app, function, NEW_RUN),
        env={name: "" for name in (*env, "RUNPLZ_OUT")},
        mounts=(
            Mount(f"{folder}/{OUT}", OUT_DIR), Mount(f"{folder}/{CTL}", RUN_DIR),
            Mount(f"{folder}/{REPO}", REPO_DIR), Mount("~/.runplz/bundles/<bundle>", BUNDLE_DIR, read_only=True),
        ),
        workdir=REPO_DIR,
        user="<login uid>:<gid>",
        gpus="all" if wants_gpu else None,
        labels={"runplz.app": app, "runplz.function": function, "runplz.run": NEW_RUN},
    )
    return shell(docker_run_argv(run))


def brev_before(brev: BrevPlan) -> tuple[Step, ...]:
    steps = [Step("provision", "delete the boxes runplz's ledger holds for drivers that died", "there are any")]
    if not brev.ephemeral:
        steps.append(Step("provision", "brev ls --json (find the box)"))
    if brev.how == "create":
        if brev.source == "picked":
            steps.append(Step("provision", "brev search ... --json (the offers above)"))
        disk = f" --min-disk {brev.min_disk_gb:g}" if brev.min_disk_gb else ""
        steps.append(Step("provision", f"brev create {brev.instance} --type {','.join(brev.types)}{disk} --mode {brev.mode}"
                          + (" --container-image <the image's base>" if brev.mode == "container" else "")))
    elif brev.how == "start":
        steps.append(Step("provision", f"brev start {brev.instance}"))
    if brev.how != "attach":
        steps.append(Step("provision", "brev ls --json, polled until the box is usable"))
    steps.append(Step("provision", f"brev refresh (so `ssh {brev.instance}` reaches the box)",
                      None if brev.how != "attach" else "not yet done by this driver"))
    return tuple(steps)


def brev_after(brev: BrevPlan) -> tuple[Step, ...]:
    if brev.ephemeral:
        return (Step("teardown", f"brev delete {brev.instance}", "always, however the call ends"),)
    if brev.on_finish == "leave":
        return (Step("teardown", f"nothing: {brev.instance} is left as it is (on_finish='leave')"),)
    return (Step("teardown", f"brev {brev.on_finish} {brev.instance}", "once, when the App is done"),)


# ---------------------------------------------------------------- modal


def modal_steps(app: str, function: str, modal: ModalPlan, files: int, outputs: str) -> tuple[Step, ...]:
    shape = modal.gpu or "CPU"
    return (
        Step("build", "Modal builds the image chain above", "Modal has no cached image for it"),
        Step("upload", f"{files} files of the repo and the runtime bundle, mounted when the container starts"),
        Step("run", f"an ephemeral Modal app {app!r}: {function} on {shape}, timeout {modal.timeout}s "
             f"(the job stops itself at {modal_deadline(modal.timeout):g}s to send back its outputs)"),
        Step("collect", f"the outputs come back as one archive, unpacked into {outputs}"),
    )
