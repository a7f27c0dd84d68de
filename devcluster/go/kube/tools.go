//go:build tools

// Package tools pins the commands this module builds so `go mod tidy` keeps their dependencies.
// The last three run a real node (`mediaplane dev up --node=containers`); they are built
// only when that node is asked for.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
