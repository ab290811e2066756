// Wrapper around the upstream etcd entry point (a copy of go.etcd.io/etcd/server/v3's
// main.go at ETCD_VERSION from ../versions.env). etcd lives in its own module so its
// dependency versions are etcd's own, not the ones k8s.io/kubernetes selects.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
