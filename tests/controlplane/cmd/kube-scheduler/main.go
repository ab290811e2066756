// Wrapper around the upstream entry point: a copy of k8s.io/kubernetes/cmd/kube-scheduler/scheduler.go
// at the version pinned in ../../versions.env (KUBE_VERSION), minus the license header.
// It exists so the binary is built from this module's pinned go.mod/go.sum
// (used by `hack/controlplane.sh start DIR --node`: without a scheduler no Pod leaves Pending).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version" // for version metric registration
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	command := app.NewSchedulerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
