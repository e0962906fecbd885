package edge

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/route"
)

// reporter is a route.Reporter whose connection state the test sets.
type reporter struct {
	connected atomic.Bool
}

func (r *reporter) Name() string                                        { return "control:tcp://cp:7070" }
func (r *reporter) Run(ctx context.Context, _ func(route.Config)) error { <-ctx.Done(); return nil }
func (r *reporter) Status() route.SourceStatus {
	return route.SourceStatus{Connected: r.connected.Load(), Synced: true, Detail: map[string]string{"server": "tcp://10.0.9.4:7070"}}
}

// plain is a Source that reports nothing (a routes file).
type plain struct{}

func (plain) Name() string                                        { return "file:/etc/routes.yaml" }
func (plain) Run(ctx context.Context, _ func(route.Config)) error { <-ctx.Done(); return nil }

// TestReadyzReportsSources: /readyz stays 200 while a source is away (the
// last table serves) and says it is stale without naming where the source
// lives; /api/sources gives the detail to allowed clients only.
func TestReadyzReportsSources(t *testing.T) {
	te := startEdge(t, route.Config{}, time.Second)
	r := &reporter{}
	r.connected.Store(true)
	a := NewAdmin(te.e, prometheus.NewRegistry(), AdminOptions{})
	a.ReportSources([]route.Source{plain{}, r})
	a.SetReady(true)
	h := a.Handler()
	get := func(peer, path string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = peer
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := get("203.0.113.5:4000", "/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz, source connected: %d %q", code, body)
	}
	r.connected.Store(false)
	code, body := get("203.0.113.5:4000", "/readyz")
	if code != 200 || !strings.HasPrefix(body, "ready\n") || !strings.Contains(body, "stale") {
		t.Fatalf("/readyz, source away: %d %q, want 200 ready and stale", code, body)
	}
	if strings.Contains(body, "10.0.9.4") || strings.Contains(body, "cp:7070") {
		t.Fatalf("/readyz tells anyone where the control plane is: %q", body)
	}
	if code, _ := get("203.0.113.5:4000", "/api/sources"); code != 403 {
		t.Fatalf("/api/sources from the internet: %d, want 403", code)
	}
	code, body = get("10.0.1.7:4000", "/api/sources")
	if code != 200 {
		t.Fatalf("/api/sources from the overlay: %d %s", code, body)
	}
	var views []struct {
		Name   string
		Status *struct {
			Connected, Synced bool
			Detail            map[string]string
		}
	}
	if err := json.Unmarshal([]byte(body), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 2 || views[0].Name != "file:/etc/routes.yaml" || views[0].Status != nil ||
		views[1].Status == nil || views[1].Status.Connected || !views[1].Status.Synced ||
		views[1].Status.Detail["server"] != "tcp://10.0.9.4:7070" {
		t.Fatalf("/api/sources: %s", body)
	}
}

// TestMergeKeepsLatestChange: the merged Config carries the latest change
// of its sources, for change-to-table latency.
func TestMergeKeepsLatestChange(t *testing.T) {
	early, late := time.Unix(100, 0), time.Unix(200, 0)
	got := Merge(route.DefaultCluster, route.Config{Changed: late}, route.Config{}, route.Config{Changed: early})
	if !got.Changed.Equal(late) {
		t.Fatalf("Changed = %v, want %v", got.Changed, late)
	}
}

// TestMergeOneSource: one source whose routes are all of the edge's cluster
// is its own merge; a route of another cluster still leaves it.
func TestMergeOneSource(t *testing.T) {
	cfg := route.Config{Routes: []route.Route{{Service: "a"}, {Service: "b"}}, Errors: []*route.LabelError{{Service: "x"}}, Changed: time.Unix(5, 0)}
	got := Merge(route.DefaultCluster, cfg)
	if len(got.Routes) != 2 || len(got.Errors) != 1 || !got.Changed.Equal(cfg.Changed) {
		t.Fatalf("one source: %+v", got)
	}
	cfg.Routes = append(cfg.Routes, route.Route{Service: "c", Cluster: "blue"})
	if got := Merge(route.DefaultCluster, cfg); len(got.Routes) != 2 {
		t.Fatalf("a blue route reached the default cluster: %+v", got.Routes)
	}
	if got := Merge(route.DefaultCluster, route.Config{}); got.Routes == nil {
		t.Fatal("an empty source merges to nil routes; want an empty list")
	}
}
