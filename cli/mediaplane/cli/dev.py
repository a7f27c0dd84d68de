"""`mediaplane dev ...`: the local dev cluster (control plane, node agent, S3).

`dev up` is a supervisor: it owns every process of the cluster (they die with it) and
stops them in order on SIGINT/SIGTERM. `--detach` runs that same supervisor in the
background, so `dev down` is just "SIGTERM the supervisor and wait".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from mediaplane.devcluster.state import default_state_dir, is_running, read_env

if TYPE_CHECKING:
    from mediaplane.cli.main import Subparsers
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


class _Shutdown(BaseException):
    """Raised from the signal handler to unwind `dev up` through its cleanup."""


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    dev = subparsers.add_parser("dev", help="run the local dev cluster")
    commands = dev.add_subparsers(dest="dev_command", required=True, metavar="COMMAND")

    def add(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--state-dir",
            type=Path,
            default=None,
            help="default: $MEDIAPLANE_DEV_DIR or ${XDG_STATE_HOME:-~/.local/state}/mediaplane/dev",
        )
        parser.set_defaults(func=func)
        return parser

    up = add("up", "start the cluster; stays in the foreground unless --detach", cmd_up)
    up.add_argument(
        "--detach", action="store_true", help="run in the background, return when ready"
    )
    up.add_argument(
        "--no-demo", action="store_true",
        help="do not run the embedded demo (the examples, applied and transcoded) once ready",
    )
    up.add_argument(
        "--node", choices=("process", "containers"), default="process",
        help="process (default): the node agent runs pods' commands as local processes; "
        "containers: a real node (kubelet, containerd, runc) runs the images, built here "
        "with BuildKit (needs root)",
    )
    put = add("put", "upload a file to the dev bucket (a source for a MediaAsset)", cmd_put)
    put.add_argument("file", type=Path)
    put.add_argument("key", help="object key, e.g. tenants/demo/assets/<asset id>/source")
    manifest = add("manifest", "print a MediaAsset manifest for a file, and its `dev put`",
                   cmd_manifest)
    manifest.add_argument("file", type=Path)
    manifest.add_argument("--tenant", required=True, help="the namespace")
    add("down", "stop a cluster started with `dev up`", cmd_down)
    add("env", "print `export` lines for the running cluster", cmd_env)
    logs = add("logs", "print a pod's container log", cmd_logs)
    logs.add_argument("pod", metavar="NAMESPACE/POD")
    logs.add_argument("-c", "--container", default=None)


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or default_state_dir()).resolve()


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


def cmd_up(args: argparse.Namespace) -> int:
    state = _state_dir(args)
    state.mkdir(parents=True, exist_ok=True)
    if is_running(state):
        env = read_env(state)
        print(f"a dev cluster is already running in {state}", file=sys.stderr)
        if env is not None:
            print(exports(env))
        return 0 if args.detach else 1
    demo = not (args.no_demo or args.detach)
    node = str(getattr(args, "node", "process"))
    return _up_detached(state, node) if args.detach else _up_foreground(state, demo, node)


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    raise _Shutdown(signum)


def _up_foreground(state: Path, demo: bool, node: str = "process") -> int:
    from mediaplane.devcluster.cluster import DevCluster

    pid_path, ready_path = state / "pid", state / "ready"
    ready_path.unlink(missing_ok=True)
    pid_path.write_text(f"{os.getpid()}\n")
    previous = {sig: signal.signal(sig, _raise_shutdown) for sig in (signal.SIGINT, signal.SIGTERM)}
    cluster = DevCluster(state, node=node)
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
            time.sleep(1)
            dead = cluster.dead_processes()
            if dead:
                for proc in dead:
                    print(
                        f"{proc.name} exited with {proc.returncode}; stopping. "
                        f"Log {proc.log_path}:\n{proc.log_tail(20)}",
                        file=sys.stderr,
                    )
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
        cluster.stop()
        ready_path.unlink(missing_ok=True)
        if _read_pid(state) == os.getpid():
            pid_path.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped", file=sys.stderr)
    return code


def _up_detached(state: Path, node: str = "process") -> int:
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "supervisor.log"
    ready_path = state / "ready"
    ready_path.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "mediaplane.cli.main", "dev", "up", "--no-demo",
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


def cmd_down(args: argparse.Namespace) -> int:
    state = _state_dir(args)
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


def cmd_env(args: argparse.Namespace) -> int:
    state = _state_dir(args)
    env = read_env(state)
    if env is None:
        print(
            f"no dev cluster is up in {state}; start one with `mediaplane dev up`", file=sys.stderr
        )
        return 1
    print(exports(env))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    state = _state_dir(args)
    namespace, _, pod = str(args.pod).partition("/")
    if not pod:
        print("expected NAMESPACE/POD", file=sys.stderr)
        return 2
    env = read_env(state)
    if env is not None and env.get("MEDIAPLANE_DEV_NODE") == "containers":
        # A real node keeps container logs itself: ask for them the usual way.
        argv = ["kubectl", "logs", "-n", namespace, pod]
        argv += ["-c", args.container] if args.container else []
        return subprocess.run(argv, env={**os.environ, **env}, check=False).returncode
    pod_dir = state / "pods" / namespace / pod
    if not pod_dir.is_dir():
        print(f"no pod {namespace}/{pod} has run on the dev node ({pod_dir})", file=sys.stderr)
        return 1
    logs = sorted(p.stem for p in pod_dir.glob("*.log"))
    container = args.container
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


def _running_env(args: argparse.Namespace) -> Mapping[str, str] | None:
    env = read_env(_state_dir(args))
    if env is None:
        print("no dev cluster is running (start one with `mediaplane dev up`)", file=sys.stderr)
    return env


def cmd_put(args: argparse.Namespace) -> int:
    env = _running_env(args)
    if env is None:
        return 1
    from mediaplane.core.storage import Storage

    storage = Storage.from_env(env)
    storage.client.upload_file(str(args.file), storage.bucket, args.key)
    print(f"s3://{storage.bucket}/{args.key} ({args.file.stat().st_size} bytes)")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    import hashlib
    import mimetypes

    import yaml

    from mediaplane.core import names
    from mediaplane.core.mimes import infer_kind
    from mediaplane.core.resources import MediaAsset

    mime = mimetypes.guess_type(args.file.name)[0] or ""
    kind = infer_kind(mime)
    if kind is None:
        print(f"cannot tell the media kind of {args.file.name} ({mime or 'unknown type'})",
              file=sys.stderr)
        return 2
    digest = hashlib.sha256()
    with args.file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    asset = MediaAsset.new(args.tenant, names.new_asset_id(), kind=kind, mime=mime,
                           sha256=digest.hexdigest(), size_bytes=args.file.stat().st_size,
                           filename=args.file.name)
    key = asset.spec.source.key
    print(f"# upload first: mediaplane dev put {shlex.quote(str(args.file))} {key}")
    print(yaml.safe_dump(asset.to_body(), sort_keys=False), end="")
    return 0
