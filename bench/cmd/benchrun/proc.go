package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a long-running process the benchmark started: a proxy, the
// backend or the L4 sink.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs []string      // the files it writes its log to: its output first
	done chan struct{} // closed once it has exited
}

func (p *proc) pid() int {
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to 5 s, then SIGKILLs.
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// pinned prefixes argv with the priority and core pinning every process
// of the benchmark gets: taskset (and nice) exec the command, so its PID is
// the command's.
func (b *bench) pinned(ctx context.Context, cpu int, argv ...string) *exec.Cmd {
	full := append(append(slices.Clone(b.prio), "taskset", "-c", strconv.Itoa(cpu)), argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = b.env
	// If benchrun dies without stopping it, the child gets SIGTERM: a safety
	// net, the normal path is stop. (Linux sends it when the thread that
	// started the child exits; Go keeps its threads until the process ends.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	return cmd
}

// start runs argv pinned to cpu in the background, its output in logFile,
// and adds it to the processes close stops: it runs until stopped, whatever
// the context of the caller.
func (b *bench) start(name string, cpu int, logFile string, argv ...string) (*proc, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	defer f.Close()
	cmd := b.pinned(context.Background(), cpu, argv...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logs: []string{logFile}, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	b.procs = append(b.procs, p)
	return p, nil
}

// load runs one load generator pinned to the load core until it exits, or
// until limit passes or ctx is done (then SIGTERM, and SIGKILL 5 s later),
// with its output in outFile. It returns the CPU the generator and its
// children used, in ticks, and the run's error (an exit status included).
func (b *bench) load(ctx context.Context, limit time.Duration, outFile string, argv ...string) (float64, error) {
	f, err := os.Create(outFile)
	if err != nil {
		return 0, fmt.Errorf("%s: output: %w", argv[0], err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := b.pinned(ctx, b.o.loadCPU, argv...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %w", argv[0], err)
	}
	err = cmd.Wait()
	var ticks float64
	if st := cmd.ProcessState; st != nil {
		ticks = (st.UserTime() + st.SystemTime()).Seconds() * clockTick
	}
	if err != nil {
		return ticks, fmt.Errorf("%s: %w", argv[0], err)
	}
	return ticks, nil
}

// portFree reports whether nothing listens on 127.0.0.1:port.
func portFree(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// waitHTTP polls url with the benchmark's Host (and SNI, for https) until it
// answers 200, for at most 10 s; it gives up at once if p exits.
func (b *bench) waitHTTP(ctx context.Context, url string, p *proc) error {
	tr := &http.Transport{
		Proxy:             nil, // never an environment proxy: traffic stays on loopback
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{ServerName: hostHeader, InsecureSkipVerify: true},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		req.Host = hostHeader
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	return b.poll(ctx, p, 100, 100*time.Millisecond, "no 200 from "+url+" after 10 s", get)
}

// waitL4 waits until a 1 KiB segment crosses 127.0.0.1:port to the sink,
// for at most about 10 s; it gives up at once if p exits.
func (b *bench) waitL4(ctx context.Context, port int, p *proc) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cross := func() bool {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(b.o.bin, "l4load"), "source", "-addr", addr, "-bytes", "1K", "-duration", "1s")
		return cmd.Run() == nil
	}
	return b.poll(ctx, p, 50, 200*time.Millisecond, "no segment crossed "+addr+" in 10 s", cross)
}

// poll calls ok up to tries times, every, until it succeeds. It fails if p
// exits first or ok never succeeds, and then shows p's log.
func (b *bench) poll(ctx context.Context, p *proc, tries int, every time.Duration, timeout string, ok func() bool) error {
	for range tries {
		if !p.alive() {
			b.showLog(p)
			return fmt.Errorf("%s exited", p.name)
		}
		if ok() {
			return nil
		}
		if err := sleep(ctx, every); err != nil {
			return err
		}
	}
	b.showLog(p)
	return errors.New(timeout)
}

// showLog copies p's logs to stderr, indented.
func (b *bench) showLog(p *proc) {
	for _, file := range p.logs {
		out, err := os.ReadFile(file)
		if err != nil || len(out) == 0 {
			continue
		}
		b.logf("%s: %s:", p.name, file)
		for line := range strings.Lines(string(out)) {
			fmt.Fprintf(b.stderr, "  | %s", line)
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// withoutProxyEnv is env without the variables that would send a child's
// requests to an HTTP proxy: every request of the benchmark goes to
// 127.0.0.1.
func withoutProxyEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy":
			continue
		}
		out = append(out, kv)
	}
	return out
}
