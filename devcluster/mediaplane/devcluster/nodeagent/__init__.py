"""A local node agent for the dev cluster: the part of a kubelet that Jobs need.

Dev and test only. There is no container runtime here, so the agent runs each
container's `command + args` directly on the host, as a local process in its own process
group, and `image` is ignored entirely: images are for real clusters. A container without
`command` fails the pod with a clear message (image entrypoints are unknown locally).

What it does, so that the real Job controller drives retries and completion:

- registers the Node `mediaplane-local` (Ready, 2 CPU / 24Gi / 110 pods) and heartbeats it;
- binds every pending, unbound pod to that node (there is no scheduler; node selectors,
  affinity, taints and resource requests are not evaluated);
- gives each pod a directory `<state>/pods/<namespace>/<pod>/` with one directory per
  volume (emptyDir; configMap, secret, downwardAPI and projected volumes are written out
  as files; hostPath maps to the host path itself), and maps each container path to the
  host path: any argument, env value or workingDir that starts with a mounted path (or
  the termination message path) is rewritten to the host path, as is the value part of
  a `--flag=/path` argument. Paths hard-coded inside programs are not rewritten: pass them
  through arguments or env;
- gives a process only what the pod spec says: its `env` (plain values, `fieldRef`,
  `resourceFieldRef`, `configMapKeyRef`/`secretKeyRef` and `envFrom`, as a kubelet would),
  plus `PATH` from the agent and `HOME` in the pod directory. Nothing else from the
  agent's environment (which holds admin credentials) reaches a worker;
- writes `<container>.log` (stdout+stderr), `<container>.pid` (also the process group id)
  and, once it exits, `<container>.exit`;
- runs init containers in order, then the containers concurrently, and reports status
  through `pods/status` (Running, then Succeeded/Failed with each container's exit code
  and termination message). A process killed by signal N reports exit code 128+N;
- Indexed Jobs work as in a cluster: the Job controller annotates each pod with its
  completion index and adds `JOB_COMPLETION_INDEX` as a downward-API `fieldRef` to that
  annotation, which the agent resolves like any other;
- `restartPolicy` is treated as Never whatever it says: a failed container fails the pod,
  and retrying is the Job controller's business (backoffLimit), as with Never in a real
  cluster. Sidecar init containers (restartPolicy Always) run like plain init containers;
- honours `activeDeadlineSeconds` (phase Failed, reason DeadlineExceeded) and deletion
  (SIGTERM to the process group, SIGKILL after the grace period, capped at 30 s, then
  delete with gracePeriodSeconds=0);
- adopts nothing on start: pods bound to the node that are Pending or Running from a
  previous agent life are marked Failed (reason NodeRestart) so the Job controller
  creates new ones. Probes, resource limits and security contexts are not enforced.

Run: `python -m mediaplane.devcluster.nodeagent --kubeconfig K --state-dir D`.
"""

NODE_NAME = "mediaplane-local"
