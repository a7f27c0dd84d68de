"""A real node for the dev cluster: containerd and runc run the images, the kubelet runs
the pods, kube-proxy makes Services work, CoreDNS names them, a scheduler places pods.

`DevCluster(state_dir, node="containers")` owns one of these. It changes the control plane
as a cluster with nodes has it (the API server reachable from pods, Node authorization,
the Deployment, ReplicaSet, endpoint, disruption and pod-GC controllers) and runs:

| process | where | what for |
| --- | --- | --- |
| registry | host, 10.203.0.1 | images pulled by the node (storage in the cache) |
| containerd | node netns | CRI, runc, CNI bridge; config/root/state/socket under the state dir |
| kubelet | node netns | pods; cgroup v1 with cgroupfs (`failCgroupV1: false`) |
| kube-proxy | node netns | Services (iptables mode, rules inside the node's namespace) |
| CoreDNS | host, 10.203.0.1:53 | cluster.local for pods |
| kube-scheduler | host | binds pods to the node |

`stop()` undoes all of it: pods deleted through the API so the kubelet tears them down
(volumes unmounted, sandboxes' networks removed), then every process stopped, whatever
is left killed and unmounted, the network namespace and cgroups removed, and the kernel
settings the kubelet changes put back. The test `tests/realnode` checks /proc/mounts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mediaplane.devcluster import certs, kubeconfig
from mediaplane.devcluster.processes import ManagedProcess, spawn, wait_until
from mediaplane.devcluster.realnode import (
    binaries,
    cgroups,
    components,
    containerd,
    images,
    mounts,
    network,
)
from mediaplane.devcluster.realnode.buildkit import BuildKit
from mediaplane.devcluster.realnode.images import BuiltImage

if TYPE_CHECKING:
    import httpx

    from mediaplane.devcluster.cluster import DevCluster

log = logging.getLogger(__name__)

# The controllers a cluster with a kubelet runs besides the dev cluster's own.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "disruption-controller",
    "pod-garbage-collector-controller",
    "node-lifecycle-controller",
)
NODE_USER = f"system:node:{components.NODE_NAME}"
PROXY_USER = "system:kube-proxy"
KUBELET_CLIENT = "apiserver-kubelet-client"
CONTAINER_LOGS = Path("/var/log/containers")
CNI_CACHE = Path("/var/lib/cni/results")
NODE_READY_TIMEOUT = 120.0
DRAIN_TIMEOUT = 60.0


def _free_port_on(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def override_flags(argv: Sequence[str], overrides: Mapping[str, str | None]) -> list[str]:
    """`argv` with each `--name=value` of `overrides` replaced (None: removed) or added."""
    out = []
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in overrides:
            continue
        out.append(arg)
    out += [f"{name}={value}" for name, value in overrides.items() if value is not None]
    return out


class ContainerNode:
    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.state_dir = cluster.state_dir
        self.containerd = containerd.Layout(self.state_dir)
        self.kubelet_dir = self.state_dir / "kubelet"
        self.node_dir = self.state_dir / "node"
        self.bins = binaries.node_binaries()
        self._lock = network.HostLock()
        self._record: network.HostRecord | None = None
        self._procs: dict[str, ManagedProcess] = {}
        self._registry_port: int | None = None
        self._images: dict[str, BuiltImage] = {}
        self._logs_dir_existed = CONTAINER_LOGS.exists()

    # --- addresses -------------------------------------------------------------------------

    @property
    def registry_host(self) -> str:
        if self._registry_port is None:
            raise RuntimeError("the node's registry is not started")
        return f"{network.HOST_IP}:{self._registry_port}"

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        return dict(self._procs)

    # --- before the control plane -----------------------------------------------------------

    def prepare(self) -> None:
        """Checks, binaries, the machine-wide lock, the network namespace and cgroups."""
        problems = binaries.check_host()
        if problems:
            raise RuntimeError("this machine cannot run a real node:\n  " + "\n  ".join(problems))
        self.bins = binaries.ensure_node_binaries(log=log.info)
        self._lock.acquire(self.state_dir)
        previous = network.HostRecord.load()
        if previous is not None:
            log.warning("cleaning up after a real node that did not stop (%s)",
                        previous.state_dir)
            _sweep(Path(previous.state_dir), previous.sysctls)
        network.delete()
        self._record = network.HostRecord(str(self.state_dir), network.save_kernel_sysctls())
        self._record.save()
        network.create()
        cgroups.create(components.CGROUP_ROOT)

    def apiserver_overrides(self, pki: certs.Pki) -> dict[str, str | None]:
        serving_cert, serving_key = certs.ensure_leaf(
            pki, "serving-node", "kube-apiserver",
            dns=certs.SERVING_DNS, ips=(*certs.SERVING_IPS, network.HOST_IP), server=True)
        client_cert, client_key = certs.ensure_leaf(
            pki, KUBELET_CLIENT, KUBELET_CLIENT, organizations=("system:masters",), client=True)
        certs.ensure_token(pki, NODE_USER, ("system:nodes",))
        certs.ensure_token(pki, PROXY_USER)
        return {
            "--bind-address": network.HOST_IP,
            "--advertise-address": network.HOST_IP,
            "--tls-cert-file": str(serving_cert),
            "--tls-private-key-file": str(serving_key),
            "--authorization-mode": "Node,RBAC",
            "--enable-admission-plugins": "NodeRestriction",
            "--endpoint-reconciler-type": "lease",
            "--kubelet-client-certificate": str(client_cert),
            "--kubelet-client-key": str(client_key),
            "--kubelet-preferred-address-types": "InternalIP",
            "--service-node-port-range": "30000-32767",
        }

    @staticmethod
    def controllers(base: Sequence[str]) -> list[str]:
        return [*base, *(c for c in CONTROLLERS if c not in base)]

    # --- after the API server is ready --------------------------------------------------------

    def start(self, api: httpx.Client) -> None:
        self.node_dir.mkdir(parents=True, exist_ok=True)
        self._registry_port = _free_port_on(network.HOST_IP)
        self._procs["registry"] = images.start_registry(
            self.registry_host, self.cluster.logs_dir / "registry.log")
        self._ensure_pause()
        sandbox = self._images["pause"].reference
        containerd.write_all(self.containerd, sandbox_image=sandbox,
                             ipam_dir=self.state_dir / "cni" / "networks",
                             cni_bin_dir=binaries.cni_plugin_dir() or Path("/usr/lib/cni"),
                             registry_host=self.registry_host,
                             registry_endpoint=f"http://{self.registry_host}")
        self._run("containerd", containerd.argv(self.containerd), stop_timeout=15.0)
        wait_until(lambda: containerd.ctr(self.containerd, "version").returncode == 0,
                   what="containerd", timeout=30.0, watch=[self._procs["containerd"]])
        self._start_kubelet()
        self._start_kube_proxy()
        self._start_coredns()
        kcfg = self.cluster.kubeconfig_path
        self._run("kube-scheduler", components.scheduler_argv(
            self.bins.kube_scheduler, kubeconfig=kcfg,
            port=_free_port_on("127.0.0.1")))
        wait_until(lambda: _node_ready(api), what=f"node {components.NODE_NAME} Ready",
                   timeout=NODE_READY_TIMEOUT, watch=list(self._procs.values()))

    def _run(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
             stop_timeout: float = 10.0) -> ManagedProcess:
        if env is None:
            env = {**os.environ, "PATH": binaries.sbin_path()}
        proc = spawn(name, argv, env, log_path=self.cluster.logs_dir / f"{name}.log",
                     stop_timeout=stop_timeout)
        self._procs[name] = proc
        return proc

    def _write_kubeconfig(self, name: str, token: str) -> Path:
        return kubeconfig.write(self.node_dir / f"{name}.kubeconfig", self.cluster.server,
                                self.cluster.pki.ca_cert.read_bytes(), token)

    def _start_kubelet(self) -> None:
        pki = self.cluster.pki
        serving_cert, serving_key = certs.ensure_leaf(
            pki, "kubelet-serving", components.NODE_NAME, dns=(components.NODE_NAME,),
            ips=(network.NODE_IP,), server=True)
        self.kubelet_dir.mkdir(parents=True, exist_ok=True)
        config = self.node_dir / "kubelet.yaml"
        config.write_text(yaml.safe_dump(components.kubelet_config(
            root_dir=self.kubelet_dir, runtime_endpoint=self.containerd.endpoint,
            client_ca=pki.ca_cert, serving_cert=serving_cert, serving_key=serving_key)))
        kcfg = self._write_kubeconfig("kubelet", certs.ensure_token(pki, NODE_USER,
                                                                   ("system:nodes",)))
        self._run("kubelet", components.kubelet_argv(
            self.bins.kubelet, config=config, kubeconfig=kcfg, root_dir=self.kubelet_dir),
            stop_timeout=20.0)

    def _start_kube_proxy(self) -> None:
        kcfg = self._write_kubeconfig("kube-proxy", certs.ensure_token(self.cluster.pki,
                                                                      PROXY_USER))
        config = self.node_dir / "kube-proxy.yaml"
        config.write_text(yaml.safe_dump(components.kube_proxy_config(kubeconfig=kcfg)))
        self._run("kube-proxy", components.kube_proxy_argv(self.bins.kube_proxy, config=config))

    def _start_coredns(self) -> None:
        corefile = self.node_dir / "Corefile"
        corefile.write_text(components.corefile(kubeconfig=self.cluster.kubeconfig_path))
        proc = self._run("coredns", components.coredns_argv(self.bins.coredns,
                                                            corefile_path=corefile))
        import httpx

        ready = f"http://{network.HOST_IP}:{components.DNS_READY_PORT}/ready"
        wait_until(lambda: httpx.get(ready, timeout=2.0).status_code == 200,
                   what="CoreDNS", timeout=60.0, watch=[proc])

    # --- images ------------------------------------------------------------------------------

    def _ensure_pause(self) -> None:
        from mediaplane.devcluster.realnode.registry import RegistryClient

        reference = f"{self.registry_host}/{images.PAUSE_REPOSITORY}:{binaries.PAUSE_VERSION}"
        found = RegistryClient(f"http://{self.registry_host}").manifest(
            images.PAUSE_REPOSITORY, binaries.PAUSE_VERSION)
        if found is not None:
            self._images["pause"] = BuiltImage("pause", reference,
                                               reference.rsplit(":", 1)[0] + "@" + found[0], 0.0)
            return
        with BuildKit(self.bins, [self.registry_host], log=log.info) as buildkit:
            self._images["pause"] = images.build_pause(buildkit, self.registry_host,
                                                       log=log.info)

    def build_images(self, *, project: bool = True, tag: str = images.DEFAULT_TAG
                     ) -> dict[str, BuiltImage]:
        """The project's images and the in-cluster SeaweedFS, built (or found in the
        BuildKit cache) and pushed to the node's registry; by target name."""
        with BuildKit(self.bins, [self.registry_host], log=log.info) as buildkit:
            self._images.update(images.build_node_images(buildkit, self.registry_host,
                                                         log=log.info))
            if project:
                for built in images.build_project(buildkit, self.registry_host, tag=tag,
                                                  log=log.info):
                    self._images[built.target] = built
        return dict(self._images)

    # --- stop --------------------------------------------------------------------------------

    def stop(self, controllers: Sequence[ManagedProcess] = ()) -> None:
        """Everything `prepare` and `start` did, undone; idempotent and bounded in time."""
        with contextlib.suppress(Exception):
            self._drain(controllers)
        for name in ("kube-scheduler", "kube-proxy", "kubelet", "coredns"):
            if name in self._procs:
                self._procs[name].stop()
        with contextlib.suppress(Exception):
            containerd.kill_tasks(self.containerd)
        if "containerd" in self._procs:
            self._procs["containerd"].stop()
        if "registry" in self._procs:
            self._procs["registry"].stop()
        self._procs.clear()
        sysctls = self._record.sysctls if self._record is not None else {}
        _sweep(self.state_dir, sysctls, logs_dir_existed=self._logs_dir_existed)
        network.HostRecord.clear()
        self._record = None
        self._lock.release()

    def _drain(self, controllers: Sequence[ManagedProcess]) -> None:
        """Nothing new scheduled or created, every pod deleted through the API: the kubelet
        then stops their containers, unmounts their volumes and removes their sandboxes'
        networks, as on any node. Bounded: what is left is killed by `_sweep`."""
        if "kube-scheduler" in self._procs:
            self._procs["kube-scheduler"].stop()
        for proc in controllers:
            proc.stop()
        kubelet = self._procs.get("kubelet")
        if kubelet is None or not kubelet.alive():
            return
        kubectl = [str(self.cluster.binaries.kubectl), "--kubeconfig",
                   str(self.cluster.kubeconfig_path)]
        subprocess.run([*kubectl, "delete", "pods", "--all", "--all-namespaces", "--force",
                        "--grace-period=0", "--wait=false"], capture_output=True, timeout=60,
                       check=False)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline and kubelet.alive():
            volumes = mounts.under(self.kubelet_dir / "pods")
            if not containerd.running_tasks(self.containerd) and not volumes:
                return
            time.sleep(0.5)
        log.warning("pods still running %.0fs after their deletion; killing them",
                    DRAIN_TIMEOUT)


def _sweep(state_dir: Path, sysctls: Mapping[str, str], *,
           logs_dir_existed: bool = True) -> None:
    """Whatever a node in `state_dir` may have left: processes, mounts, the namespace,
    cgroups, CNI cache entries, log symlinks, kernel settings. Safe to run twice."""
    layout = containerd.Layout(state_dir)
    socket_path = str(layout.socket)
    for pid in _pids_mentioning(socket_path):  # shims outlive containerd by design
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    cgroups.kill_all(components.CGROUP_ROOT)
    deadline = time.monotonic() + 10
    while cgroups.pids(components.CGROUP_ROOT) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = mounts.unmount_all(state_dir)
    if left:
        log.warning("still mounted under %s: %s", state_dir, left)
    network.delete()
    cgroups.remove_tree(components.CGROUP_ROOT)
    if CNI_CACHE.is_dir():
        for entry in CNI_CACHE.glob("mediaplane-*"):
            entry.unlink(missing_ok=True)
    if CONTAINER_LOGS.is_dir():
        for link in CONTAINER_LOGS.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and str(link.readlink()).startswith(str(state_dir)):
                    link.unlink()
        if not logs_dir_existed:
            with contextlib.suppress(OSError):
                CONTAINER_LOGS.rmdir()
    network.restore_sysctls(dict(sysctls))
    run_containerd = Path("/run/containerd/s")
    with contextlib.suppress(OSError):
        if run_containerd.is_dir() and not any(run_containerd.iterdir()):
            run_containerd.rmdir()
            run_containerd.parent.rmdir()


def _pids_mentioning(text: str) -> list[int]:
    needle = text.encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
    return found


def _node_ready(api: httpx.Client) -> bool:
    response = api.get(f"/api/v1/nodes/{components.NODE_NAME}")
    if response.status_code != 200:
        return False
    conditions = response.json().get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

