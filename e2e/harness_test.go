// Package e2e runs swarmgate against a real Docker Engine in swarm mode: the
// production stack (deploy/swarmgate-stack.yml: the control plane on the
// manager, the edge as a global service publishing its ports in host mode,
// with no Docker API of its own), and test services built from e2e/echo.
//
// Run it with `make e2e`, which brings the engine up first. The suite fails,
// never skips, when the engine does not answer.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

const (
	prefix         = "sge2e"             // every object the suite creates is named so
	network        = prefix + "-net"     // overlay network shared by edge and services
	image          = "swarmgate:e2e"     // built FROM scratch with the static binary
	echoImage      = "sg-echo:e2e"       // the test service
	edgeHTTP       = "127.0.0.1:18080"   // edge's :80, published in host mode
	edgeAdmin      = "127.0.0.1:18081"   // edge's :8080
	edgeHTTPS      = "127.0.0.1:18443"   // edge's :443
	stack          = prefix              // the production stack, deploy/swarmgate-stack.yml
	controlNetwork = prefix + "-control" // the stack's network between control plane and edges
	controlService = stack + "_control"  // the control plane: two replicas here
	edgeService    = stack + "_edge"     // the edge: global, host-mode ports
)

// The control plane's state key secret and the prefix of its state.
const (
	stateKey    = prefix + "-state-key"
	statePrefix = prefix + "-state-"
)

// controlReplicas: the stack runs one control plane per manager; on this
// one-node swarm the suite runs two, so that failing one over is tested.
const controlReplicas = 2

// deployStack deploys deploy/swarmgate-stack.yml as the suite's stack, with
// the suite's ports, networks and timeouts, and the control plane made a
// replicated service of controlReplicas (an override file, as an operator
// would write one).
func deployStack() error {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	override := filepath.Join(dir, "override.yml")
	if err := os.WriteFile(override, []byte(fmt.Sprintf(`version: "3.8"
services:
  control:
    deploy:
      mode: replicated
      replicas: %d
`, controlReplicas)), 0o644); err != nil {
		return err
	}
	// The stack publishes no admin port; on this machine the suite reads
	// the edge's admin API on the host, as the demo does.
	cmd := exec.Command("docker", "stack", "deploy", "--resolve-image", "never",
		"-c", filepath.Join("..", "deploy", "swarmgate-stack.yml"),
		"-c", filepath.Join("..", "deploy", "admin-published.yml"), "-c", override, stack)
	cmd.Env = append(os.Environ(),
		"SWARMGATE_IMAGE="+image,
		"SWARMGATE_NETWORK="+network,
		"SWARMGATE_CONTROL_NETWORK="+controlNetwork, "SWARMGATE_METRICS_NETWORK="+prefix+"-metrics",
		"SWARMGATE_HTTP_PORT=18080", "SWARMGATE_ADMIN_PORT=18081", "SWARMGATE_HTTPS_PORT=18443",
		"SWARMGATE_SHUTDOWN_DELAY=0s", "SWARMGATE_DRAIN_TIMEOUT=3s", "SWARMGATE_STOP_GRACE=5s",
		"SWARMGATE_STATE_KEY_SECRET="+stateKey, "SWARMGATE_STATE_PREFIX="+statePrefix,
		// Every node of this swarm is an edge node: the host's own node
		// gets no label from the suite.
		"SWARMGATE_EDGE_CONSTRAINT=node.role == manager",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker stack deploy: %v: %s", err, out)
	}
	return nil
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func TestMain(m *testing.M) {
	// One suite at a time per engine: runs share names and ports, and each
	// setup removes what the last run left.
	unlock, err := lockEngine()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	defer unlock()
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup failed:", err)
		teardown()
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 {
		dumpLogs()
	}
	teardown()
	unlock()
	os.Exit(code)
}

// lockEngine takes an exclusive lock for the suite, waiting for another run
// on this machine to finish.
func lockEngine() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "swarmgate-e2e.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: another run holds the engine; waiting")
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
	}
	return func() { f.Close() }, nil
}

// runTimeout bounds every command the suite runs: `docker service logs`
// has been seen to hang on this engine after the service's tasks changed.
const runTimeout = 2 * time.Minute

// run executes a command and returns its trimmed standard output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func docker(args ...string) (string, error) { return run("docker", args...) }

func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := docker(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func setup() error {
	if _, err := docker("info"); err != nil {
		return fmt.Errorf("no Docker Engine (run scripts/docker-up.sh): %w", err)
	}
	if state, _ := docker("info", "--format", "{{.Swarm.LocalNodeState}}"); state != "active" {
		return fmt.Errorf("the engine is not in swarm mode (state %q)", state)
	}
	teardown() // leftovers of an interrupted run
	if err := buildImages(); err != nil {
		return err
	}
	if out, err := run("sh", "-c", "head -c 48 /dev/urandom | base64 | docker secret create "+stateKey+" -"); err != nil {
		return fmt.Errorf("state key secret: %v: %s", err, out)
	}
	if err := deployStack(); err != nil {
		return err
	}
	return waitReady(90 * time.Second)
}

func waitReady(d time.Duration) error {
	return testkit.Wait(d, 250*time.Millisecond, func() error {
		resp, err := client.Get("http://" + edgeAdmin + "/readyz")
		if err != nil {
			return fmt.Errorf("edge not ready: %w", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("edge not ready: %d %s", resp.StatusCode, b)
		}
		return nil
	})
}

// buildImages builds swarmgate and the echo service as static binaries and
// wraps each in a FROM scratch image: no registry needed.
func buildImages() error {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	for _, b := range []struct{ pkg, bin, tag string }{
		{"./cmd/swarmgate", "swarmgate", image},
		{"./e2e/echo", "echo", echoImage},
	} {
		ctx := filepath.Join(dir, b.bin)
		if err := os.MkdirAll(ctx, 0o755); err != nil {
			return err
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctx, "app"), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v: %s", b.pkg, err, out)
		}
		df := "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"
		if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
			return err
		}
		if _, err := docker("build", "-q", "-t", b.tag, ctx); err != nil {
			return err
		}
	}
	return nil
}

func teardown() {
	if out, _ := docker("stack", "ls", "--format", "{{.Name}}"); out != "" {
		for _, s := range strings.Fields(out) {
			if strings.HasPrefix(s, prefix) {
				docker("stack", "rm", s)
			}
		}
	}
	if out, _ := docker("service", "ls", "-q", "--filter", "name="+prefix); out != "" {
		docker(append([]string{"service", "rm"}, strings.Fields(out)...)...)
	}
	// Networks can go only once the services' containers are gone.
	testkit.Wait(45*time.Second, 500*time.Millisecond, func() error {
		if out, _ := docker("ps", "-aq", "--filter", "name="+prefix); out != "" {
			return fmt.Errorf("containers left: %s", out)
		}
		return nil
	})
	// The control plane's state: its secret and the configs it wrote.
	docker("secret", "rm", stateKey)
	if out, _ := docker("config", "ls", "-q", "--filter", "label=swarmgate.state="+statePrefix); out != "" {
		docker(append([]string{"config", "rm"}, strings.Fields(out)...)...)
	}
	// The engine's name filter matches whole names of networks with no local
	// container, so the prefix is matched here.
	testkit.Wait(20*time.Second, 500*time.Millisecond, func() error {
		out, _ := docker("network", "ls", "--format", "{{.Name}}")
		var ours []string
		for _, n := range strings.Fields(out) {
			if strings.HasPrefix(n, prefix) {
				ours = append(ours, n)
			}
		}
		if len(ours) == 0 {
			return nil
		}
		docker(append([]string{"network", "rm"}, ours...)...)
		return fmt.Errorf("networks left: %v", ours)
	})
}

func dumpLogs() {
	for _, s := range []string{edgeService, controlService} {
		out, _ := run("sh", "-c", "timeout 20 docker service logs --raw --tail 60 "+s+" 2>&1")
		fmt.Fprintf(os.Stderr, "---- last log lines of %s\n%s\n", s, out)
	}
}

// service is an echo service created for one test.
type service struct {
	name string
}

// createEcho creates an echo service with labels and removes it when the test
// ends. It returns once docker service create returns (tasks may still start).
func createEcho(t testing.TB, name string, replicas int, labels map[string]string, extra ...string) *service {
	t.Helper()
	name = prefix + "-" + name
	args := []string{"service", "create", "--detach", "--name", name, "--no-resolve-image",
		"--network", network, "--replicas", fmt.Sprint(replicas), "--env", "SERVICE=" + name,
		"--stop-grace-period", "2s"}
	for k, v := range labels {
		args = append(args, "--label", k+"="+v)
	}
	args = append(args, extra...)
	args = append(args, echoImage, "--listen", ":8000")
	mustDocker(t, args...)
	t.Cleanup(func() { docker("service", "rm", name) })
	return &service{name: name}
}

// answer is what the echo service returns.
type answer struct {
	Service string `json:"service"`
	Task    string `json:"task"`
	Path    string `json:"path"`
	Host    string `json:"host"`
}

// get sends one request through the edge.
func get(host, path string) (int, answer, error) {
	req, err := http.NewRequest("GET", "http://"+edgeHTTP+path, nil)
	if err != nil {
		return 0, answer{}, err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, answer{}, err
	}
	var a answer
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &a); err != nil {
			return resp.StatusCode, a, fmt.Errorf("not an echo answer: %q", body)
		}
	}
	return resp.StatusCode, a, nil
}

// waitStatus polls host+path until it answers code, and returns how long that took.
func waitStatus(t testing.TB, host, path string, code int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var took time.Duration
	testkit.Eventually(t, timeout, 20*time.Millisecond, func() error {
		got, _, err := get(host, path)
		if err != nil || got != code {
			return fmt.Errorf("%s%s did not answer %d: %d %v", host, path, code, got, err)
		}
		took = time.Since(start)
		return nil
	})
	return took
}

// adminJSON decodes an admin API document.
func adminJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := client.Get("http://" + edgeAdmin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("admin %s: %v", path, err)
	}
}

func adminText(t testing.TB, path string) string {
	t.Helper()
	resp, err := client.Get("http://" + edgeAdmin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitTasksRunning waits until the service has n running tasks.
func waitTasksRunning(t testing.TB, name string, n int, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, 100*time.Millisecond, func() error {
		out, _ := docker("service", "ps", name, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
		running := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "Running") {
				running++
			}
		}
		if running != n {
			return fmt.Errorf("service %s: %d of %d tasks running", name, running, n)
		}
		return nil
	})
}
