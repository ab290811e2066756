// Wrapper around the upstream entry point: a copy of k8s.io/kubernetes/cmd/kube-apiserver/apiserver.go
// at the version pinned in ../../versions.env (KUBE_VERSION), minus the license header.
// It exists so the binary is built from this module's pinned go.mod/go.sum.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
