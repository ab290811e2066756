// Wrapper around the upstream entry point: a copy of k8s.io/kubernetes/cmd/kube-controller-manager/controller-manager.go
// at the version pinned in ../../versions.env (KUBE_VERSION), minus the license header.
// It exists so the binary is built from this module's pinned go.mod/go.sum.
package main

import (
	"os"
	_ "time/tzdata" // for CronJob Time Zone support

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugin
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	command := app.NewControllerManagerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
