// The test bed's pod sandbox ("pause") process: it holds a pod's namespaces
// open, reaps orphaned children (it is PID 1 of the pod) and exits at once on
// SIGTERM or SIGINT so pods stop without waiting for a kill timeout. The bed
// cannot pull registry.k8s.io/pause, so it builds this one from source.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
