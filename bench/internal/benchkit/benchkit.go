// Package benchkit is what the benchmark's commands (bench/cmd/...) share:
// the main function that runs a command until a signal, and its flag set.
package benchkit

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Run is a command's body: it parses args, writes its results to stdout and
// its diagnostics (flag errors included) to stderr, and returns when its
// work is done or ctx is.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main calls run with the command-line arguments and a context that ends on
// SIGINT or SIGTERM. If run fails, it prints the error to stderr and exits
// with status 1.
func Main(run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// FlagSet returns a flag set named name that returns its errors, -h
// included, instead of exiting, and prints them and its usage to stderr.
func FlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
