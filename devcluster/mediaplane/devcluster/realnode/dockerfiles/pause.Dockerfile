# The pod sandbox ("pause") container: Kubernetes' own pause.c, compiled statically from
# the k8s.io/kubernetes module of the version we run (realnode/binaries.py).
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
