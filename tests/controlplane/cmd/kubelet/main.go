// Wrapper around the upstream entry point: a copy of k8s.io/kubernetes/cmd/kubelet/kubelet.go
// at the version pinned in ../../versions.env (KUBE_VERSION), minus the license header.
// It exists so the binary is built from this module's pinned go.mod/go.sum
// (used by `hack/controlplane.sh start DIR --node`).
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // for client metric registration
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	command := app.NewKubeletCommand(context.Background())
	code := cli.Run(command)
	os.Exit(code)
}
