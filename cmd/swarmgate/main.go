// Command swarmgate is a Docker Swarm ingress router: one binary for the edge
// data plane, the read-only Docker API socket-proxy, and the label checker.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "swarmgate:", err)
		os.Exit(1)
	}
}
