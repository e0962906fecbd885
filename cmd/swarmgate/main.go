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
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "swarmgate:", err)
		os.Exit(1)
	}
}

// run is the command with args, until it ends or SIGINT or SIGTERM stop it.
// Tests run it in a process of their own (see main_test.go).
func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
