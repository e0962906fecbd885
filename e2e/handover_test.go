package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestZeroDowntimeHandover is scenario 6a, on the host without Docker: a
// second `swarmgate edge` started with the same --handover path takes over
// the listener of the first under load; the first drains and exits 0, and no
// request is lost.
func TestZeroDowntimeHandover(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "swarmgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/swarmgate")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer{Service: "local", Task: "httptest", Path: r.URL.Path, Host: r.Host})
	}))
	defer backend.Close()
	_, bport, _ := net.SplitHostPort(backend.Listener.Addr().String())
	const host = "handover.e2e.test"
	routes := filepath.Join(dir, "routes.yaml")
	yaml := fmt.Sprintf("services:\n  - name: local\n    labels:\n      swarmgate.hosts: %s\n      swarmgate.port: %q\n    endpoints: [%q]\n",
		host, bport, backend.Listener.Addr().String())
	if err := os.WriteFile(routes, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testkit.UnusedAddr(t)
	sock := filepath.Join(dir, "handover.sock")

	start := func() (*exec.Cmd, *bytes.Buffer, <-chan error) {
		var logs bytes.Buffer
		cmd := exec.Command(bin, "edge", "--http", addr, "--https", "", "--admin", "",
			"--routes", routes, "--handover", sock, "--drain-timeout", "10s", "--access-log=false")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		done := make(chan struct{})
		go func() {
			exited <- cmd.Wait()
			close(done)
		}()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
		})
		return cmd, &logs, exited
	}
	waitServing := func(exited <-chan error, logs *bytes.Buffer) {
		t.Helper()
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		testkit.Eventually(t, 20*time.Second, 50*time.Millisecond, func() error {
			select {
			case err := <-exited:
				t.Fatalf("edge exited at start: %v\n%s", err, logs)
			default:
			}
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Host = host
			resp, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("edge not serving %s: %w", host, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("edge not serving %s: %s", host, resp.Status)
			}
			if _, err := os.Stat(sock); err != nil {
				return fmt.Errorf("edge serving %s, no hand-over socket yet: %w", host, err)
			}
			return nil
		})
	}

	first, firstLogs, firstExited := start()
	waitServing(firstExited, firstLogs)
	cfg := scenarioLoad(host)
	cfg.URL = "http://" + addr + "/"
	load := startLoad(cfg)
	time.Sleep(2 * time.Second)
	second, secondLogs, secondExited := start()
	var firstErr error
	select {
	case firstErr = <-firstExited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the first edge did not hand over and exit within 30s")
	}
	handedAfter := time.Since(load.start)
	time.Sleep(2 * time.Second) // the successor alone serves the load
	res := load.stop(t)
	second.Process.Signal(syscall.SIGTERM)
	var secondErr error
	select {
	case secondErr = <-secondExited:
	case <-time.After(20 * time.Second):
		t.Errorf("the second edge did not stop on SIGTERM")
	}

	assertZero(t, "socket hand-over restart", res)
	t.Logf("first edge (pid %d) exited %s into the load: %v", first.Process.Pid, handedAfter.Round(time.Millisecond), firstErr)
	if firstErr != nil {
		t.Errorf("first edge exited with %v; want 0 after draining\n%s", firstErr, firstLogs)
	}
	if secondErr != nil {
		t.Errorf("second edge exited with %v\n%s", secondErr, secondLogs)
	}
	if !strings.Contains(secondLogs.String(), "took over the listeners") {
		t.Errorf("the second edge bound its own listener instead of taking over:\n%s", secondLogs)
	}
	if !strings.Contains(firstLogs.String(), "handed over") {
		t.Errorf("the first edge did not log the hand-over:\n%s", firstLogs)
	}
}
