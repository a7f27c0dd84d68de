"""`mediaplane dev ...`: the local dev cluster (control plane, node agent, S3).

`dev up` is a supervisor: it owns every process of the cluster (they die with it) and
stops them in order on SIGINT/SIGTERM. `--detach` runs that same supervisor in the
background, so `dev down` is just "SIGTERM the supervisor and wait".
"""

from __future__ import annotations

import contextlib
import enum
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from mediaplane.devcluster.state import default_state_dir, is_running, read_env

if TYPE_CHECKING:
    from mediaplane.devcluster.cluster import DevCluster

# --- extension point ------------------------------------------------------------------------
# Called in order once the cluster is ready, before "ready" is printed (and before a
# detached `dev up` returns): e.g. start the operator and the API with `cluster.spawn`,
# load demo data. An exception stops the cluster and fails `dev up`.
def _start_operator(cluster: DevCluster) -> None:
    from mediaplane.devcluster.services import start_operator

    start_operator(cluster)


def _start_api(cluster: DevCluster) -> None:
    from mediaplane.devcluster.services import start_api

    start_api(cluster)


ON_READY: list[Callable[[DevCluster], None]] = [_start_operator, _start_api]

DOWN_TIMEOUT = 90.0
# A component that dies is started again, like a kubelet restarts a container; one that
# dies this many times within the window is crash-looping, and the cluster stops.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 300.0
RESTART_TIMEOUT = 120.0
# Files in the state dir: `dev restart` leaves a request in REQUESTS_DIR and wakes the
# supervisor (SIGUSR1); STOPPING says the supervisor is shutting the cluster down.
REQUESTS_DIR = "restart-requests"
STOPPING = "stopping"


class _Shutdown(BaseException):
    """Raised from the signal handler to unwind `dev up` through its cleanup."""


dev = typer.Typer(help="The local dev environment: control plane, node agent, S3, operator "
                  "and API as local processes.", no_args_is_help=True)


class NodeKind(enum.StrEnum):
    """What runs the pods: the node agent (local processes) or a real node (containers)."""

    PROCESS = "process"
    CONTAINERS = "containers"


StateDirOption = Annotated[Path | None, typer.Option(
    "--state-dir", help="Default: $MEDIAPLANE_DEV_DIR or "
    "${XDG_STATE_HOME:-~/.local/state}/mediaplane/dev.")]


def register(app: typer.Typer) -> None:
    from mediaplane.cli.main import ADMIN_PANEL

    app.add_typer(dev, name="dev", rich_help_panel=ADMIN_PANEL)


def _state_dir(state_dir: Path | None) -> Path:
    return Path(state_dir or default_state_dir()).resolve()


def exports(env: Mapping[str, str]) -> str:
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items()))


# --- supervisor pid ---------------------------------------------------------------------------


def _read_pid(state: Path) -> int | None:
    try:
        return int((state / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _is_supervisor(pid: int) -> bool:
    """Alive (not a zombie) and a `dev up`, not some process that reused the pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return b"dev" in argv and b"up" in argv


# --- commands -------------------------------------------------------------------------------


def _wait_stopped(state: Path) -> bool:
    """A cluster that is shutting down is waited for, not reported as running; True when
    the state dir is free (it stopped, or was never stopping)."""
    if not (state / STOPPING).exists():
        return not is_running(state)
    print(f"the dev cluster in {state} is stopping; waiting for it", file=sys.stderr)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while is_running(state) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not is_running(state)


@dev.command("up")
def up(
    detach: Annotated[bool, typer.Option("--detach", help="Run in the background, return when "
                                         "ready.")] = False,
    no_demo: Annotated[bool, typer.Option(
        "--no-demo", help="Do not run the embedded demo (the examples, applied and "
        "transcoded) once ready.")] = False,
    node: Annotated[NodeKind, typer.Option(
        "--node", help="process: the node agent runs pods' commands as local processes; "
        "containers: a real node (kubelet, containerd, runc) runs the images, built here "
        "with BuildKit (needs root).")] = NodeKind.PROCESS,
    state_dir: StateDirOption = None,
) -> None:
    """Start the environment; stays in the foreground unless --detach."""
    raise typer.Exit(cmd_up(_state_dir(state_dir), detach, no_demo, node.value))


def cmd_up(state: Path, detach: bool, no_demo: bool, node: str = "process") -> int:
    state.mkdir(parents=True, exist_ok=True)
    if not _wait_stopped(state) and is_running(state):
        env = read_env(state)
        print(f"a dev cluster is already running in {state}", file=sys.stderr)
        if env is not None:
            print(exports(env))
        return 0 if detach else 1
    demo = not (no_demo or detach)
    return _up_detached(state, node) if detach else _up_foreground(state, demo, node)


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    raise _Shutdown(signum)


class _Restarts:
    """Restarts of dead components and `dev restart` requests, for the supervisor loop."""

    def __init__(self, cluster: DevCluster, state: Path) -> None:
        self.cluster = cluster
        self.requests = state / REQUESTS_DIR
        self.history: dict[str, list[float]] = {}
        self.woken = False

    def wake(self, signum: int, frame: FrameType | None) -> None:
        self.woken = True

    def revive_dead(self) -> bool:
        """Restarts each dead component; False when one is crash-looping."""
        for proc in self.cluster.dead_processes():
            now = time.monotonic()
            recent = [t for t in self.history.get(proc.name, [])
                      if now - t < RESTART_WINDOW_SECONDS]
            print(f"{proc.name} exited with {proc.returncode}; log {proc.log_path}:\n"
                  f"{proc.log_tail(20)}", file=sys.stderr)
            if len(recent) >= MAX_RESTARTS:
                print(f"{proc.name} died {len(recent) + 1} times in "
                      f"{RESTART_WINDOW_SECONDS:.0f} s; stopping", file=sys.stderr)
                return False
            self.history[proc.name] = [*recent, now]
            print(f"restarting {proc.name}", file=sys.stderr, flush=True)
            try:
                self.cluster.restart(proc.name)
            except Exception as err:  # it will be found dead again and counted
                print(f"restarting {proc.name} failed: {err}", file=sys.stderr)
        return True

    def serve_requests(self) -> None:
        if not self.woken:
            return
        self.woken = False
        for request in sorted(self.requests.glob("*.request")):
            name = request.stem
            try:
                self.cluster.restart(name)
                outcome = "restarted"
            except Exception as err:  # reported to the `dev restart` that asked
                outcome = f"failed: {err}"
            print(f"dev restart {name}: {outcome}", file=sys.stderr, flush=True)
            request.with_suffix(".done").write_text(outcome + "\n")
            request.unlink(missing_ok=True)


def _up_foreground(state: Path, demo: bool, node: str = "process") -> int:
    from mediaplane.devcluster.cluster import DevCluster

    pid_path, ready_path = state / "pid", state / "ready"
    ready_path.unlink(missing_ok=True)
    (state / STOPPING).unlink(missing_ok=True)
    pid_path.write_text(f"{os.getpid()}\n")
    previous = {sig: signal.signal(sig, _raise_shutdown) for sig in (signal.SIGINT, signal.SIGTERM)}
    from mediaplane.devcluster.cluster import DEFAULT_API_PORT

    port = os.environ.get("MEDIAPLANE_DEV_API_PORT", "")
    cluster = DevCluster(state, api_port=int(port) if port.isdigit() else DEFAULT_API_PORT,
                         node=node)
    restarts = _Restarts(cluster, state)
    signal.signal(signal.SIGUSR1, restarts.wake)
    code = 0
    try:
        cluster.start()
        for hook in ON_READY:
            hook(cluster)
        print(exports(cluster.env()))
        print("ready", flush=True)
        ready_path.write_text(f"{os.getpid()}\n")
        if demo:
            from mediaplane.devcluster import demo as embedded_demo

            try:
                embedded_demo.run(cluster.env())
            except Exception as err:  # the cluster stays useful without the demo
                print(f"demo failed: {err}", file=sys.stderr)
            print("still running; Ctrl-C stops everything", flush=True)
        while True:
            time.sleep(0.5)
            restarts.serve_requests()
            if not restarts.revive_dead():
                code = 1
                break
    except _Shutdown:
        pass
    except Exception as err:
        print(f"dev up failed: {err}", file=sys.stderr)
        code = 1
    finally:
        # Stopping is bounded; a second Ctrl-C must not leave it half done.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        (state / STOPPING).write_text(f"{os.getpid()}\n")
        ready_path.unlink(missing_ok=True)
        cluster.stop()
        if _read_pid(state) == os.getpid():
            pid_path.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        (state / STOPPING).unlink(missing_ok=True)
    print("stopped", file=sys.stderr)
    return code


def _up_detached(state: Path, node: str = "process") -> int:
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "supervisor.log"
    ready_path = state / "ready"
    ready_path.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "mediaplane.cli", "dev", "up", "--no-demo",
            "--state-dir", str(state), "--node", node]
    with log_path.open("ab") as out:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (state / "pid").write_text(f"{child.pid}\n")
    print(
        f"starting the dev cluster in the background (pid {child.pid}, log {log_path})",
        file=sys.stderr,
    )
    while not ready_path.exists():
        if child.poll() is not None:
            from mediaplane.devcluster.processes import tail

            print(f"dev up failed (exit {child.returncode}); {log_path}:", file=sys.stderr)
            print(tail(log_path, 40), file=sys.stderr)
            return 1
        time.sleep(0.5)
    env = read_env(state)
    if env is None:
        print("the dev cluster stopped right after starting; see " + str(log_path), file=sys.stderr)
        return 1
    print(exports(env))
    return 0


@dev.command("down")
def down(state_dir: StateDirOption = None) -> None:
    """Stop an environment started with `dev up`."""
    raise typer.Exit(cmd_down(_state_dir(state_dir)))


def cmd_down(state: Path) -> int:
    pid = _read_pid(state)
    if pid is None or not _is_supervisor(pid):
        (state / "pid").unlink(missing_ok=True)
        if is_running(state):
            print(
                f"a dev cluster holds {state} but was not started by `dev up`; "
                "stop it where it runs",
                file=sys.stderr,
            )
            return 1
        print("no dev cluster running", file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while _is_supervisor(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _is_supervisor(pid):
        # Its children die with it (PR_SET_PDEATHSIG).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        print(f"supervisor {pid} did not stop in time; killed", file=sys.stderr)
    (state / "pid").unlink(missing_ok=True)
    (state / "ready").unlink(missing_ok=True)
    print("stopped", file=sys.stderr)
    return 0


@dev.command("restart")
def restart(
    component: Annotated[str, typer.Argument(help="etcd, kube-apiserver, "
                                             "kube-controller-manager, nodeagent, seaweedfs, "
                                             "operator or api")],
    state_dir: StateDirOption = None,
) -> None:
    """Restart one component of the running environment (the others keep running)."""
    raise typer.Exit(cmd_restart(_state_dir(state_dir), component))


def cmd_restart(state: Path, component: str) -> int:
    pid = _read_pid(state)
    if pid is None or not _is_supervisor(pid) or not (state / "ready").exists():
        print(f"no dev cluster started with `dev up` is running in {state}", file=sys.stderr)
        return 1
    requests = state / REQUESTS_DIR
    requests.mkdir(exist_ok=True)
    name = component
    done = requests / f"{name}.done"
    done.unlink(missing_ok=True)
    (requests / f"{name}.request").write_text(f"{os.getpid()}\n")
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + RESTART_TIMEOUT
    while not done.exists():
        if time.monotonic() > deadline or not _is_supervisor(pid):
            print(f"the supervisor did not restart {name} in time", file=sys.stderr)
            return 1
        time.sleep(0.2)
    outcome = done.read_text().strip()
    done.unlink(missing_ok=True)
    print(f"{name}: {outcome}", file=sys.stderr)
    return 0 if outcome == "restarted" else 1


@dev.command("env")
def env_command(state_dir: StateDirOption = None) -> None:
    """Print `export` lines for the running environment (KUBECONFIG, S3, the API, PATH);
    the media verbs read the same state to find the API."""
    raise typer.Exit(cmd_env(_state_dir(state_dir)))


def cmd_env(state: Path) -> int:
    env = read_env(state)
    if env is None:
        print(
            f"no dev cluster is up in {state}; start one with `mediaplane dev up`", file=sys.stderr
        )
        return 1
    print(exports(env))
    return 0


@dev.command("logs")
def logs_command(
    pod: Annotated[str, typer.Argument(metavar="NAMESPACE/POD", help="A pod that ran on the "
                                       "dev node.")],
    container: Annotated[str | None, typer.Option("--container", "-c")] = None,
    state_dir: StateDirOption = None,
) -> None:
    """Print a pod's container log."""
    raise typer.Exit(cmd_logs(_state_dir(state_dir), pod, container))


def cmd_logs(state: Path, pod_ref: str, container: str | None) -> int:
    namespace, _, pod = pod_ref.partition("/")
    if not pod:
        print("expected NAMESPACE/POD", file=sys.stderr)
        return 2
    env = read_env(state)
    if env is not None and env.get("MEDIAPLANE_DEV_NODE") == "containers":
        # A real node keeps container logs itself: ask for them the usual way.
        argv = ["kubectl", "logs", "-n", namespace, pod]
        argv += ["-c", container] if container else []
        return subprocess.run(argv, env={**os.environ, **env}, check=False).returncode
    pod_dir = state / "pods" / namespace / pod
    if not pod_dir.is_dir():
        print(f"no pod {namespace}/{pod} has run on the dev node ({pod_dir})", file=sys.stderr)
        return 1
    logs = sorted(p.stem for p in pod_dir.glob("*.log"))
    if container is None:
        if len(logs) != 1:
            print(
                f"pod has several containers, choose one with -c: {', '.join(logs)}",
                file=sys.stderr,
            )
            return 1
        container = logs[0]
    path = pod_dir / f"{container}.log"
    if not path.exists():
        print(f"no log for container {container!r}; containers: {', '.join(logs)}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(path.read_bytes())
    sys.stdout.flush()
    return 0


def _running_env(state: Path) -> Mapping[str, str] | None:
    env = read_env(state)
    if env is None:
        print("no dev cluster is running (start one with `mediaplane dev up`)", file=sys.stderr)
    return env


@dev.command("put")
def put(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    key: Annotated[str, typer.Argument(help="Object key, e.g. "
                                       "tenants/demo/assets/<asset id>/source.")],
    state_dir: StateDirOption = None,
) -> None:
    """Upload a file to the dev bucket (a source for a MediaAsset applied with kubectl)."""
    env = _running_env(_state_dir(state_dir))
    if env is None:
        raise typer.Exit(1)
    from mediaplane.core.storage import Storage

    storage = Storage.from_env(env)
    storage.client.upload_file(str(file), storage.bucket, key)
    print(f"s3://{storage.bucket}/{key} ({file.stat().st_size} bytes)")


@dev.command("manifest")
def manifest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: Annotated[str, typer.Option(help="The namespace.")],
) -> None:
    """Print a MediaAsset manifest for a file, and its `dev put` command."""
    raise typer.Exit(cmd_manifest(file, tenant))


def cmd_manifest(file: Path, tenant: str) -> int:
    import hashlib
    import mimetypes

    import yaml

    from mediaplane.core import names
    from mediaplane.core.mimes import infer_kind
    from mediaplane.core.resources import MediaAsset

    mime = mimetypes.guess_type(file.name)[0] or ""
    kind = infer_kind(mime)
    if kind is None:
        print(f"cannot tell the media kind of {file.name} ({mime or 'unknown type'})",
              file=sys.stderr)
        return 2
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    asset = MediaAsset.new(tenant, names.new_asset_id(), kind=kind, mime=mime,
                           sha256=digest.hexdigest(), size_bytes=file.stat().st_size,
                           filename=file.name)
    key = asset.spec.source.key
    print(f"# upload first: mediaplane dev put {shlex.quote(str(file))} {key}")
    print(yaml.safe_dump(asset.to_body(), sort_keys=False), end="")
    return 0
