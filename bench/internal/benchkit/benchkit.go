// Package benchkit is what the benchmark's commands (bench/cmd/...) share:
// the main function that runs a command until a signal, its flag set, its
// listener, and what the load generators share: the checks of their common
// flags, the pinned server certificate and latency percentiles.
package benchkit

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
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

// ServerMain is Main for a server, whose run has no results to print.
func ServerMain(run func(ctx context.Context, args []string, stderr io.Writer) error) {
	Main(func(ctx context.Context, args []string, _, stderr io.Writer) error { return run(ctx, args, stderr) })
}

// FlagSet returns a flag set named name that returns its errors, -h
// included, instead of exiting, and prints them and its usage to stderr.
func FlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// ParseListen adds a -listen flag with the default address addr to fs,
// parses args with fs (so every other flag must be defined before), and
// listens on TCP at -listen. A listen error is prefixed with fs's name.
func ParseListen(fs *flag.FlagSet, args []string, addr string) (net.Listener, error) {
	listen := fs.String("listen", addr, "listen address")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", fs.Name(), err)
	}
	return ln, nil
}

// Percentile returns the q-quantile of d (sorted in place), 0 if empty.
func Percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(q*float64(len(d))+0.5) - 1
	return d[max(0, min(i, len(d)-1))]
}

// CheckLoad validates a load generator's -conns and -duration.
func CheckLoad(name string, conns int, duration time.Duration) error {
	if conns < 1 || conns > 4096 {
		return fmt.Errorf("%s: -conns must be 1..4096, got %d", name, conns)
	}
	if duration <= 0 || duration > 10*time.Minute {
		return fmt.Errorf("%s: -duration must be in (0, 10m], got %s", name, duration)
	}
	return nil
}

// ReadPin returns the DER of the PEM certificate in file (-cert): the only
// certificate the server under test may present.
func ReadPin(name, file string) ([]byte, error) {
	if file == "" {
		return nil, fmt.Errorf("%s: -cert is required", name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: -cert: %w", name, err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: -cert %s: no PEM certificate", name, file)
	}
	return block.Bytes, nil
}

// VerifyPin is a tls.Config.VerifyConnection that accepts exactly the
// certificate pin: the chain is not verified (client CPU on the load core
// that tells nothing about the server), the handshake signature still is.
func VerifyPin(name string, pin []byte) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pin) {
			return errors.New(name + ": the server presented another certificate")
		}
		return nil
	}
}
