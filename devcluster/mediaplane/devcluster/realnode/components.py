"""Configuration of the node's Kubernetes components: kubelet, kube-proxy, CoreDNS.

Pure functions of paths and addresses, so unit tests read exactly what the node runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mediaplane.devcluster.realnode import network

NODE_NAME = "mediaplane-node"
# The kubelet's pods go under this cgroup in every v1 hierarchy (it must exist before the
# kubelet starts, which checks); removed, empty, when the node stops.
CGROUP_ROOT = "/mediaplane-node"
KUBELET_PORT = 10250
DNS_READY_PORT = 8181


def kubelet_config(*, root_dir: Path, runtime_endpoint: str, client_ca: Path,
                   serving_cert: Path, serving_key: Path) -> dict[str, Any]:
    """KubeletConfiguration for a one-node cluster on cgroup v1 with cgroupfs.

    Kubernetes 1.35 refuses cgroup v1 unless `failCgroupV1` is false. The API server
    reaches the kubelet (logs, exec, port-forward) with a client cert of the dev CA;
    everything else is authenticated and authorised by the API server (webhooks).
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": CGROUP_ROOT,
        "containerRuntimeEndpoint": runtime_endpoint,
        "imageServiceEndpoint": runtime_endpoint,
        "address": network.NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": str(serving_cert),
        "tlsPrivateKeyFile": str(serving_key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [network.HOST_IP],
        "clusterDomain": network.CLUSTER_DOMAIN,
        "resolvConf": "/etc/resolv.conf",
        "podLogsDir": str(root_dir / "pod-logs"),
        "staticPodPath": "",
        "failSwapOn": True,
        "serializeImagePulls": False,
        "registerNode": True,
        "maxPods": 110,
        # The disk is shared with the rest of the machine: evict only when nearly full,
        # and leave images alone until then (they are rebuilt at will, not pulled).
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "3%",
                         "imagefs.available": "3%", "nodefs.inodesFree": "3%"},
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
        "syncFrequency": "10s",
        "nodeStatusReportFrequency": "1m",
        "shutdownGracePeriod": "0s",
        "logging": {"format": "text"},
    }


def kubelet_argv(kubelet: Path, *, config: Path, kubeconfig: Path, root_dir: Path) -> list[str]:
    return network.in_node([
        str(kubelet),
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={root_dir}",
        f"--cert-dir={root_dir / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={network.NODE_IP}",
        "--v=1",
    ])


def kube_proxy_config(*, kubeconfig: Path) -> dict[str, Any]:
    """iptables mode, in the node's namespace; it changes no machine-wide sysctl (conntrack
    limits and timeouts left as they are, no localhost NodePorts: no route_localnet)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": network.POD_SUBNET,
        "detectLocalMode": "ClusterCIDR",
        "nodePortAddresses": [f"{network.NODE_IP}/32"],
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "iptables": {"localhostNodePorts": False, "syncPeriod": "30s", "minSyncPeriod": "0s"},
        "conntrack": {
            "maxPerCore": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }


def kube_proxy_argv(kube_proxy: Path, *, config: Path) -> list[str]:
    return network.in_node([str(kube_proxy), f"--config={config}", "--v=1"])


def corefile(*, kubeconfig: Path) -> str:
    """A cluster's usual Corefile, bound to the host's end of the node link: Services and
    pods of cluster.local from the API server, everything else forwarded."""
    domain = network.CLUSTER_DOMAIN
    return f"""\
.:53 {{
    bind {network.HOST_IP}
    errors
    ready {network.HOST_IP}:{DNS_READY_PORT}
    kubernetes {domain} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    forward . /etc/resolv.conf
    cache 30
    loop
    loadbalance
}}
"""


def coredns_argv(coredns: Path, *, corefile_path: Path) -> list[str]:
    return [str(coredns), "-conf", str(corefile_path)]


def scheduler_argv(scheduler: Path, *, kubeconfig: Path, port: int) -> list[str]:
    return [
        str(scheduler),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--leader-elect=false",
        "--profiling=false",
    ]
