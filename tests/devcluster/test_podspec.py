"""The dev node agent's translation of a pod spec into a local process (pure functions)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from mediaplane.devcluster.nodeagent.podspec import (
    MissingReferenceError,
    PodDir,
    PodSpecError,
    container_argv,
    container_env,
    cpu_nice,
    cpu_shares,
    expand,
    path_map,
    process_env,
    references,
    resource_value,
    rewrite,
    volume_files,
    volume_hosts,
)
from mediaplane.devcluster.nodeagent.status import ContainerState, exit_code, outcome, pod_status

HOST = Path("/host/pods/ns/p")


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "x"}},
        "spec": {"nodeName": "mediaplane-local", **spec},
    }


MAPPING = {
    "/data": HOST / "volumes/data",
    "/data/cache": HOST / "volumes/cache",
    "/dev/termination-log": HOST / "main.termination-log",
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/data", "/host/pods/ns/p/volumes/data"),
        ("/data/in.mp4", "/host/pods/ns/p/volumes/data/in.mp4"),
        ("/data/out/", "/host/pods/ns/p/volumes/data/out/"),
        ("/data/cache/x", "/host/pods/ns/p/volumes/cache/x"),  # longest mount wins
        ("/dev/termination-log", "/host/pods/ns/p/main.termination-log"),
        ("--output=/data/o.m3u8", "--output=/host/pods/ns/p/volumes/data/o.m3u8"),
        ("/database", "/database"),  # a prefix of the name is not a path prefix
        ("relative/data", "relative/data"),
        ("echo /data", "echo /data"),  # only a leading path is a path
        ("--flag=value", "--flag=value"),
        ("", ""),
    ],
)
def test_rewrite(value: str, expected: str) -> None:
    assert rewrite(value, MAPPING) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(A)/x", "1/x"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("cost $5", "cost $5"),
        ("$(A", "$(A"),
        ("$(A)$(B)", "12"),
    ],
)
def test_expand(value: str, expected: str) -> None:
    assert expand(value, {"A": "1", "B": "2"}) == expected


def test_path_map_mounts_subpaths_and_termination_message() -> None:
    container = {
        "name": "main",
        "volumeMounts": [
            {"name": "work", "mountPath": "/work/"},
            {"name": "work", "mountPath": "/scratch", "subPathExpr": "$(POD)"},
        ],
        "terminationMessagePath": "/tmp/msg",
    }
    volumes = {"work": HOST / "volumes/work"}
    mapping = path_map(container, volumes, HOST / "main.termination-log", {"POD": "p"})
    assert mapping == {
        "/work": HOST / "volumes/work",
        "/scratch": HOST / "volumes/work/p",
        "/tmp/msg": HOST / "main.termination-log",
    }


def test_path_map_default_termination_path_and_unknown_volume() -> None:
    mapping = path_map({"name": "c"}, {}, HOST / "c.termination-log", {})
    assert mapping == {"/dev/termination-log": HOST / "c.termination-log"}
    with pytest.raises(PodSpecError, match="not a volume"):
        path_map({"name": "c", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}, {}, HOST, {})


def test_volume_hosts() -> None:
    pod = _pod(
        volumes=[
            {"name": "scratch", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": "/srv/media"}},
            {"name": "cfg", "configMap": {"name": "c"}},
        ]
    )
    pod_dir = PodDir(HOST)
    assert volume_hosts(pod, pod_dir) == {
        "scratch": HOST / "volumes/scratch",
        "host": Path("/srv/media"),
        "cfg": HOST / "volumes/cfg",
    }
    with pytest.raises(PodSpecError, match="persistentVolumeClaim volumes are not supported"):
        volume_hosts(
            _pod(volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]), pod_dir
        )


def test_env_is_only_what_the_spec_gives_plus_path_and_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
    monkeypatch.setenv("KUBECONFIG", "/admin/kubeconfig")
    container = {
        "name": "main",
        "env": [
            {"name": "OUT", "value": "/data/out.mp4"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "DIR", "value": "/data/$(POD)"},
            {"name": "LITERAL", "value": "$$(POD)"},
            {"name": "EMPTY"},
        ],
    }
    raw = container_env(_pod(), container, {})
    env = process_env(raw, MAPPING, path="/usr/bin:/bin", home=HOST / "home")
    assert env == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/host/pods/ns/p/home",
        "OUT": "/host/pods/ns/p/volumes/data/out.mp4",
        "POD": "p",
        "NS": "ns",
        "UID": "u-1",
        "APP": "x",
        "DIR": "/host/pods/ns/p/volumes/data/p",
        "LITERAL": "$(POD)",
        "EMPTY": "",
    }


def test_env_references_configmaps_and_secrets() -> None:
    container = {
        "name": "main",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
            },
            {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    refs = {
        ("ConfigMap", "cm"): {"A": b"1"},
        ("Secret", "sec"): {"token": b"t0k"},
        ("Secret", "absent"): None,
    }
    assert container_env(_pod(), container, refs) == {"CM_A": "1", "TOKEN": "t0k", "CPUS": "2"}
    assert references(_pod(containers=[container])) == {
        ("ConfigMap", "cm"),
        ("Secret", "sec"),
        ("Secret", "absent"),
    }
    with pytest.raises(MissingReferenceError):
        container_env(_pod(), container, {("ConfigMap", "cm"): None})


def test_argv_expands_and_rewrites_and_needs_a_command() -> None:
    container = {
        "name": "main",
        "image": "example/worker:1",
        "command": ["python", "-c", "print(1)"],
        "args": ["/dev/termination-log", "$(OUT)", "--in=/data/a.wav"],
    }
    assert container_argv(container, {"OUT": "/data/o"}, MAPPING) == [
        "python",
        "-c",
        "print(1)",
        "/host/pods/ns/p/main.termination-log",
        "/host/pods/ns/p/volumes/data/o",
        "--in=/host/pods/ns/p/volumes/data/a.wav",
    ]
    with pytest.raises(PodSpecError, match=re.escape("example/worker:1")):
        container_argv({"name": "main", "image": "example/worker:1", "args": ["x"]}, {}, MAPPING)


def test_the_executable_is_never_remapped_into_a_volume() -> None:
    """A host checkout under a mounted path (/tmp in CI) keeps its real path."""
    container = {"name": "main", "command": ["/data/venv/bin/worker"], "args": ["/data/in"]}
    assert container_argv(container, {}, MAPPING) == [
        "/data/venv/bin/worker",
        "/host/pods/ns/p/volumes/data/in",
    ]


def test_volume_files() -> None:
    pod = _pod()
    refs = {
        ("ConfigMap", "cm"): {"a.txt": b"A", "b.txt": b"B"},
        ("Secret", "s"): {"key": base64.b64decode(base64.b64encode(b"K"))},
    }
    assert volume_files({"name": "v", "configMap": {"name": "cm"}}, pod, refs, {}) == {
        "a.txt": b"A",
        "b.txt": b"B",
    }
    items = {"name": "cm", "items": [{"key": "a.txt", "path": "sub/x"}]}
    assert volume_files({"name": "v", "configMap": items}, pod, refs, {}) == {"sub/x": b"A"}
    projected = {
        "name": "kube-api-access-x",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token"}},
                {"secret": {"name": "s"}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ]
        },
    }
    assert volume_files(projected, pod, refs, {"token": "jwt"}) == {
        "token": b"jwt",
        "key": b"K",
        "namespace": b"ns",
    }
    with pytest.raises(MissingReferenceError):
        volume_files({"name": "v", "secret": {"secretName": "nope"}}, pod, refs, {})


@pytest.mark.parametrize(
    ("resources", "resource", "divisor", "expected"),
    [
        ({"limits": {"cpu": "500m"}}, "limits.cpu", None, "1"),
        ({"limits": {"cpu": "1500m"}}, "limits.cpu", "1m", "1500"),
        ({"requests": {"memory": "1Gi"}}, "requests.memory", "1Mi", "1024"),
        ({}, "limits.memory", "1Gi", "24"),  # the node's allocatable stands in for no limit
        ({}, "requests.cpu", None, "0"),
    ],
)
def test_resource_value(
    resources: dict[str, Any], resource: str, divisor: str | None, expected: str
) -> None:
    assert resource_value({"name": "c", "resources": resources}, resource, divisor) == expected


@pytest.mark.parametrize(
    ("resources", "shares", "nice"),
    [
        ({"requests": {"cpu": "1"}}, 1024, 0),
        ({"requests": {"cpu": "2"}}, 2048, 0),  # never above the host's own processes
        ({"requests": {"cpu": "500m"}}, 512, 3),  # a first wave's worker
        ({"requests": {"cpu": "50m"}}, 51, 13),  # the rest of its ladder: a tenth the weight
        ({"limits": {"cpu": "250m"}}, 256, 6),  # a limit alone is also the request
        ({"requests": {"memory": "1Gi"}}, 2, 19),  # no CPU request: BestEffort's 2 shares
        ({}, 2, 19),
    ],
)
def test_a_cpu_request_buys_the_weight_a_kubelet_would_give(
    resources: dict[str, Any], shares: int, nice: int
) -> None:
    container = {"name": "c", "resources": resources}
    assert cpu_shares(container) == shares
    assert cpu_nice(container) == nice
    # The nice value's weight (1024 / 1.25^nice) is within a step of the shares.
    if 2 < shares < 1024:
        assert 1 / 1.25 < (1024 / 1.25**nice) / shares < 1.25


def test_exit_codes_and_outcome() -> None:
    assert exit_code(0) == 0
    assert exit_code(3) == 3
    assert exit_code(-9) == 137  # SIGKILL, as a container runtime reports it
    assert exit_code(-15) == 143
    ok, bad = ContainerState("a", "img"), ContainerState("b", "img")
    ok.terminate(0)
    bad.terminate(137, "x" * 5000)
    assert outcome([], [ok]) == "Succeeded"
    assert outcome([ok], [ok, bad]) == "Failed"
    assert len(bad.message) == 4096


def test_terminal_status_shape() -> None:
    state = ContainerState("main", "img")
    state.started_at = "2026-01-01T00:00:00Z"
    state.terminate(0, "done")
    status = pod_status(
        phase="Succeeded", start_time="2026-01-01T00:00:00Z", init=[], containers=[state]
    )["status"]
    assert status["phase"] == "Succeeded"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"
    assert terminated["message"] == "done"
    assert terminated["startedAt"] == "2026-01-01T00:00:00Z"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "PodCompleted"


def test_a_pod_state_file_is_seen_whole_or_not_at_all(tmp_path: Path) -> None:
    """A reader polling a container's pid or exit file (tests, users' scripts) never finds
    it created and still empty, even while it is rewritten as fast as possible."""
    import threading

    from mediaplane.devcluster.nodeagent.runner import write_whole

    path = tmp_path / "worker.pid"
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.add(path.read_text())
            except FileNotFoundError:
                continue

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for pid in range(3000):
            write_whole(path, f"{pid}\n")
    finally:
        done.set()
        reader.join()
    assert seen, "the reader ran"
    assert all(text.endswith("\n") and text[:-1].isdigit() for text in seen), \
        sorted(t for t in seen if not t.endswith("\n"))[:3]
    assert path.read_text() == "2999\n"
    assert [p.name for p in tmp_path.iterdir()] == ["worker.pid"], "no partial file left"
