package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// runCheck runs `swarmgate check args...` and returns its output and error.
func runCheck(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newCheckCmd(&logOptions{level: "error", format: "json"})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodStack = `
services:
  web:
    image: example/web
    deploy:
      labels:
        swarmgate.hosts: shop.example.org,www.shop.example.org
        swarmgate.port: 8080
        swarmgate.path: /api
        swarmgate.path.strip: "true"
        swarmgate.tls: auto
        swarmgate.weight: 90
        swarmgate.routes.admin.hosts: admin.example.org
  db:
    image: postgres
    deploy:
      labels:
        - swarmgate.tcp.port=15432
        - swarmgate.port=5432
  legacy:
    image: example/legacy
    deploy:
      labels:
        com.docker.lb.hosts: legacy.example.org
        com.docker.lb.port: "80"
        com.docker.lb.network: legacy-net
  worker:
    image: example/worker
`

const badStack = `
services:
  ok:
    image: example/ok
    deploy:
      labels:
        swarmgate.hosts: ok.example.org
        swarmgate.port: "80"
  broken:
    image: example/broken
    deploy:
      labels:
        swarmgate.hosts: broken.example.org
        swarmgate.port: eighty
        swarmgate.weight: heavy
  misplaced:
    image: example/misplaced
    labels:
      swarmgate.hosts: misplaced.example.org
`

func TestCheckFiles(t *testing.T) {
	good := writeFile(t, "good.yml", goodStack)
	bad := writeFile(t, "bad.yml", badStack)
	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string   // substring; "" is success (exit 0)
		want    []string // lines (whitespace-collapsed) or substrings the output must contain
		notWant []string
	}{
		{
			name: "valid stack: a row per route, no errors",
			args: []string{good},
			want: []string{
				"SERVICE ROUTE HOSTS/PORTS PATH WEIGHT BACKEND TLS",
				"web web shop.example.org,www.shop.example.org /api (strip) 90 task :8080 auto",
				"web web/admin admin.example.org / 100 task :8080 off",
				"db db tcp:15432 - 100 task :5432 off",
				"legacy legacy legacy.example.org / 100 task :80 @legacy-net off",
				"4 route(s), 0 error(s), 0 warning(s)",
			},
			notWant: []string{"worker"},
		},
		{
			name:    "bad labels: every error with its label and value, other services still listed; exit 1",
			args:    []string{bad},
			wantErr: "2 invalid label(s) in 1 service(s)",
			want: []string{
				"ok ok ok.example.org / 100 task :80 off",
				"error: " + bad + `: service "broken": label swarmgate.port="eighty": want a port`,
				"error: " + bad + `: service "broken": label swarmgate.weight="heavy":`,
				"warning: " + bad + `: service "misplaced": labels: swarmgate.hosts is a container label`,
				"1 route(s), 2 error(s), 1 warning(s)",
			},
		},
		{
			name:    "several files: a FILE column and file names on errors",
			args:    []string{good, bad},
			wantErr: "2 invalid label(s)",
			want:    []string{"FILE SERVICE ROUTE", good + " web web shop.example.org", "error: " + bad + `: service "broken"`},
		},
		{
			name: "policies: a POLICIES column naming each route's",
			args: []string{writeFile(t, "policies.yml", `services:
  shop:
    image: shop
    deploy:
      labels:
        swarmgate.hosts: shop.example.org
        swarmgate.port: "8080"
        swarmgate.ratelimit: 20/s
        swarmgate.compress: "true"
        swarmgate.allow: 10.0.0.0/8
  plain:
    image: plain
    deploy:
      labels:
        swarmgate.hosts: plain.example.org
        swarmgate.port: "80"
`)},
			want: []string{
				"SERVICE ROUTE HOSTS/PORTS PATH WEIGHT BACKEND TLS POLICIES",
				"shop shop shop.example.org / 100 task :8080 off allow,ratelimit=20/s,compress",
				"plain plain plain.example.org / 100 task :80 off -",
			},
		},
		{
			name:  "standard input",
			args:  []string{"-"},
			stdin: goodStack,
			want:  []string{"db db tcp:15432", "4 route(s), 0 error(s)"},
		},
		{
			name: "a routes file, told by its content: endpoints shown, host:port needs no port label",
			args: []string{writeFile(t, "routes.yml", "services:\n  - name: web\n    labels: {swarmgate.hosts: app.example.org}\n    endpoints: ['127.0.0.1:9000', '127.0.0.1:9001']\n  - name: api\n    labels: {swarmgate.hosts: app.example.org, swarmgate.path: /api, swarmgate.port: '9100'}\n    endpoints: [10.0.0.7]\n")},
			want: []string{
				"SERVICE ROUTE HOSTS/PORTS PATH WEIGHT BACKEND TLS ENDPOINTS",
				"web web app.example.org / 100 task off 127.0.0.1:9000,127.0.0.1:9001",
				"api api app.example.org /api 100 task :9100 off 10.0.0.7:9100",
			},
		},
		{
			name:    "a routes file with bad labels and endpoints",
			args:    []string{writeFile(t, "routes-bad.txt", "services:\n  - name: web\n    labels: {swarmgate.hosts: a.org}\n    endpoints: [10.0.0.7]\n  - name: db\n    labels: {swarmgate.tcp.port: '15432'}\n    endpoints: ['10.0.0.8:99999']\n")},
			wantErr: "2 invalid label(s) in 2 service(s)",
			want: []string{
				`service "web": label swarmgate.port="": required`,
				`service "db": label endpoints="10.0.0.8:99999": want host:port`,
			},
		},
		{
			name:  "a routes file on standard input",
			args:  []string{"-"},
			stdin: "services:\n  - name: web\n    labels: {swarmgate.hosts: a.org}\n    endpoints: ['127.0.0.1:9000']\n",
			want:  []string{"web web a.org / 100 task off 127.0.0.1:9000"},
		},
		{
			name: "DESIGN.md's routes file example",
			args: []string{filepath.Join("..", "..", "discovery", "testdata", "routes-design.yaml")},
			want: []string{
				"web web app.example.org,www.example.org / 100 task off 127.0.0.1:9000,127.0.0.1:9001",
				"db db tcp:15432 - 100 task :5432 off 127.0.0.1:5432",
				"2 route(s), 0 error(s), 0 warning(s)",
			},
		},
		{name: "no arguments", args: nil, wantErr: "give stack files or routes files"},
		{name: "missing file", args: []string{filepath.Join(t.TempDir(), "nope.yml")}, wantErr: "no such file"},
		{name: "not YAML: file and line", args: []string{writeFile(t, "x.yml", "services:\n  web: [\n")}, wantErr: "x.yml: not YAML: yaml: line 2"},
		{name: "services neither a mapping nor a list", args: []string{writeFile(t, "s.yml", "version: '3'\nservices: web\n")}, wantErr: "s.yml: line 2: services: want a mapping of services (a stack file) or a list of services (a routes file)"},
		{name: "not a mapping", args: []string{writeFile(t, "l.yml", "- web\n")}, wantErr: "l.yml: line 1: want a stack file or a routes file"},
		{name: "routes file: entry error with its line", args: []string{writeFile(t, "r.yml", "services:\n  - name: a\n  - labels: {}\n")}, wantErr: "r.yml: discovery: routes file: line 3: service #2 has no name"},
		{name: "routes file: unknown field with its line", args: []string{writeFile(t, "r2.yml", "services:\n  - name: a\n    endpoint: [x]\n")}, wantErr: "line 3: field endpoint not found"},
		{name: "stack file: label error with its line", args: []string{writeFile(t, "st.yml", "services:\n  web:\n    deploy:\n      labels: [{a: b}]\n")}, wantErr: "st.yml: discovery: stack file: service \"web\": deploy.labels: line 4"},
		{name: "--stack without --docker", args: []string{"--stack", "shop", good}, wantErr: "--stack needs --docker"},
		{name: "bad output format", args: []string{"--output", "xml", good}, wantErr: "--output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCheck(t, tt.stdin, tt.args...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v; output:\n%s", err, out)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q; output:\n%s", err, tt.wantErr, out)
			}
			flat := collapse(out)
			for _, w := range tt.want {
				if !strings.Contains(flat, collapse(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

// collapse turns runs of spaces (table padding) into one space.
func collapse(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

func TestCheckJSON(t *testing.T) {
	out, err := runCheck(t, "", "--output", "json", writeFile(t, "bad.yml", badStack))
	if err == nil {
		t.Fatal("want an error (exit 1) for a stack with bad labels")
	}
	var rep checkReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("not JSON: %v\n%s", jerr, out)
	}
	if len(rep.Routes) != 1 || rep.Routes[0].Route != "ok" || rep.Routes[0].Port != 80 || rep.Routes[0].Weight != 100 {
		t.Errorf("routes: %+v", rep.Routes)
	}
	if len(rep.Errors) != 2 || rep.Errors[0].Service != "broken" || rep.Errors[0].Value == "" || rep.Errors[0].Reason == "" {
		t.Errorf("errors: %+v", rep.Errors)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Service != "misplaced" {
		t.Errorf("warnings: %+v", rep.Warnings)
	}

	out, err = runCheck(t, goodStack, "-o", "json", "-")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Routes) != 4 || len(rep.Errors) != 0 || rep.Errors == nil {
		t.Errorf("valid stack: %v %+v (errors must be [] for machines, not null)", err, rep)
	}
}

// TestCheckDocker checks the live services of the engine at DOCKER_HOST. It
// skips without an engine in swarm mode, except in CI, where it fails.
func TestCheckDocker(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	docker := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := docker("info", "--format", "{{.Swarm.ControlAvailable}}"); err != nil || out != "true" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: Docker Engine in swarm mode required: %v %s", err, out)
		}
		t.Skipf("no Docker Engine in swarm mode: %v %s", err, out)
	}
	must := func(args ...string) {
		t.Helper()
		if out, err := docker(args...); err != nil {
			t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	prefix := "sgtest-" + hex.EncodeToString(b) + "-"
	nw, good, bad := prefix+"net", prefix+"good", prefix+"bad"
	must("network", "create", "--driver", "overlay", nw)
	t.Cleanup(func() {
		// The services' removal takes a while to release the network.
		err := testkit.Wait(30*time.Second, 200*time.Millisecond, func() error {
			if out, err := docker("network", "rm", nw); err != nil && !strings.Contains(out, "not found") {
				return fmt.Errorf("docker network rm %s: %v: %s", nw, err, out)
			}
			return nil
		})
		if err != nil {
			t.Log(err)
		}
	})
	// No replicas: nothing runs, nothing is pulled; labels are all check reads.
	for _, s := range [][]string{
		{good, "swarmgate.hosts=good.sgtest.example", "swarmgate.port=8080"},
		{bad, "swarmgate.hosts=bad.sgtest.example", "swarmgate.port=8080", "swarmgate.balancer=random"},
	} {
		args := []string{"service", "create", "--detach", "--no-resolve-image", "--replicas", "0", "--network", nw, "--name", s[0]}
		for _, l := range s[1:] {
			args = append(args, "--label", l)
		}
		must(append(args, "sgtest-absent-image:none")...)
		t.Cleanup(func() { docker("service", "rm", s[0]) })
	}

	out, err := runCheck(t, "", "--docker", host, "--network", nw, "-o", "json")
	if err == nil || !strings.Contains(err.Error(), "invalid label") {
		t.Fatalf("error %v, want the invalid label reported (exit 1)", err)
	}
	var rep checkReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("not JSON: %v\n%s", jerr, out)
	}
	var route *checkRoute
	for i := range rep.Routes {
		if rep.Routes[i].Service == good {
			route = &rep.Routes[i]
		}
	}
	if route == nil || route.Network != nw || route.Port != 8080 || len(route.Endpoints) != 0 {
		t.Errorf("route of %s: %+v", good, route)
	}
	var found bool
	for _, e := range rep.Errors {
		found = found || e.Service == bad && e.Label == "swarmgate.balancer" && e.Value == "random"
	}
	if !found {
		t.Errorf("no error for %s: %+v", bad, rep.Errors)
	}

	out, _ = runCheck(t, "", "--docker", host, "--network", nw)
	if !strings.Contains(collapse(out), good+" "+good+" good.sgtest.example / 100 task :8080 @"+nw+" off") ||
		!strings.Contains(out, "none (503)") || !strings.Contains(out, `service "`+bad+`": label swarmgate.balancer="random"`) {
		t.Errorf("table output:\n%s", out)
	}
}

// TestInterlockMigrationExample: the Interlock stack of docs/examples and
// its conversion to swarmgate labels (docs/migrate-interlock.md) give the
// same routes, in check's report and in every field of the route model.
func TestInterlockMigrationExample(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "examples")
	il, sg := filepath.Join(dir, "interlock-stack.yml"), filepath.Join(dir, "interlock-converted.yml")
	reports := map[string]checkReport{}
	for _, f := range []string{il, sg} {
		out, err := runCheck(t, "", "-o", "json", f)
		if err != nil {
			t.Fatalf("check %s: %v\n%s", f, err, out)
		}
		var rep checkReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Errors)+len(rep.Warnings) != 0 || len(rep.Routes) != 5 {
			t.Fatalf("check %s: want 5 routes, no errors or warnings: %+v", f, rep)
		}
		for i := range rep.Routes {
			rep.Routes[i].Source = ""
		}
		reports[f] = rep
	}
	if a, b := reports[il].Routes, reports[sg].Routes; !reflect.DeepEqual(a, b) {
		t.Errorf("check's routes differ:\ninterlock %+v\nswarmgate %+v", a, b)
	}

	a, b := stackRoutes(t, il, "com.docker.lb.", discovery.DefaultDialects), stackRoutes(t, sg, "swarmgate.", discovery.DefaultDialects)
	if len(a) != len(b) {
		t.Fatalf("%d routes from Interlock labels, %d from swarmgate labels", len(a), len(b))
	}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Errorf("route %s differs:\ninterlock %+v\nswarmgate %+v", a[i].ID(), a[i], b[i])
		}
	}
}

// stackRoutes parses the stack file's services with dialects d and returns
// their routes, failing on any error and on any label without prefix.
func stackRoutes(t *testing.T, file, prefix string, d discovery.Dialects) []route.Route {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	services, err := discovery.ParseStack(data)
	if err != nil {
		t.Fatal(err)
	}
	var all []route.Route
	for _, s := range services {
		for k := range s.Labels {
			if !strings.HasPrefix(k, prefix) {
				t.Errorf("%s: service %s: label %s: want only %s* labels", file, s.Name, k, prefix)
			}
		}
		rs, errs := discovery.ParseLabelsFor(s.Name, s.Labels, d)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", file, errs)
		}
		all = append(all, rs...)
	}
	return all
}

// TestTraefikMigrationExample: the Traefik stack of docs/examples, read with
// the traefik dialect, and its conversion to swarmgate labels
// (docs/migrate-traefik.md) give the same routes but for their names
// (Traefik's are its routers').
func TestTraefikMigrationExample(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "examples")
	a := stackRoutes(t, filepath.Join(dir, "traefik-stack.yml"), "traefik.", discovery.DialectSwarmgate|discovery.DialectTraefik)
	b := stackRoutes(t, filepath.Join(dir, "traefik-converted.yml"), "swarmgate.", discovery.DefaultDialects)
	if len(a) != len(b) || len(a) != 4 {
		t.Fatalf("%d routes from Traefik labels, %d from swarmgate labels; want 4", len(a), len(b))
	}
	for i := range a {
		if a[i].Name != a[i].Service || b[i].Name != "" {
			t.Errorf("route names %q and %q: want the router's (named as its service) and the default route", a[i].ID(), b[i].ID())
		}
		a[i].Name = ""
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Errorf("route %s differs:\ntraefik   %+v\nswarmgate %+v", b[i].ID(), a[i], b[i])
		}
	}
}

// TestCheckErrorLines: an error's line is its label's in the file (map and
// list forms, merged labels, a routes file's labels and endpoints), or its
// service's when the label is missing.
func TestCheckErrorLines(t *testing.T) {
	tests := []struct {
		name, file string
		want       map[string]int // "service label" -> line
	}{
		{"stack file", `x-common: &common
  swarmgate.balancer: random
services:
  web:
    deploy:
      labels:
        <<: *common
        swarmgate.hosts: web.example.org
        swarmgate.port: eighty
  api:
    deploy:
      labels:
        - swarmgate.hosts=api.example.org
        - swarmgate.weight=heavy
  db:
    deploy:
      labels:
        swarmgate.tcp.port: "15432"
`, map[string]int{
			"web swarmgate.balancer": 2, // where the anchor sets it
			"web swarmgate.port":     9,
			"api swarmgate.weight":   14,
			"api swarmgate.port":     10, // missing: the service's line
			"db swarmgate.port":      15,
		}},
		{"routes file", `services:
  - name: web
    labels:
      swarmgate.hosts: web.example.org
      swarmgate.weight: heavy
    endpoints: ["127.0.0.1:9000"]
  - name: db
    labels: {swarmgate.tcp.port: "15432", swarmgate.port: "5432"}
    endpoints: ["127.0.0.1:99999"]
`, map[string]int{
			"web swarmgate.weight": 5,
			"db endpoints":         9,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := runCheck(t, "", "-o", "json", writeFile(t, "f.yml", tt.file))
			var rep checkReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := map[string]int{}
			for _, e := range rep.Errors {
				got[e.Service+" "+e.Label] = e.Line
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines %v, want %v", got, tt.want)
			}
		})
	}
}
