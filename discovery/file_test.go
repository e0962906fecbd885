package discovery

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/swarmgate/swarmgate/route"
)

const goodFile = `
services:
  - name: web
    labels:
      swarmgate.hosts: app.example.org,www.example.org
      swarmgate.port: "9000"
    endpoints: ["127.0.0.1:9000", "10.0.0.2", "[::1]"]
  - name: db
    labels:
      swarmgate.tcp.port: "15432"
      swarmgate.port: "5432"
    endpoints: ["127.0.0.1"]
  - name: broken
    labels:
      swarmgate.hosts: bad.example.org
      swarmgate.port: "http"
    endpoints: ["127.0.0.1"]
`

func TestParseRoutesFile(t *testing.T) {
	cfg, err := ParseRoutesFile([]byte(goodFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 2 {
		t.Fatalf("got %d routes, want 2 (web, db): %+v", len(cfg.Routes), cfg.Routes)
	}
	web, db := cfg.Routes[0], cfg.Routes[1]
	if got, want := strings.Join(web.Endpoints, " "), "127.0.0.1:9000 10.0.0.2:9000 [::1]:9000"; got != want {
		t.Errorf("web endpoints %q, want %q", got, want)
	}
	if got := strings.Join(db.Endpoints, " "); got != "127.0.0.1:5432" || db.TCPPort != 15432 {
		t.Errorf("db: endpoints %q tcp port %d", got, db.TCPPort)
	}
	if !web.CreatedAt.Before(db.CreatedAt) {
		t.Errorf("earlier services must count as older: %v vs %v", web.CreatedAt, db.CreatedAt)
	}
	if len(cfg.Errors) != 1 || cfg.Errors[0].Service != "broken" || cfg.Errors[0].Label != "swarmgate.port" {
		t.Errorf("errors: %v", cfg.Errors)
	}
}

func TestParseRoutesFileErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"not yaml", "services: [", "routes file"},
		{"unknown key", "services:\n  - name: a\n    lables: {}\n", "lables"},
		{"no name", "services:\n  - labels: {}\n", "no name"},
		{"duplicate", "services:\n  - name: a\n  - name: a\n", "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRoutesFile([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	cfg, err := ParseRoutesFile([]byte("services:\n  - name: a\n    labels: {swarmgate.hosts: a.org, swarmgate.port: '80'}\n    endpoints: ['1.2.3.4:99999', 'h/x']\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 0 || len(cfg.Errors) != 2 || cfg.Errors[0].Label != "endpoints" {
		t.Errorf("bad endpoints: routes %v errors %v", cfg.Routes, cfg.Errors)
	}
	if cfg, err := ParseRoutesFile(nil); err != nil || len(cfg.Routes) != 0 {
		t.Errorf("empty file: %v %v", cfg, err)
	}
}

// TestFileSourceKeepsLastGoodTable drives the watcher: a change is picked up,
// a broken file is ignored (the last Config stays), a fixed file is picked up.
func TestFileSourceKeepsLastGoodTable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.yaml")
	write := func(s string) {
		// Write and rename, as editors and config managers do.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	one := "services:\n  - name: a\n    labels: {swarmgate.hosts: a.org, swarmgate.port: '80'}\n    endpoints: ['127.0.0.1']\n"
	two := one + "  - name: b\n    labels: {swarmgate.hosts: b.org, swarmgate.port: '80'}\n    endpoints: ['127.0.0.1']\n"
	write(one)
	core, logs := observer.New(zap.ErrorLevel)
	f := NewFile(FileOptions{Path: path, Interval: 5 * time.Millisecond, Logger: zap.New(core)})
	var mu sync.Mutex
	var got []route.Config
	updates := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- f.Run(ctx, func(c route.Config) {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
			updates <- struct{}{}
		})
	}()
	wait := func(want int) {
		t.Helper()
		select {
		case <-updates:
		case <-time.After(5 * time.Second):
			t.Fatalf("no update; want a config with %d routes", want)
		}
		mu.Lock()
		defer mu.Unlock()
		if n := len(got[len(got)-1].Routes); n != want {
			t.Fatalf("latest config has %d routes, want %d", n, want)
		}
	}
	wait(1)
	write(two)
	wait(2)
	write("services: [ this is not yaml")
	select {
	case <-updates:
		t.Fatal("a broken file produced an update")
	case <-time.After(100 * time.Millisecond):
	}
	// Some 20 polls of the broken file: one error, not one per poll.
	if n := logs.FilterMessage("routes file rejected; keeping the last good table").Len(); n != 1 {
		t.Errorf("a broken file was reported %d times, want once: %v", n, logs.All())
	}
	write(one)
	wait(1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFileSourceFirstLoadErrorIsFatal(t *testing.T) {
	f := NewFile(FileOptions{Path: filepath.Join(t.TempDir(), "missing.yaml")})
	if err := f.Run(context.Background(), func(route.Config) { t.Error("update called") }); err == nil {
		t.Fatal("missing file: want an error")
	}
}

// TestRoutesFilePorts: an endpoint written host:port carries its port, so
// the port label is needed only by bare hosts (DESIGN.md's example).
func TestRoutesFilePorts(t *testing.T) {
	tests := []struct {
		name      string
		service   string // one entry of services:
		want      string // "route port endpoints...", or "" for a skipped service
		wantLabel string // the label of the error that skips it
	}{
		{"host:port needs no port label",
			"{name: web, labels: {swarmgate.hosts: a.org}, endpoints: ['127.0.0.1:9000', '127.0.0.1:9001']}",
			"web 0 127.0.0.1:9000 127.0.0.1:9001", ""},
		{"no endpoints need no port label",
			"{name: web, labels: {swarmgate.hosts: a.org}}",
			"web 0", ""},
		{"a bare host still needs one",
			"{name: web, labels: {swarmgate.hosts: a.org}, endpoints: ['127.0.0.1:9000', '10.0.0.2']}",
			"", "swarmgate.port"},
		{"a port label is used by bare hosts, host:port wins",
			"{name: web, labels: {swarmgate.hosts: a.org, swarmgate.port: '80'}, endpoints: ['127.0.0.1:9000', '10.0.0.2']}",
			"web 80 127.0.0.1:9000 10.0.0.2:80", ""},
		{"interlock labels: errors name com.docker.lb.port",
			"{name: web, labels: {com.docker.lb.hosts: a.org}, endpoints: ['10.0.0.2']}",
			"", "com.docker.lb.port"},
		{"interlock labels with host:port",
			"{name: web, labels: {com.docker.lb.hosts: a.org}, endpoints: ['10.0.0.2:8080']}",
			"web 0 10.0.0.2:8080", ""},
		{"L4 route with host:port",
			"{name: db, labels: {swarmgate.tcp.port: '15432'}, endpoints: ['127.0.0.1:5432']}",
			"db 0 127.0.0.1:5432", ""},
		{"named routes: own port kept, others take the endpoints'",
			"{name: web, labels: {swarmgate.hosts: a.org, swarmgate.routes.m.tcp.port: '9100', swarmgate.routes.m.port: '9100'}, endpoints: ['127.0.0.1:9000']}",
			"web 0 127.0.0.1:9000; web/m 9100 127.0.0.1:9000", ""},
		{"other errors still skip the service, without a port error",
			"{name: web, labels: {swarmgate.hosts: a.org, swarmgate.weight: heavy}, endpoints: ['127.0.0.1:9000']}",
			"", "swarmgate.weight"},
		{"a service with no route labels publishes nothing",
			"{name: web, labels: {com.example.team: x}, endpoints: ['127.0.0.1:9000']}",
			"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseRoutesFile([]byte("services:\n  - " + tt.service + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range cfg.Routes {
				got = append(got, strings.Join(append([]string{r.ID(), strconv.Itoa(r.Port)}, r.Endpoints...), " "))
			}
			if g := strings.Join(got, "; "); g != tt.want {
				t.Errorf("routes %q, want %q", g, tt.want)
			}
			var labels []string
			for _, e := range cfg.Errors {
				labels = append(labels, e.Label)
				if strings.Contains(e.Reason, "required") && tt.wantLabel != keyPortLabel(e.Label) {
					t.Errorf("unexpected port error: %v", e)
				}
			}
			if g := strings.Join(labels, ","); g != tt.wantLabel {
				t.Errorf("errors on %q (%v), want %q", g, cfg.Errors, tt.wantLabel)
			}
		})
	}
}

// keyPortLabel returns label if it is a port label, else "".
func keyPortLabel(label string) string {
	if strings.HasSuffix(label, ".port") {
		return label
	}
	return ""
}

// TestRoutesFileDesignExample loads DESIGN.md's routes file example (copied
// into testdata as written) through the File source.
func TestRoutesFileDesignExample(t *testing.T) {
	f := NewFile(FileOptions{Path: filepath.Join("testdata", "routes-design.yaml"), Logger: zaptest.NewLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	var cfg route.Config
	err := f.Run(ctx, func(c route.Config) { cfg = c; cancel() })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Errors) != 0 || len(cfg.Routes) != 2 {
		t.Fatalf("routes %+v, errors %v", cfg.Routes, cfg.Errors)
	}
	web, db := cfg.Routes[0], cfg.Routes[1]
	if got := strings.Join(web.Endpoints, " "); web.ID() != "web" || got != "127.0.0.1:9000 127.0.0.1:9001" ||
		strings.Join(web.Hosts, ",") != "app.example.org,www.example.org" || web.Path != "/" {
		t.Errorf("web: %+v", web)
	}
	if got := strings.Join(db.Endpoints, " "); db.ID() != "db" || got != "127.0.0.1:5432" || db.TCPPort != 15432 || db.Port != 5432 {
		t.Errorf("db: %+v", db)
	}
}

// TestRoutesFileErrorLines: errors about the file's shape name the line.
func TestRoutesFileErrorLines(t *testing.T) {
	tests := []struct{ data, want string }{
		{"services:\n  - name: a\n  - labels: {}\n", "line 3: service #2 has no name"},
		{"services:\n  - name: a\n  -\n    name: a\n", "line 4: service \"a\" is listed twice (first at line 2)"},
		{"services:\n  - name: a\n    lables: {}\n", "line 3: field lables not found"},
		{"services:\n  - name: a\n    endpoints: [\n", "line 3"},
	}
	for _, tt := range tests {
		_, err := ParseRoutesFile([]byte(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want one containing %q", tt.data, err, tt.want)
		}
	}
}

// TestRoutesFileShapeErrors: the decoder's errors speak of the file's parts,
// not of Go types.
func TestRoutesFileShapeErrors(t *testing.T) {
	tests := []struct{ data, want string }{
		{"services:\n  - name: web\n    endpoint: [a]\n", "line 3: field endpoint not found in a service (fields: name, labels, endpoints)"},
		{"service: []\n", "line 1: field service not found in a routes file (fields: services)"},
		{"services:\n  - name: web\n    labels: [a]\n", "line 3: cannot unmarshal !!seq into a mapping of labels"},
		{"services:\n  - name: web\n    endpoints: a\n", "line 3: cannot unmarshal !!str `a` into a list of endpoints"},
		{"services:\n  - name: a\n    lables: {}\n  - name: b\n    endpoint: []\n", "line 3: field lables not found in a service (fields: name, labels, endpoints); line 5: field endpoint"},
	}
	for _, tt := range tests {
		_, err := ParseRoutesFile([]byte(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "discovery.") {
			t.Errorf("%q: err = %v, want one containing %q and no Go type", tt.data, err, tt.want)
		}
	}
}
