"""From a pod spec to what one local process needs: host paths, env, argv.

Pure functions over the pod as the API server returns it (a JSON dict), so the rules a
dev pod lives by (what is mapped, what a worker may see) are testable without a cluster.
"""

from __future__ import annotations

import base64
import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

Pod = dict[str, Any]
Container = dict[str, Any]
Ref = tuple[str, str]  # ("ConfigMap" | "Secret", name)
RefData = Mapping[Ref, Mapping[str, bytes] | None]  # None: the object does not exist

DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
NODE_ALLOCATABLE = {"cpu": "2", "memory": "24Gi", "pods": "110", "ephemeral-storage": "100Gi"}
LOCAL_IP = "127.0.0.1"
SUPPORTED_VOLUMES = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected")


class PodSpecError(Exception):
    """The pod cannot run here; the message is what `kubectl describe` will show."""

    reason = "CreateContainerConfigError"


class MissingReferenceError(PodSpecError):
    """A ConfigMap, Secret or token is not there yet; a kubelet waits for it, so do we."""


@dataclass(frozen=True)
class PodDir:
    """The host layout of one pod: `<pods root>/<namespace>/<name>/`."""

    root: Path

    @classmethod
    def for_pod(cls, pods_root: Path, pod: Pod) -> PodDir:
        meta = pod["metadata"]
        return cls(pods_root / meta["namespace"] / meta["name"])

    def volume(self, name: str) -> Path:
        return self.root / "volumes" / name

    @property
    def home(self) -> Path:
        return self.root / "home"

    def log(self, container: str) -> Path:
        return self.root / f"{container}.log"

    def pid(self, container: str) -> Path:
        return self.root / f"{container}.pid"

    def exit(self, container: str) -> Path:
        return self.root / f"{container}.exit"

    def termination_message(self, container: str) -> Path:
        return self.root / f"{container}.termination-log"


# --- $(VAR) expansion, as kubelet does it ------------------------------------------------


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$$` escapes, unknown references stay verbatim."""
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2 : end]
                    out.append(env[name] if name in env else value[i : end + 1])
                    i = end + 1
                    continue
        out.append(char)
        i += 1
    return "".join(out)


# --- container paths -> host paths --------------------------------------------------------


def _normalize(container_path: str) -> str:
    return posixpath.normpath(container_path) if container_path else container_path


def rewrite(value: str, mapping: Mapping[str, Path]) -> str:
    """Replace a leading container path with its host path (longest mount wins).

    Also rewrites the value of a `--flag=/container/path` argument, a common CLI form.
    """
    for container_path in sorted(mapping, key=len, reverse=True):
        host = str(mapping[container_path])
        if value == container_path:
            return host
        prefix = container_path.rstrip("/") + "/"
        if value.startswith(prefix):
            return host.rstrip("/") + "/" + value[len(prefix) :]
    if value.startswith("-") and "=" in value:
        flag, _, rest = value.partition("=")
        if rest.startswith("/"):
            new = rewrite(rest, mapping)
            if new != rest:
                return f"{flag}={new}"
    return value


def volume_hosts(pod: Pod, pod_dir: PodDir) -> dict[str, Path]:
    """Where each volume lives on the host; unsupported volume types fail the pod."""
    hosts: dict[str, Path] = {}
    for volume in pod.get("spec", {}).get("volumes") or []:
        name = volume["name"]
        if "hostPath" in volume:
            hosts[name] = Path(volume["hostPath"]["path"])
        elif any(kind in volume for kind in SUPPORTED_VOLUMES):
            hosts[name] = pod_dir.volume(name)
        else:
            kind = next((k for k in volume if k != "name"), "unknown")
            raise PodSpecError(
                f"volume {name!r}: {kind} volumes are not supported by the dev node agent "
                f"(supported: {', '.join(SUPPORTED_VOLUMES)})"
            )
    return hosts


def path_map(
    container: Container,
    volumes: Mapping[str, Path],
    termination_file: Path,
    env: Mapping[str, str],
) -> dict[str, Path]:
    """{container path: host path} for the container's mounts and termination message."""
    mapping: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        host = volumes.get(mount["name"])
        if host is None:
            raise PodSpecError(
                f"container {container['name']!r} mounts {mount['name']!r}, which is not a volume"
            )
        sub = mount.get("subPath") or ""
        if not sub and mount.get("subPathExpr"):
            sub = expand(mount["subPathExpr"], env)
        if sub:
            if sub.startswith("/") or ".." in sub.split("/"):
                raise PodSpecError(f"subPath {sub!r} must be a relative path inside the volume")
            host = host / sub
        mapping[_normalize(mount["mountPath"])] = host
    message_path = container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
    mapping[_normalize(message_path)] = termination_file
    return mapping


# --- downward API and resources ------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Pod, field_path: str) -> str:
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": LOCAL_IP,
        "status.hostIPs": LOCAL_IP,
        "status.podIP": LOCAL_IP,
        "status.podIPs": LOCAL_IP,
    }
    if field_path in simple:
        return str(simple[field_path])
    if field_path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    match = _SUBSCRIPT.match(field_path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise PodSpecError(f"fieldRef {field_path!r} is not supported by the dev node agent")


_SUFFIXES = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")


def parse_quantity(quantity: str) -> Fraction:
    match = _QUANTITY.match(str(quantity).strip())
    if not match:
        raise PodSpecError(f"cannot parse quantity {quantity!r}")
    return Fraction(match.group(1)) * _SUFFIXES[match.group(2)]


def resource_value(container: Container, resource: str, divisor: str | None = None) -> str:
    """A `resourceFieldRef` as kubelet computes it: ceil(value / divisor), node as limit."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise PodSpecError(f"resourceFieldRef {resource!r} is not supported")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        value = NODE_ALLOCATABLE.get(name, "0") if kind == "limits" else "0"
    amount = parse_quantity(value) / parse_quantity(divisor or "1")
    return str(math.ceil(amount))


# A kubelet turns a container's CPU request into its cgroup's CPU weight (cpu.shares: the
# request in millicores * 1024 / 1000, at least 2, as for a pod without a request); under
# contention the kernel splits the cores in proportion to those weights. The agent has no
# cgroups of its own, so it gives the container's processes the nice value whose weight
# (1024 / 1.25^nice, the kernel's table) is the closest: 1 CPU is nice 0, 500m nice 3,
# 50m nice 13, none 19. Nothing runs above nice 0: raising priority takes privileges.
MIN_SHARES, SHARES_PER_CPU, MAX_NICE = 2, 1024, 19


def cpu_shares(container: Container) -> int:
    """The cpu.shares a kubelet gives `container`: from its CPU request, else its limit."""
    resources = container.get("resources") or {}
    value = ((resources.get("requests") or {}).get("cpu")
             or (resources.get("limits") or {}).get("cpu"))
    if value is None:
        return MIN_SHARES
    return max(MIN_SHARES, math.floor(parse_quantity(value) * SHARES_PER_CPU))


def cpu_nice(container: Container) -> int:
    """The nice value that weighs `container` as its cpu.shares would (0 to 19)."""
    shares = cpu_shares(container)
    if shares >= SHARES_PER_CPU:
        return 0
    return min(MAX_NICE, round(math.log(SHARES_PER_CPU / shares, 1.25)))


# --- referenced ConfigMaps and Secrets -----------------------------------------------------


def object_data(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A ConfigMap's or Secret's keys as bytes (what a file or an env value is made of)."""
    data: dict[str, bytes] = {}
    if kind == "ConfigMap":
        data.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    else:
        data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
    return data


def references(pod: Pod) -> set[Ref]:
    """Every ConfigMap and Secret the pod's env and volumes read."""
    refs: set[Ref] = set()
    spec = pod.get("spec", {})
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for src in container.get("envFrom") or []:
            if "configMapRef" in src:
                refs.add(("ConfigMap", src["configMapRef"]["name"]))
            if "secretRef" in src:
                refs.add(("Secret", src["secretRef"]["name"]))
        for item in container.get("env") or []:
            value_from = item.get("valueFrom") or {}
            if "configMapKeyRef" in value_from:
                refs.add(("ConfigMap", value_from["configMapKeyRef"]["name"]))
            if "secretKeyRef" in value_from:
                refs.add(("Secret", value_from["secretKeyRef"]["name"]))
    for volume in spec.get("volumes") or []:
        sources = [volume, *((volume.get("projected") or {}).get("sources") or [])]
        for src in sources:
            if "configMap" in src:
                refs.add(("ConfigMap", src["configMap"]["name"]))
            if "secret" in src:
                refs.add(("Secret", src["secret"].get("secretName") or src["secret"]["name"]))
    return refs


def _lookup(refs: RefData, ref: Ref, optional: bool) -> Mapping[str, bytes] | None:
    data = refs.get(ref)
    if data is None and not optional:
        raise MissingReferenceError(f"{ref[0].lower()} {ref[1]!r} not found")
    return data


# --- env and argv --------------------------------------------------------------------------


def _env_value(
    pod: Pod, container: Container, item: Mapping[str, Any], refs: RefData
) -> str | None:
    """One `valueFrom` entry; None when an optional reference is absent (no variable)."""
    value_from = item["valueFrom"]
    if "fieldRef" in value_from:
        return field_value(pod, value_from["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in value_from:
        ref = value_from["resourceFieldRef"]
        return resource_value(container, ref["resource"], ref.get("divisor"))
    for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        if field in value_from:
            key_ref = value_from[field]
            optional = bool(key_ref.get("optional"))
            data = _lookup(refs, (kind, key_ref["name"]), optional)
            if data is None or key_ref["key"] not in data:
                if optional:
                    return None
                raise MissingReferenceError(
                    f"key {key_ref['key']!r} not in {kind} {key_ref['name']!r}"
                )
            return data[key_ref["key"]].decode(errors="replace")
    raise PodSpecError(f"env {item['name']!r}: unsupported valueFrom {sorted(value_from)}")


def container_env(pod: Pod, container: Container, refs: RefData) -> dict[str, str]:
    """The variables the pod spec gives this container, expanded, not yet path-mapped."""
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in src:
                ref = src[field]
                data = _lookup(refs, (kind, ref["name"]), bool(ref.get("optional")))
                for key, raw in (data or {}).items():
                    env[prefix + key] = raw.decode(errors="replace")
    for item in container.get("env") or []:
        if "valueFrom" in item:
            value = _env_value(pod, container, item, refs)
            if value is not None:
                env[item["name"]] = value
        else:
            env[item["name"]] = expand(str(item.get("value", "")), env)
    return env


def process_env(
    env: Mapping[str, str], mapping: Mapping[str, Path], *, path: str, home: Path
) -> dict[str, str]:
    """The complete environment of the process: the spec's variables, PATH and HOME only.

    Deliberately not the agent's environment: that holds the admin kubeconfig and cloud
    credentials, which a worker must never see.
    """
    result = {"PATH": path, "HOME": str(home)}
    result.update({name: rewrite(value, mapping) for name, value in env.items()})
    return result


def container_argv(
    container: Container, env: Mapping[str, str], mapping: Mapping[str, Path]
) -> list[str]:
    command = list(container.get("command") or [])
    if not command:
        raise PodSpecError(
            f"container {container['name']!r} has no command: the dev node agent runs the "
            f"command on the host and cannot know the entrypoint of image "
            f"{container.get('image', '')!r}; set `command` in the pod spec"
        )
    argv = [expand(str(arg), env) for arg in command + list(container.get("args") or [])]
    # The executable comes from the image's filesystem, which here is the host's: it is never
    # inside a volume, so it is not remapped (a checkout under /tmp must not become a path in
    # the pod's /tmp emptyDir). Arguments are.
    return [argv[0], *(rewrite(arg, mapping) for arg in argv[1:])]


def working_dir(container: Container, mapping: Mapping[str, Path], default: Path) -> Path:
    value = container.get("workingDir")
    return Path(rewrite(value, mapping)) if value else default


# --- volume contents -----------------------------------------------------------------------


def _keyed_files(kind: str, name: str, src: Mapping[str, Any], refs: RefData) -> dict[str, bytes]:
    optional = bool(src.get("optional"))
    data = _lookup(refs, (kind, name), optional)
    if data is None:
        return {}
    items = src.get("items")
    if not items:
        return dict(data)
    files: dict[str, bytes] = {}
    for item in items:
        if item["key"] in data:
            files[item["path"]] = data[item["key"]]
        elif not optional:
            raise MissingReferenceError(f"key {item['key']!r} not in {kind.lower()} {name!r}")
    return files


def _downward_files(pod: Pod, items: list[Mapping[str, Any]]) -> dict[str, bytes]:
    containers = {c["name"]: c for c in pod.get("spec", {}).get("containers") or []}
    files: dict[str, bytes] = {}
    for item in items:
        if "fieldRef" in item:
            files[item["path"]] = field_value(pod, item["fieldRef"]["fieldPath"]).encode()
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            container = containers.get(ref.get("containerName", ""), {})
            files[item["path"]] = resource_value(
                container, ref["resource"], ref.get("divisor")
            ).encode()
    return files


def volume_files(
    volume: Mapping[str, Any], pod: Pod, refs: RefData, tokens: Mapping[str, str]
) -> dict[str, bytes]:
    """The files of a configMap/secret/downwardAPI/projected volume, relative path -> bytes.

    `tokens` holds service-account tokens already requested, keyed by their `path`.
    """
    if "configMap" in volume:
        src = volume["configMap"]
        return _keyed_files("ConfigMap", src["name"], src, refs)
    if "secret" in volume:
        src = volume["secret"]
        return _keyed_files("Secret", src.get("secretName") or src["name"], src, refs)
    if "downwardAPI" in volume:
        return _downward_files(pod, volume["downwardAPI"].get("items") or [])
    files: dict[str, bytes] = {}
    for src in (volume.get("projected") or {}).get("sources") or []:
        if "configMap" in src:
            files.update(
                _keyed_files("ConfigMap", src["configMap"]["name"], src["configMap"], refs)
            )
        elif "secret" in src:
            files.update(_keyed_files("Secret", src["secret"]["name"], src["secret"], refs))
        elif "downwardAPI" in src:
            files.update(_downward_files(pod, src["downwardAPI"].get("items") or []))
        elif "serviceAccountToken" in src:
            path = src["serviceAccountToken"]["path"]
            if path not in tokens:
                raise MissingReferenceError(f"no service-account token for {path!r}")
            files[path] = tokens[path].encode()
    return files


def token_requests(volume: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The `serviceAccountToken` sources of a projected volume."""
    sources = (volume.get("projected") or {}).get("sources") or []
    return [src["serviceAccountToken"] for src in sources if "serviceAccountToken" in src]
