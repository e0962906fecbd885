package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat.
const clockTick = 100

// cpuTicks returns utime+stime of pid from /proc/PID/stat, in seconds.
func cpuTicks(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("scalerun: cpu: %w", err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU returns utime+stime, in seconds, of a /proc/PID/stat line.
// The command name (field 2) may hold spaces and parentheses: fields are
// counted from the last ')'.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("scalerun: /proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("scalerun: /proc stat: too few fields")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("scalerun: /proc stat: %w", err)
	}
	return float64(u+s) / clockTick, nil
}

// cpuNanos returns the CPU time of pid in nanoseconds, the sum of the first
// field of /proc/PID/task/*/schedstat: the same time as utime+stime, at
// nanosecond resolution instead of 10 ms (threads that exited are lost, and
// Go keeps its threads).
func cpuNanos(pid int) (int64, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("scalerun: schedstat of %d: not found", pid)
	}
	var sum int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited meanwhile
		}
		fs := strings.Fields(string(b))
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("scalerun: schedstat %s: %w", f, err)
		}
		sum += n
	}
	return sum, nil
}

// memory is a process's resident set: now and its peak, in bytes.
type memory struct{ RSS, HWM int64 }

// readMemory reads VmRSS and VmHWM from /proc/PID/status.
func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("scalerun: memory: %w", err)
	}
	return parseStatus(string(b)), nil
}

// parseStatus returns VmRSS and VmHWM of a /proc/PID/status text.
func parseStatus(status string) memory {
	var m memory
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		if k == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	return m
}

// Ports handed out by freePort: below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, 32768 and up by default), so that the
// outgoing connections of the run cannot take a port between the moment it
// is found free and the moment its process listens on it.
const (
	firstPort = 21000
	lastPort  = 32000
)

var (
	portMu   sync.Mutex // guards nextPort
	nextPort = firstPort
)

// freePort returns a loopback port that was free a moment ago and that no
// other call returned.
func freePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for ; nextPort <= lastPort; nextPort++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(nextPort)))
		if err != nil {
			continue
		}
		ln.Close()
		nextPort++
		return nextPort - 1, nil
	}
	return 0, fmt.Errorf("scalerun: no free port in %d-%d", firstPort, lastPort)
}

// proc is a child process. Children die with the driver (Pdeathsig) and are
// stopped by stop.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, once done is closed
}

// startProc starts bin with args; its stdout and stderr go to the writers
// given, or (when nil) to the log file logPath. Writers that are pipes are
// closed when the process exits.
func startProc(name, logPath string, stdout, stderr io.Writer, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("scalerun: %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("scalerun: start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		for _, w := range []io.Writer{stdout, stderr} {
			if pw, ok := w.(*io.PipeWriter); ok {
				pw.Close()
			}
		}
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, then SIGKILL if the process is still there after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// alive returns an error if the process has exited.
func (p *proc) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("scalerun: %s exited: %v", p.name, p.err)
	default:
		return nil
	}
}

// waitReady polls url every 10 ms until it answers 200, p exits, ctx is done
// or timeout passes. It returns when it first answered.
func waitReady(ctx context.Context, p *proc, url string, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := p.alive(); err != nil {
			return time.Time{}, err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("scalerun: %s not ready at %s: %w", p.name, url, ctx.Err())
		case <-tick.C:
		}
	}
}

// scrape returns the samples of a Prometheus text exposition whose name
// (with labels) starts with one of prefixes.
func scrape(url string, prefixes ...string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scalerun: scrape: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				i := strings.LastIndexByte(line, ' ')
				if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
					out[line[:i]] = v
				}
			}
		}
	}
	return out, sc.Err()
}
