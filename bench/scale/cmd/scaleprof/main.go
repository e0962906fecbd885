// Command scaleprof profiles the control plane at scale: it runs, in one
// process, the fake Swarm of bench/scale/fakedocker and what `swarmgate
// control` runs (discovery.Swarm feeding control.Run), then writes a CPU
// profile of the start (first configuration) and of a number of changes, and
// a heap profile once they are done. `swarmgate control` serves no
// /debug/pprof, hence this program; read the profiles with
// `go tool pprof -top`.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/bench/scale/fakedocker"
	"github.com/swarmgate/swarmgate/control"
	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/route"
)

func main() {
	services := flag.Int("services", 10000, "services in the fake Swarm")
	tasks := flag.Int("tasks", 5, "running tasks per service")
	changes := flag.Int("changes", 5, "scale-ups profiled after the start")
	out := flag.String("out", ".", "directory of start.pprof, changes.pprof and heap.pprof")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := run(ctx, *services, *tasks, *changes, *out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, services, tasks, changes int, dir string) error {
	fake := fakedocker.New(fakedocker.Options{Services: services, Tasks: tasks})
	fake.Warm()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("scaleprof: %w", err)
	}
	api := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	go api.Serve(ln)
	defer api.Close()

	reg := prometheus.NewRegistry()
	src, err := discovery.NewSwarm(discovery.SwarmOptions{Host: "tcp://" + ln.Addr().String(), Network: "bench-net", Registerer: reg})
	if err != nil {
		return fmt.Errorf("scaleprof: %w", err)
	}
	defer src.Close()
	versions := make(chan struct{}, 64)
	counting := &countingSource{Swarm: src, versions: versions}

	stopProfile, err := startProfile(filepath.Join(dir, "start.pprof"))
	if err != nil {
		return err
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	done := make(chan error, 1)
	go func() {
		done <- control.Run(runCtx, control.Options{Source: counting, Listen: "127.0.0.1:0", Registry: reg})
	}()
	t0 := time.Now()
	if err := wait(ctx, versions, done); err != nil {
		return err
	}
	stopProfile()
	fmt.Printf("first configuration after %v\n", time.Since(t0).Round(time.Millisecond))

	if stopProfile, err = startProfile(filepath.Join(dir, "changes.pprof")); err != nil {
		return err
	}
	for i := range changes {
		at, err := fake.ScaleUp(fakedocker.ID("service", i))
		if err != nil {
			return err
		}
		if err := wait(ctx, versions, done); err != nil {
			return err
		}
		fmt.Printf("scale-up %d: Config out of the source %v after the event\n", i, time.Since(at).Round(time.Millisecond))
	}
	stopProfile()
	runtime.GC()
	f, err := os.Create(filepath.Join(dir, "heap.pprof"))
	if err != nil {
		return fmt.Errorf("scaleprof: %w", err)
	}
	defer f.Close()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap in use after GC %d MB (the fake Swarm's included), heap sys %d MB\n", ms.HeapInuse>>20, ms.HeapSys>>20)
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("scaleprof: heap profile: %w", err)
	}
	cancelRun()
	return <-done
}

// countingSource signals each Config the source delivers, once the server
// has taken it.
type countingSource struct {
	*discovery.Swarm
	versions chan<- struct{}
}

func (c *countingSource) Run(ctx context.Context, update func(route.Config)) error {
	return c.Swarm.Run(ctx, func(cfg route.Config) {
		update(cfg)
		select {
		case c.versions <- struct{}{}:
		default:
		}
	})
}

// wait waits for the next Config, a failure of Run, or the end of ctx.
func wait(ctx context.Context, versions <-chan struct{}, done <-chan error) error {
	select {
	case <-versions:
		return nil
	case err := <-done:
		return fmt.Errorf("scaleprof: control plane stopped: %v", err)
	case <-ctx.Done():
		return fmt.Errorf("scaleprof: %w", ctx.Err())
	}
}

func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("scaleprof: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("scaleprof: cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
