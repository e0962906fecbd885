// Command scaleedge is what an edge costs the control plane: one
// control.Client streaming the routes from `swarmgate control`, with no
// proxy behind it. It reports on stdout, one line each, for the scale
// benchmark's driver (bench/scale/cmd/scalerun) to read:
//
//	start <unix ns>                       just before the client connects
//	update <unix ns> <changed unix ns> <routes> <endpoints> <received bytes>
//
// update lines are written when the client's update returns with a Config:
// the table in force. changed is the Config's Changed (0 if unknown) and
// received bytes the client's swarmgate_control_client_received_bytes_total.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/route"
)

func main() {
	addr := flag.String("control", "tcp://127.0.0.1:7070", "control plane stream address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "scaleedge:", err)
		os.Exit(1)
	}
}

// run streams from addr until ctx is done.
func run(ctx context.Context, addr string) error {
	reg := prometheus.NewRegistry()
	c, err := control.NewClient(control.ClientOptions{Addrs: []string{addr}, Registerer: reg})
	if err != nil {
		return fmt.Errorf("scaleedge: %w", err)
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "start %d\n", time.Now().UnixNano())
	out.Flush()
	return c.Run(ctx, func(cfg route.Config) {
		now := time.Now().UnixNano()
		eps := 0
		for i := range cfg.Routes {
			eps += len(cfg.Routes[i].Endpoints)
		}
		var changed int64
		if !cfg.Changed.IsZero() {
			changed = cfg.Changed.UnixNano()
		}
		fmt.Fprintf(out, "update %d %d %d %d %d\n", now, changed, len(cfg.Routes), eps, receivedBytes(reg))
		out.Flush()
	})
}

// receivedBytes reads the client's received-bytes counter from reg, 0 if
// it is not there.
func receivedBytes(reg *prometheus.Registry) int64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != "swarmgate_control_client_received_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			return int64(m.GetCounter().GetValue())
		}
	}
	return 0
}
