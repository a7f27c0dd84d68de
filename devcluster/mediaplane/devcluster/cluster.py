"""The dev cluster: a real control plane, a local node agent and S3, as local processes.

Nothing is a mock: etcd, kube-apiserver and kube-controller-manager are the upstream
binaries (built by `binaries`), the Job controller really retries and completes Jobs,
SeaweedFS really checks SigV4. What is local is the node: see `nodeagent`.

    with DevCluster(Path("/tmp/dev")) as cluster:
        env = cluster.env()          # KUBECONFIG, MEDIAPLANE_S3_*, AWS_*, PATH, ...
        op = cluster.spawn("operator", ["kopf", "run", ...])   # stopped with the cluster

State persists in the state dir between starts (etcd data, S3 data, keys, ports when
still free): a stopped cluster comes back with its objects, and pods that were running
are failed by the node agent (NodeRestart) for their Jobs to retry. Delete the dir for
a blank cluster. One cluster per state dir at a time (a lock file enforces it).

`DevCluster(dir, node="containers")` runs a real node instead of the node agent: the
kubelet, containerd and runc run the pods' images (`realnode.node`); the API server and
S3 then listen on the host's end of the node link instead of 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
import ssl
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, ClassVar

import httpx

from mediaplane.devcluster import crds, kubeconfig, seaweed
from mediaplane.devcluster.binaries import Binaries, ensure_binaries
from mediaplane.devcluster.certs import Pki, ensure_pki
from mediaplane.devcluster.nodeagent import NODE_NAME
from mediaplane.devcluster.nodeagent.orphans import kill_orphans
from mediaplane.devcluster.ports import LOOPBACK, free_ports
from mediaplane.devcluster.processes import ManagedProcess, spawn, stop_all, wait_until
from mediaplane.devcluster.seaweed import S3Credentials, SeaweedPorts

if TYPE_CHECKING:
    from mediaplane.devcluster.realnode.node import ContainerNode

log = logging.getLogger(__name__)

NODE_MODES = ("process", "containers")

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ttl-after-finished-controller",
    # Publishes kube-root-ca.crt, which the ServiceAccount admission plugin's projected
    # volume (added to every pod) refers to. Pod GC and node lifecycle stay off: with no
    # kubelet they would delete or evict every pod.
    "root-ca-certificate-publisher-controller",
)
APISERVER_READY_TIMEOUT = 90.0
READY_TIMEOUT = 60.0
DEFAULT_API_PORT = 8080


def ensure_api_secrets(path: Path) -> dict[str, str]:
    """The dev API's JWT secret and stream-signing key: made once per state dir (0600) so
    tokens minted by `mediaplane token` survive a restart of the dev cluster."""
    if path.exists():
        data = json.loads(path.read_text())
    else:
        data = {"MEDIAPLANE_API_JWT_SECRET": secrets.token_urlsafe(32),
                "MEDIAPLANE_API_STREAM_SIGNING_KEY": secrets.token_urlsafe(48)}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
    return {str(k): str(v) for k, v in data.items()}


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    seaweed: SeaweedPorts

    COUNT: ClassVar[int] = 4 + SeaweedPorts.COUNT

    @classmethod
    def pick(cls) -> Ports:
        ports = free_ports(cls.COUNT)
        return cls(
            etcd_client=ports[0],
            etcd_peer=ports[1],
            apiserver=ports[2],
            controller_manager=ports[3],
            seaweed=SeaweedPorts.from_list(ports[4:]),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ports:
        return cls(
            etcd_client=data["etcd_client"],
            etcd_peer=data["etcd_peer"],
            apiserver=data["apiserver"],
            controller_manager=data["controller_manager"],
            seaweed=SeaweedPorts(**data["seaweed"]),
        )

    def all(self) -> list[int]:
        seaweed_ports = asdict(self.seaweed).values()
        return [
            self.etcd_client,
            self.etcd_peer,
            self.apiserver,
            self.controller_manager,
            *seaweed_ports,
        ]


def _all_free(ports: Sequence[int]) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


# Every request at Metadata level (verb, object, user, times; no bodies), once it is
# answered: enough to put the control plane's steps on a timeline.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
"""


class DevCluster:
    """Start with `start()` (blocks until all is ready) or `with DevCluster(dir) as c:`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        crds_dir: Path | None = None,
        install_crds: bool = True,
        bucket: str = seaweed.BUCKET,
        api_port: int = DEFAULT_API_PORT,
        node: str = "process",
        audit: bool = False,
    ) -> None:
        """`audit`: the API server logs every request's verb, object, user and times to
        `audit_log_path` (for benchmarks that trace the control plane's steps)."""
        if node not in NODE_MODES:
            raise ValueError(f"node must be one of {NODE_MODES}, not {node!r}")
        self.state_dir = Path(state_dir).resolve()
        self.crds_dir = (crds_dir or crds.default_crds_dir()) if install_crds else None
        self.bucket = bucket
        self.api_port = api_port
        self.audit = audit
        self._api_secrets: dict[str, str] | None = None
        self.timings: dict[str, float] = {}
        self._procs: dict[str, ManagedProcess] = {}
        self._extra: list[ManagedProcess] = []
        self._lock: IO[str] | None = None
        self._ports: Ports | None = None
        self._pki: Pki | None = None
        self._s3: S3Credentials | None = None
        self._bins: Binaries | None = None
        self.node_mode = node
        self.node: ContainerNode | None = None
        # Where the API server and S3 listen: pods of a real node cannot reach 127.0.0.1.
        self.host = LOOPBACK
        if node == "containers":
            from mediaplane.devcluster.realnode import network
            from mediaplane.devcluster.realnode.node import ContainerNode

            self.node = ContainerNode(self)
            self.host = network.HOST_IP

    # --- layout ---------------------------------------------------------------------------

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def audit_log_path(self) -> Path:
        return self.logs_dir / "audit.jsonl"

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def env_path(self) -> Path:
        return self.state_dir / "env.json"

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self._require(self._ports).apiserver}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self._require(self._ports).seaweed.s3}"

    @property
    def pki(self) -> Pki:
        pki: Pki = self._require(self._pki)
        return pki

    @property
    def binaries(self) -> Binaries:
        bins: Binaries = self._require(self._bins)
        return bins

    @property
    def node_name(self) -> str:
        if self.node is not None:
            from mediaplane.devcluster.realnode.components import NODE_NAME as REAL_NODE

            return REAL_NODE
        return NODE_NAME

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        node = self.node.processes if self.node is not None else {}
        return {**self._procs, **node, **{p.name: p for p in self._extra}}

    @staticmethod
    def _require(value: Any) -> Any:
        if value is None:
            raise RuntimeError("the dev cluster is not started")
        return value

    # --- public API -----------------------------------------------------------------------

    def __enter__(self) -> DevCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """What a client of the cluster needs: kubeconfig, S3, credentials, our kubectl, helm."""
        bins: Binaries = self._require(self._bins)
        creds: S3Credentials = self._require(self._s3)
        return {
            "KUBECONFIG": str(self.kubeconfig_path),
            "MEDIAPLANE_S3_ENDPOINT": self.s3_endpoint,
            "MEDIAPLANE_S3_BUCKET": self.bucket,
            "MEDIAPLANE_S3_REGION": seaweed.REGION,
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            "MEDIAPLANE_DEV_DIR": str(self.state_dir),
            "MEDIAPLANE_DEV_NODE": self.node_mode,
            # The REST API (started by `dev up` and the tests) and its dev-only secrets.
            "MEDIAPLANE_API": self.api_url,
            "MEDIAPLANE_API_PUBLIC_URL": self.api_url,
            **self._require(self._api_secrets),
            # kubectl and helm, then this virtualenv (`mediaplane` itself), then the rest.
            "PATH": os.pathsep.join(
                [*map(str, bins.client_bin_dirs), str(Path(sys.executable).parent),
                 os.environ.get("PATH", os.defpath)]),
        }

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        stop_timeout: float = 10.0,
    ) -> ManagedProcess:
        """Start a process tied to the cluster (operator, API...): logs/NAME.log, stopped first.

        `env` defaults to this process's environment plus `env()`.
        """
        full_env = dict(env) if env is not None else {**os.environ, **self.env()}
        proc = spawn(
            name,
            argv,
            full_env,
            log_path=self.logs_dir / f"{name}.log",
            stop_timeout=stop_timeout,
        )
        self._extra.append(proc)
        return proc

    def dead_processes(self) -> list[ManagedProcess]:
        return [p for p in self.processes.values() if not p.alive()]

    # --- one component at a time (supervisor, fault tests) ---------------------------------

    def restart(self, name: str, *, wait: bool = True) -> ManagedProcess:
        """Stops one component (SIGTERM, then SIGKILL) and starts it again with the same
        command, environment and log; with `wait`, returns once it serves again. The
        others keep running: this is how the supervisor revives a component that died and
        how the fault tests restart the API server, etcd, S3 or the node agent mid-batch."""
        old = self.process(name)
        if name == "seaweedfs" and self._ports is not None:
            old.stop()
            seaweed.remove_stray_sockets(self._ports.seaweed)
        new = old.restarted()
        if name in self._procs:
            self._procs[name] = new
        else:
            self._extra[self._extra.index(old)] = new
        if wait:
            self.wait_serving(name)
        return new

    def pause(self, name: str) -> None:
        """Freezes one component (SIGSTOP): its clients connect and get no answer."""
        self.process(name).pause()

    def resume(self, name: str) -> None:
        self.process(name).resume()

    def process(self, name: str) -> ManagedProcess:
        found = self.processes.get(name)
        if found is None:
            raise KeyError(f"no component {name!r}; components: {', '.join(self.processes)}")
        return found

    def wait_serving(self, name: str, timeout: float = APISERVER_READY_TIMEOUT) -> None:
        """Waits until the component answers what its clients ask of it."""
        proc = self.process(name)
        ports: Ports = self._require(self._ports)
        check: Callable[[], bool]
        if name == "etcd":
            url = f"http://{LOOPBACK}:{ports.etcd_client}/health"
            check = lambda: _get(url).status_code == 200  # noqa: E731
        elif name == "kube-apiserver":
            def check() -> bool:
                with self._api_client() as api:
                    return api.get("/readyz").status_code == 200
        elif name == "seaweedfs":
            s3 = seaweed.client(self.s3_endpoint, self._require(self._s3), timeout=5.0)
            check = lambda: seaweed.ensure_bucket(s3, self.bucket)  # noqa: E731
        elif name == "nodeagent":
            def check() -> bool:
                with self._api_client() as api:
                    return _node_ready(api.get(f"/api/v1/nodes/{NODE_NAME}"))
        elif name == "api":
            check = lambda: _get(f"{self.api_url}/healthz").status_code == 200  # noqa: E731
        else:
            check = proc.alive
        wait_until(check, what=f"{name} serving again", timeout=timeout, watch=[proc],
                   interval=0.25)

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything this cluster started; idempotent, bounded in time."""
        for extra in reversed(self._extra):
            extra.stop()
        # SeaweedFS takes its time (it is killed after its stop timeout), so it is asked
        # first and waited for last. kube-apiserver stops in about a second while etcd is
        # up, but lingers for many once etcd is gone: hence the order. The node agent does
        # not report pods on its way out, so it needs no API server.
        if self.node is not None:
            # Pods are deleted through the API server before the node goes, so it stays up
            # until then; the controllers stop first, so nothing comes back.
            kcm = [self._procs[n] for n in ("kube-controller-manager",) if n in self._procs]
            self.node.stop(controllers=kcm)
        started = time.monotonic()
        for name in ("nodeagent", "kube-controller-manager", "seaweedfs"):
            if name in self._procs:
                self._procs[name].terminate()
        for name in ("nodeagent", "kube-controller-manager", "kube-apiserver", "etcd"):
            if name in self._procs:
                self._procs[name].stop()
        weed = self._procs.get("seaweedfs")
        if weed is not None:
            weed.stop(timeout=max(0.0, weed.stop_timeout - (time.monotonic() - started)))
        stop_all(list(self._procs.values()))  # anything else, and idempotent for the rest
        with contextlib.suppress(OSError):
            kill_orphans(self.pods_dir)
        if self._ports is not None:
            seaweed.remove_stray_sockets(self._ports.seaweed)
        if self._procs or self._extra:
            self.env_path.unlink(missing_ok=True)
        self._procs.clear()
        self._extra.clear()
        self._release_lock()

    # --- start, step by step --------------------------------------------------------------

    def _step(self, name: str, started: float) -> None:
        self.timings[name] = time.monotonic() - started
        log.info("%s ready after %.1fs", name, self.timings[name])

    def _start(self) -> None:
        t0 = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self.env_path.unlink(missing_ok=True)
        self._bins = ensure_binaries(log=log.info)
        if self.node is not None:
            self.node.prepare()
        self._step("binaries", t0)
        self._pki = ensure_pki(self.state_dir / "pki")
        self._ports = self._choose_ports()
        kubeconfig.write(
            self.kubeconfig_path,
            self.server,
            self._pki.ca_cert.read_bytes(),
            self._pki.admin_token(),
        )
        self._s3, s3_config = seaweed.ensure_credentials(self.state_dir / "s3")
        self._api_secrets = ensure_api_secrets(self.state_dir / "api-secrets.json")
        self._step("certs", t0)

        etcd = self._run("etcd", self._etcd_argv())
        weed_argv = seaweed.server_argv(
            seaweed.weed_binary(),
            self.state_dir / "seaweedfs",
            self._ports.seaweed,
            s3_config,
            self.state_dir / "sockets",
        )
        if self.host != LOOPBACK:
            weed_argv = [a.replace(f"={LOOPBACK}", f"={self.host}") if a.startswith("-ip")
                         else a for a in weed_argv]
        weed = self._run("seaweedfs", weed_argv, stop_timeout=5.0)
        etcd_url = f"http://{LOOPBACK}:{self._ports.etcd_client}/health"
        wait_until(
            lambda: _get(etcd_url).status_code == 200,
            what="etcd",
            timeout=READY_TIMEOUT,
            watch=[etcd],
        )
        self._step("etcd", t0)

        apiserver = self._run("kube-apiserver", self._apiserver_argv())
        with self._api_client() as api:
            wait_until(
                lambda: api.get("/readyz").status_code == 200,
                what="kube-apiserver /readyz",
                timeout=APISERVER_READY_TIMEOUT,
                watch=[etcd, apiserver],
            )
            self._step("kube-apiserver", t0)

            kcm = self._run("kube-controller-manager", self._controller_manager_argv())
            if self.node is None:
                agent = self._run(
                    "nodeagent", self._nodeagent_argv(), env=self._nodeagent_env(),
                    stop_timeout=15.0
                )
            crds.apply(self._bins.kubectl, self.kubeconfig_path, self.crds_dir)
            self._step("crds", t0)

            kcm_health = f"https://{LOOPBACK}:{self._ports.controller_manager}/healthz"
            wait_until(
                lambda: (
                    api.get(kcm_health).status_code == 200
                    and api.get("/api/v1/namespaces/default/serviceaccounts/default").status_code
                    == 200
                ),
                what="kube-controller-manager (default service account)",
                timeout=READY_TIMEOUT,
                watch=[apiserver, kcm],
            )
            self._step("kube-controller-manager", t0)
            if self.node is not None:
                self.node.start(api)
                self._step("node", t0)
            else:
                wait_until(
                    lambda: _node_ready(api.get(f"/api/v1/nodes/{NODE_NAME}")),
                    what=f"node {NODE_NAME} Ready",
                    timeout=READY_TIMEOUT,
                    watch=[apiserver, agent],
                )
                self._step("nodeagent", t0)

        s3 = seaweed.client(self.s3_endpoint, self._s3, timeout=5.0)
        wait_until(
            lambda: seaweed.ensure_bucket(s3, self.bucket),
            what="SeaweedFS S3 and bucket",
            timeout=READY_TIMEOUT,
            watch=[weed],
            interval=0.5,
        )
        seaweed.ensure_cors(s3, self.bucket)
        self._step("seaweedfs", t0)
        _write_json(self.env_path, self.env())
        self._step("total", t0)

    def _choose_ports(self) -> Ports:
        """The previous start's ports when still free: copied kubeconfigs keep working."""
        saved = self.state_dir / "ports.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            previous = Ports.from_json(json.loads(saved.read_text()))
            if _all_free(previous.all()):
                return previous
        ports = Ports.pick()
        _write_json(saved, {**asdict(ports)})
        return ports

    def _run(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stop_timeout: float = 10.0,
    ) -> ManagedProcess:
        proc = spawn(
            name, argv, env, log_path=self.logs_dir / f"{name}.log", stop_timeout=stop_timeout
        )
        self._procs[name] = proc
        return proc

    def _api_client(self) -> httpx.Client:
        pki: Pki = self._require(self._pki)
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        return httpx.Client(
            base_url=self.server,
            verify=context,
            headers={"Authorization": f"Bearer {pki.admin_token()}"},
            timeout=5.0,
        )

    # --- command lines --------------------------------------------------------------------

    def _etcd_argv(self) -> list[str]:
        ports: Ports = self._require(self._ports)
        bins: Binaries = self._require(self._bins)
        client = f"http://{LOOPBACK}:{ports.etcd_client}"
        peer = f"http://{LOOPBACK}:{ports.etcd_peer}"
        return [
            str(bins.etcd),
            "--name=mediaplane-dev",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=mediaplane-dev={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_argv(self) -> list[str]:
        ports: Ports = self._require(self._ports)
        pki: Pki = self._require(self._pki)
        bins: Binaries = self._require(self._bins)
        argv = [
            str(bins.kube_apiserver),
            f"--etcd-servers=http://{LOOPBACK}:{ports.etcd_client}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={ports.apiserver}",
            f"--cert-dir={self.state_dir / 'apiserver'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={pki.token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]
        if self.audit:
            policy = self.state_dir / "apiserver" / "audit-policy.yaml"
            policy.parent.mkdir(parents=True, exist_ok=True)
            policy.write_text(AUDIT_POLICY)
            argv += [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log_path}",
                     "--audit-log-mode=blocking"]
        if self.node is not None:
            from mediaplane.devcluster.realnode.node import override_flags

            argv = override_flags(argv, self.node.apiserver_overrides(pki))
        return argv

    def _controller_manager_argv(self) -> list[str]:
        ports: Ports = self._require(self._ports)
        pki: Pki = self._require(self._pki)
        bins: Binaries = self._require(self._bins)
        return [
            str(bins.kube_controller_manager),
            f"--kubeconfig={self.kubeconfig_path}",
            f"--authentication-kubeconfig={self.kubeconfig_path}",
            f"--authorization-kubeconfig={self.kubeconfig_path}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={ports.controller_manager}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            "--leader-elect=false",
            f"--controllers={','.join(self._controllers())}",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            "--use-service-account-credentials=false",
            "--profiling=false",
        ]

    def _controllers(self) -> list[str]:
        return self.node.controllers(CONTROLLERS) if self.node is not None else list(CONTROLLERS)

    def _nodeagent_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mediaplane.devcluster.nodeagent",
            f"--kubeconfig={self.kubeconfig_path}",
            f"--state-dir={self.state_dir}",
            f"--node-name={NODE_NAME}",
        ]

    def _nodeagent_env(self) -> dict[str, str]:
        """The agent's PATH is what pods get: this interpreter's bin dir (console scripts
        such as mediaplane-worker) and our kubectl come first."""
        bins: Binaries = self._require(self._bins)
        path = [
            str(Path(sys.executable).parent),
            str(bins.kube_bin_dir),
            os.environ.get("PATH", os.defpath),
        ]
        return {**os.environ, "PATH": os.pathsep.join(path), "PYTHONUNBUFFERED": "1"}

    # --- one cluster per state dir ----------------------------------------------------------

    def _acquire_lock(self) -> None:
        if self._lock is not None:
            return
        fh = (self.state_dir / "lock").open("w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RuntimeError(f"a dev cluster is already running in {self.state_dir}") from None
        self._lock = fh

    def _release_lock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=2.0)


def _node_ready(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    conditions = response.json().get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    tmp.replace(path)
