//go:build cluster

package cluster

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	prefix         = "sgc"
	stack          = prefix                // deploy/swarmgate-stack.yml
	network        = prefix + "-net"       // the apps' overlay network
	controlNetwork = prefix + "-control"   // control plane to edges
	controlService = stack + "_control"    // one replica, on the manager
	edgeService    = stack + "_edge"       // global on the edge-labelled workers
	stateKey       = prefix + "-state-key" // the control plane's state key secret
	statePrefix    = prefix + "-state-"
	image          = "swarmgate:cluster"
	echoImage      = "sg-echo:cluster"
	app            = prefix + "-app" // the test application: echo, one task per node
	appHost        = "app.cluster.test"
	appReplicas    = 3
)

// The cluster, from `scripts/cluster.sh env`.
var (
	managerSock string // unix:///.../docker.sock of the manager
	script      string // scripts/cluster.sh
	nodes       []node // the manager first
	edges       []node // the workers: edge nodes
	lbAddr      string // HAProxy's frontend on the host
	lbStats     string // HAProxy's stats page
)

type node struct{ name, addr string }

func (n node) admin() string { return "http://" + n.addr + ":8080" }

var client = &http.Client{Timeout: 5 * time.Second}

func TestMain(m *testing.M) {
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/cluster:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	if err := readEnv(); err != nil {
		return 0, err
	}
	unlock, err := lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	start := time.Now()
	lb, err := setup()
	if lb != nil {
		defer lb.stop()
	}
	if err != nil {
		dumpLogs()
		teardown()
		return 0, fmt.Errorf("setup: %w", err)
	}
	fmt.Fprintf(os.Stderr, "e2e/cluster: setup took %s\n", time.Since(start).Round(100*time.Millisecond))
	code := m.Run()
	if code != 0 {
		dumpLogs()
	}
	teardown()
	return code, nil
}

// readEnv reads the cluster's description. Missing, it is an error: the
// suite fails rather than skips (CI runs scripts/cluster.sh up first).
func readEnv() error {
	managerSock = os.Getenv("SWARMGATE_CLUSTER_DOCKER")
	script = os.Getenv("SWARMGATE_CLUSTER_SCRIPT")
	list := os.Getenv("SWARMGATE_CLUSTER_NODES")
	if managerSock == "" || list == "" || script == "" {
		return fmt.Errorf("no cluster: SWARMGATE_CLUSTER_DOCKER, SWARMGATE_CLUSTER_NODES and SWARMGATE_CLUSTER_SCRIPT must be set (eval \"$(scripts/cluster.sh env)\" after scripts/cluster.sh up; make e2e-cluster does both)")
	}
	if managerSock == "unix:///var/run/docker.sock" || managerSock == "unix:///run/docker.sock" {
		return fmt.Errorf("SWARMGATE_CLUSTER_DOCKER is the host's own engine (%s): refusing", managerSock)
	}
	nodes, edges = nil, nil
	for _, pair := range strings.Split(list, ",") {
		name, addr, ok := strings.Cut(pair, "=")
		if !ok || net.ParseIP(addr) == nil {
			return fmt.Errorf("SWARMGATE_CLUSTER_NODES: %q is not name=address", pair)
		}
		nodes = append(nodes, node{name, addr})
	}
	if len(nodes) < 3 {
		return fmt.Errorf("the suite needs 3 nodes (a manager, two edge workers); the cluster has %d", len(nodes))
	}
	edges = nodes[1:]
	return nil
}

func lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "swarmgate-e2e-cluster.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// run executes a command, bounded in time, and returns its trimmed output.
func run(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// docker runs the CLI against the cluster's manager, never the host's engine.
func docker(args ...string) (string, error) {
	return run([]string{"DOCKER_HOST=" + managerSock}, "docker", args...)
}

func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := docker(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// clusterCmd runs scripts/cluster.sh.
func clusterCmd(args ...string) error {
	_, err := run(nil, script, args...)
	return err
}

func setup() (*haproxy, error) {
	if _, err := docker("node", "ls"); err != nil {
		return nil, fmt.Errorf("the cluster's manager does not answer: %w", err)
	}
	teardown()
	if err := buildImages(); err != nil {
		return nil, err
	}
	if _, err := run([]string{"DOCKER_HOST=" + managerSock}, "sh", "-c",
		"head -c 48 /dev/urandom | base64 | docker secret create "+stateKey+" -"); err != nil {
		return nil, err
	}
	if err := deployStack(); err != nil {
		return nil, err
	}
	if _, err := docker("service", "create", "--detach", "--name", app, "--no-resolve-image",
		"--network", network, "--replicas", fmt.Sprint(appReplicas), "--replicas-max-per-node", "2",
		"--hostname", "{{.Node.Hostname}}-{{.Task.Slot}}", "--env", "SERVICE="+app,
		"--stop-grace-period", "5s", "--restart-delay", "1s",
		"--label", "swarmgate.hosts="+appHost, "--label", "swarmgate.port=8000",
		echoImage, "--listen", ":8000"); err != nil {
		return nil, err
	}
	for _, e := range edges {
		if err := testkit.Wait(2*time.Minute, 250*time.Millisecond, func() error { return ready(e) }); err != nil {
			return nil, fmt.Errorf("edge on %s: %w", e.name, err)
		}
	}
	if err := testkit.Wait(time.Minute, 250*time.Millisecond, func() error { return spread(app, appReplicas) }); err != nil {
		return nil, err
	}
	lb, err := startHAProxy()
	if err != nil {
		return lb, err
	}
	return lb, testkit.Wait(30*time.Second, 100*time.Millisecond, func() error {
		for _, e := range edges {
			if st := lbState(e.name); st != "UP" {
				return fmt.Errorf("HAProxy sees %s %s", e.name, st)
			}
		}
		return nil
	})
}

// ready asks an edge's /readyz directly.
func ready(e node) error {
	resp, err := client.Get(e.admin() + "/readyz")
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s /readyz: %d %s", e.name, resp.StatusCode, b)
	}
	return nil
}

// spread checks that a service has n running tasks on n distinct nodes.
func spread(service string, n int) error {
	out, err := docker("service", "ps", service, "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}")
	if err != nil {
		return err
	}
	on := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[1] == "Running" {
			on[f[0]] = true
		}
	}
	if len(on) != n {
		return fmt.Errorf("%s runs on %d nodes (%s); want %d", service, len(on), out, n)
	}
	return nil
}

// buildImages builds swarmgate and echo as static binaries in FROM scratch
// images on the manager (no registry, and the host's engine is not used),
// then loads them into every node.
func buildImages() error {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	for _, b := range []struct{ pkg, tag string }{{"./cmd/swarmgate", image}, {"./e2e/echo", echoImage}} {
		ctx := filepath.Join(dir, strings.Map(func(r rune) rune {
			if r == ':' || r == '/' {
				return '-'
			}
			return r
		}, b.tag))
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
		if err := clusterCmd("load", b.tag); err != nil {
			return err
		}
	}
	return nil
}

// deployStack deploys deploy/swarmgate-stack.yml as stack "sgc" with an
// override, as an operator would write one: the control plane mounts the
// manager's own Docker socket (on this machine every node's socket is a
// file of the host's, and the default path is the host's engine).
func deployStack() error {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := strings.TrimPrefix(managerSock, "unix://")
	override := filepath.Join(dir, "override.yml")
	if err := os.WriteFile(override, []byte(fmt.Sprintf(`version: "3.8"
services:
  control:
    volumes:
      - %s:/var/run/docker.sock
`, sock)), 0o644); err != nil {
		return err
	}
	env := []string{
		"DOCKER_HOST=" + managerSock,
		"SWARMGATE_IMAGE=" + image,
		"SWARMGATE_NETWORK=" + network,
		"SWARMGATE_CONTROL_NETWORK=" + controlNetwork,
		"SWARMGATE_STATE_KEY_SECRET=" + stateKey, "SWARMGATE_STATE_PREFIX=" + statePrefix,
		// The stack's own shutdown delay (5 s, longer than HAProxy needs to
		// see /readyz fail) with a shorter drain, so an edge update takes
		// seconds per node.
		"SWARMGATE_DRAIN_TIMEOUT=5s", "SWARMGATE_STOP_GRACE=15s",
	}
	stackFile := filepath.Join("..", "..", "deploy", "swarmgate-stack.yml")
	// The stack publishes no admin port; HAProxy's health checks and the
	// suite read each edge's on its node, as admin-published.yml publishes it.
	adminFile := filepath.Join("..", "..", "deploy", "admin-published.yml")
	// The merged file must name no other Docker socket: the host's engine is
	// never to be touched.
	merged, err := run(env, "docker", "stack", "config", "-c", stackFile, "-c", adminFile, "-c", override)
	if err != nil {
		return err
	}
	if strings.Contains(merged, "source: /var/run/docker.sock") || !strings.Contains(merged, sock) {
		return fmt.Errorf("the override does not replace the control plane's Docker socket:\n%s", merged)
	}
	_, err = run(env, "docker", "stack", "deploy", "--resolve-image", "never", "-c", stackFile, "-c", adminFile, "-c", override, stack)
	return err
}

func teardown() {
	docker("service", "rm", app)
	if out, _ := docker("service", "ls", "-q", "--filter", "name="+prefix); out != "" {
		docker(append([]string{"service", "rm"}, strings.Fields(out)...)...)
	}
	docker("stack", "rm", stack)
	testkit.Wait(60*time.Second, 500*time.Millisecond, func() error {
		if out, _ := docker("service", "ls", "-q"); out != "" {
			return fmt.Errorf("services left: %s", out)
		}
		return nil
	})
	docker("secret", "rm", stateKey)
	if out, _ := docker("config", "ls", "-q", "--filter", "label=swarmgate.state="+statePrefix); out != "" {
		docker(append([]string{"config", "rm"}, strings.Fields(out)...)...)
	}
	testkit.Wait(30*time.Second, 500*time.Millisecond, func() error {
		out, _ := docker("network", "ls", "--filter", "scope=swarm", "--format", "{{.Name}}")
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
		// The last 80 lines other than the access log, which the load
		// floods.
		out, _ := run([]string{"DOCKER_HOST=" + managerSock}, "sh", "-c",
			"timeout 20 docker service logs --raw --tail 20000 "+s+" 2>&1 | grep -v '\"logger\":\"access\"' | tail -80")
		fmt.Fprintf(os.Stderr, "---- last log lines of %s\n%s\n", s, out)
	}
	// The access log's failed and slow requests (1 s or more), which tell
	// whether a request the load saw fail reached an edge and what it met.
	out, _ := run([]string{"DOCKER_HOST=" + managerSock}, "sh", "-c",
		"timeout 20 docker service logs --raw --tail 200000 "+edgeService+" 2>&1 | grep '\"logger\":\"access\"' | "+
			"grep -E '\"status\":(499|5[0-9][0-9])|\"duration\":[1-9]' | tail -40")
	fmt.Fprintf(os.Stderr, "---- failed or slow requests in the access log of %s\n%s\n", edgeService, out)
	out, _ = docker("node", "ls")
	fmt.Fprintf(os.Stderr, "---- nodes\n%s\n", out)
}

// haproxy is the load balancer in front of the edges, as users run one:
// each edge's host-mode HTTP port, health-checked on the edge's /readyz.
type haproxy struct {
	cmd *exec.Cmd
	dir string
	out *testkit.SyncBuffer
}

func startHAProxy() (*haproxy, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, fmt.Errorf("haproxy is not installed (apt-get install haproxy; .ci/run does): %w", err)
	}
	dir, err := os.MkdirTemp("", prefix+"-haproxy")
	if err != nil {
		return nil, err
	}
	front, stats := freeAddr(), freeAddr()
	var servers strings.Builder
	for _, e := range edges {
		fmt.Fprintf(&servers, "  server %s %s:80 check port 8080\n", e.name, e.addr)
	}
	cfg := fmt.Sprintf(`global
  maxconn 8192
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 5s
  timeout http-keep-alive 30s
  retries 3
  option redispatch 1
  option http-keep-alive
frontend fe
  bind %s
  default_backend edges
  http-after-response set-header X-Edge %%[srv_name]
backend edges
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 250ms fall 2 rise 2
%slisten stats
  bind %s
  stats enable
  stats uri /stats
`, front, servers.String(), stats)
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if out, err := run(nil, bin, "-c", "-f", file); err != nil {
		return nil, fmt.Errorf("haproxy config: %v: %s", err, out)
	}
	h := &haproxy{dir: dir, out: &testkit.SyncBuffer{}}
	h.cmd = exec.Command(bin, "-db", "-f", file)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	// It dies with the suite, however the suite ends.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	lbAddr, lbStats = front, "http://"+stats+"/stats;csv"
	return h, nil
}

func (h *haproxy) stop() {
	h.cmd.Process.Kill()
	h.cmd.Wait()
	os.RemoveAll(h.dir)
}

// lbState is HAProxy's view of an edge: UP, DOWN, "UP 1/2" ...
func lbState(edge string) string {
	resp, err := client.Get(lbStats)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(recs) == 0 {
		return fmt.Sprintf("unreadable stats: %v", err)
	}
	col := -1
	for i, h := range recs[0] {
		if h == "status" {
			col = i
		}
	}
	for _, r := range recs[1:] {
		if len(r) > col && col >= 0 && r[0] == "edges" && r[1] == edge {
			return r[col]
		}
	}
	return "unknown"
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitLBUp waits until HAProxy sends traffic to every edge again.
func waitLBUp(t testing.TB, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, 100*time.Millisecond, func() error {
		for _, e := range edges {
			if st := lbState(e.name); st != "UP" {
				return fmt.Errorf("HAProxy sees %s %s", e.name, st)
			}
		}
		return nil
	})
}

// waitNode waits until the manager reports a node in the given state.
func waitNode(t testing.TB, name, state string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testkit.Eventually(t, timeout, 100*time.Millisecond, func() error {
		st, err := docker("node", "inspect", "--format", "{{.Status.State}}", name)
		if err != nil || st != state {
			return fmt.Errorf("node %s is %q (%v), want %s", name, st, err, state)
		}
		return nil
	})
	return time.Since(start)
}

// get sends one request with a Host header to an address.
func get(addr, host string) (int, answer, error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		return 0, answer{}, err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, answer{}, err
	}
	defer resp.Body.Close()
	var a answer
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return resp.StatusCode, a, err
		}
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, a, nil
}
