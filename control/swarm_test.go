package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// docker runs the docker CLI against DOCKER_HOST (default: the local
// socket), with stdin when given.
func docker(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// needSwarm skips the test without a Docker Engine in swarm mode (fails in CI).
func needSwarm(t *testing.T) string {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	out, err := docker(t, "", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
	if err != nil || out != "active true" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: Docker Engine in swarm mode required: %v %s", err, out)
		}
		t.Skipf("no Docker Engine in swarm mode: %v %s", err, out)
	}
	return host
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestEdgeViewHoldsOnlyTheRouteModel runs the real Swarm source against the
// local engine with a service that carries an environment, a secret, an
// unrelated label, an image and arguments, and checks that none of it
// reaches the edge: neither the bytes it receives nor the Configs it
// delivers, and no field but the route model's in any frame.
func TestEdgeViewHoldsOnlyTheRouteModel(t *testing.T) {
	host := needSwarm(t)
	id := randomHex(t)
	prefix := "sgctl-" + id + "-"
	secrets := map[string]string{
		"env name":       "SGCTL_PASSWORD_" + id,
		"env value":      "hunter2-" + id,
		"secret name":    prefix + "db-password",
		"secret content": "secret-content-" + id,
		"other label":    "com.example.internal-" + id,
		"label value":    "internal-value-" + id,
		"image":          prefix + "image",
		"argument":       "argument-" + id,
	}
	run := func(stdin string, args ...string) {
		t.Helper()
		if out, err := docker(t, stdin, args...); err != nil {
			t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	network, service := prefix+"net", prefix+"app"
	run("", "network", "create", "--driver", "overlay", network)
	t.Cleanup(func() {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			out, err := docker(t, "", "network", "rm", network)
			if err == nil || strings.Contains(out, "not found") || time.Now().After(deadline) {
				return
			}
		}
	})
	run(secrets["secret content"], "secret", "create", secrets["secret name"], "-")
	t.Cleanup(func() {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			out, err := docker(t, "", "secret", "rm", secrets["secret name"])
			if err == nil || strings.Contains(out, "not found") || time.Now().After(deadline) {
				return
			}
		}
	})
	// No replica: nothing runs, nothing is pulled; the spec is all there is.
	run("", "service", "create", "--detach", "--no-resolve-image", "--replicas", "0", "--name", service,
		"--network", network, "--secret", secrets["secret name"],
		"--env", secrets["env name"]+"="+secrets["env value"],
		"--label", "swarmgate.hosts=app-"+id+".sgtest.example", "--label", "swarmgate.port=8080",
		"--label", secrets["other label"]+"="+secrets["label value"],
		secrets["image"], secrets["argument"])
	t.Cleanup(func() { docker(t, "", "service", "rm", service) })
	spec, err := docker(t, "", "service", "inspect", service)
	if err != nil || !strings.Contains(spec, secrets["env value"]) || !strings.Contains(spec, secrets["secret name"]) {
		t.Fatalf("the service spec does not carry what the test looks for: %v", err)
	}

	sw, err := discovery.NewSwarm(discovery.SwarmOptions{Host: host, Network: network})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	srv := startServer(t, "", ServerOptions{Heartbeat: time.Hour}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx, srv.Update) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Swarm.Run: %v", err)
		}
	})
	got := newConfigs()
	c := startClient(t, ClientOptions{Addrs: []string{srv.addr}}, got)
	var ours *route.Route
	testkit.Eventually(t, 30*time.Second, 0, func() error {
		cfg, _ := got.last()
		for i := range cfg.Routes {
			if cfg.Routes[i].Service == service {
				ours = &cfg.Routes[i]
				return nil
			}
		}
		return fmt.Errorf("no route of %s at the edge", service)
	})
	if ours.Network != network || ours.Port != 8080 || ours.ServiceID == "" || ours.CreatedAt.IsZero() {
		t.Errorf("route at the edge: %+v", ours)
	}

	received := string(c.tap.all())
	if !strings.Contains(received, `"svc":"`+service+`"`) || !strings.Contains(received, `"net":"`+network+`"`) {
		t.Fatal("the recorded stream lacks the route itself: the checks below would prove nothing")
	}
	got.mu.Lock()
	delivered, err := json.Marshal(got.list)
	got.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range secrets {
		if strings.Contains(received, s) {
			t.Errorf("the %s (%q) reached the edge's stream", what, s)
		}
		if strings.Contains(string(delivered), s) {
			t.Errorf("the %s (%q) is in a Config the edge got", what, s)
		}
	}
	for _, spec := range []string{"TaskTemplate", "ContainerSpec", "Env", "Secrets", "Labels", "Image", "Args"} {
		if strings.Contains(received, `"`+spec+`"`) {
			t.Errorf("the stream carries a %q field", spec)
		}
	}

	// Every field of every frame and item is one of the wire format's.
	frameFields := jsonFields(reflect.TypeFor[wireFrame]())
	routeFields := jsonFields(reflect.TypeFor[wireRoute]())
	redirectFields := jsonFields(reflect.TypeFor[wireRedirect]())
	errorFields := jsonFields(reflect.TypeFor[wireLabelError]())
	for i := range c.tap.count() {
		_, _, frames := c.tap.session(t, i)
		for _, f := range frames {
			raw, _ := json.Marshal(f.wireFrame)
			checkFields(t, "frame", raw, frameFields)
			for k, item := range f.Set {
				switch k[:2] {
				case keyRoute:
					checkFields(t, k, item, routeFields)
					var r struct{ Redir []json.RawMessage }
					json.Unmarshal(item, &r)
					for _, rd := range r.Redir {
						checkFields(t, k+" redirect", rd, redirectFields)
					}
				case keyErrors:
					var list []json.RawMessage
					json.Unmarshal(item, &list)
					for _, e := range list {
						checkFields(t, k, e, errorFields)
					}
				case keyEndpoints:
					var eps []string
					if err := json.Unmarshal(item, &eps); err != nil {
						t.Errorf("%s: not a list of addresses: %s", k, item)
					}
				default:
					t.Errorf("unknown item %s", k)
				}
			}
		}
	}
}

// jsonFields returns the JSON names of a struct's fields.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out[name] = true
	}
	return out
}

// checkFields fails the test for every key of the JSON object raw that is
// not in allowed.
func checkFields(t *testing.T, what string, raw []byte, allowed map[string]bool) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Errorf("%s: not an object: %.200s", what, raw)
		return
	}
	for k := range obj {
		if !allowed[k] {
			t.Errorf("%s: field %q is not in the wire format", what, k)
		}
	}
}
