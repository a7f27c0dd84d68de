"""A real node for the dev cluster (`mediaplane dev up --node=containers`) and image builds
without Docker (`make images`): kubelet, containerd, runc, BuildKit and a local registry."""
