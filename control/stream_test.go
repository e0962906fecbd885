package control

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestSnapshotThenDeltas follows one edge through a series of changes: a
// snapshot first, then for each change one delta that carries only the
// items that changed, over HTTP/2.
func TestSnapshotThenDeltas(t *testing.T) {
	web, api := testRoute("web", "10.0.0.1:8080", "10.0.0.2:8080"), testRoute("api", "10.0.0.9:8080")
	web2 := web
	web2.Endpoints = []string{"10.0.0.1:8080", "10.0.0.3:8080"}
	web3 := web2
	web3.Path = "/app"
	bad := &route.LabelError{Service: "bad", Label: "swarmgate.port", Value: "eighty", Reason: "not a port"}
	steps := []struct {
		name string
		cfg  route.Config
		kind string
		set  []string
		del  []string
	}{
		{"first: snapshot", testConfig(api, web), "snapshot", []string{"e:api", "e:web", "r:api", "r:web"}, nil},
		{"endpoints of one route", testConfig(api, web2), "delta", []string{"e:web"}, nil},
		{"a route removed", testConfig(web2), "delta", nil, []string{"e:api", "r:api"}},
		{"a bad label", route.Config{Routes: []route.Route{web2}, Errors: []*route.LabelError{bad}}, "delta", []string{"x:bad"}, nil},
		{"a route changed, not its endpoints", route.Config{Routes: []route.Route{web3}, Errors: []*route.LabelError{bad}}, "delta", []string{"r:web"}, nil},
		{"the bad label fixed", testConfig(web3, api), "delta", []string{"e:api", "r:api"}, []string{"x:bad"}},
	}
	srv := startServer(t, "", ServerOptions{Heartbeat: time.Hour}, nil)
	srv.Update(steps[0].cfg)
	got := newConfigs()
	c := startClient(t, ClientOptions{Addrs: []string{srv.addr}}, got)
	prev := ""
	for i, st := range steps {
		if i > 0 {
			srv.Update(st.cfg)
		}
		got.waitFor(t, st.cfg, st.name)
		_, proto, frames := c.tap.session(t, 0)
		if proto != "HTTP/2.0" {
			t.Fatalf("stream over %s, want HTTP/2.0", proto)
		}
		frames = nonPing(frames)
		if len(frames) != i+1 {
			t.Fatalf("%s: %d frames, want %d", st.name, len(frames), i+1)
		}
		f := frames[i]
		if f.T != st.kind || !slices.Equal(sortedKeys(f.Set), st.set) || !slices.Equal(f.Del, st.del) {
			t.Errorf("%s: frame %s set %v del %v, want %s set %v del %v", st.name, f.T, sortedKeys(f.Set), f.Del, st.kind, st.set, st.del)
		}
		if f.V != srv.Version() || f.From != prev {
			t.Errorf("%s: frame from %q to %q; want from %q to the server's %q", st.name, f.From, f.V, prev, srv.Version())
		}
		if s := c.State(); !s.Connected || !s.Synced || s.Version != srv.Version() || s.Routes != len(st.cfg.Routes) {
			t.Errorf("%s: client state %+v", st.name, s)
		}
		t.Logf("%s: %s of %d bytes", st.name, f.T, f.size)
		prev = f.V
	}
	if n := got.count(); n != len(steps) {
		t.Errorf("%d updates, want %d", n, len(steps))
	}

	// The same routes with another stamp: no version, no frame, no update.
	v := srv.Version()
	same := steps[len(steps)-1].cfg
	same.Changed = time.Now().Add(time.Hour)
	srv.Update(same)
	if srv.Version() != v || metricValue(t, srv.reg, "swarmgate_control_versions_total") != float64(len(steps)) {
		t.Errorf("a Config that differs only in Changed made a version")
	}
}

// TestResume reconnects an edge after changes made while it was away: it
// asks for its version and gets one delta of what changed, or a snapshot
// when the history no longer reaches back to it.
func TestResume(t *testing.T) {
	tests := []struct {
		name     string
		history  int
		changes  int
		kind     string
		snapshot string // reason the server counts, "" for a delta
		updates  int    // updates on reconnection
	}{
		{"nothing changed", 8, 0, "delta", "", 0},
		{"history has the version", 8, 3, "delta", "", 1},
		{"changed and changed back", 8, -3, "delta", "", 0},
		{"history gone", 2, 5, "snapshot", "resync", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
			srv := startServer(t, "", ServerOptions{History: tt.history, Heartbeat: time.Hour, ResumeWait: -1}, nil)
			first := manyRoutes(50, 0)
			first.Changed = t0
			srv.Update(first)
			got := newConfigs()
			c := newTestClient(t, ClientOptions{Addrs: []string{srv.addr}})
			c.start(t, got)
			got.waitFor(t, first, "first sync")
			v1 := srv.Version()
			c.stop(t)

			// Change i adds a service and moves the endpoints of another;
			// negative: and then everything is put back.
			want := first
			for i := 1; i <= max(tt.changes, -tt.changes); i++ {
				want = testConfig(append(slices.Clone(want.Routes), testRoute(fmt.Sprintf("new%d", i), "10.9.9.9:80"))...)
				want.Routes[i].Endpoints = []string{"10.8.8.8:8080"}
				want.Changed = t0.Add(time.Duration(i) * time.Second)
				srv.Update(want)
			}
			if tt.changes < 0 {
				srv.Update(first)
				want = first
			}
			before := got.count()
			c.start(t, got)
			testkit.Eventually(t, 10*time.Second, 0, func() error {
				if c.tap.count() < 2 || len(nonPing(func() []tapFrame { _, _, f := c.tap.session(t, 1); return f }())) == 0 {
					return fmt.Errorf("no frame on the second stream")
				}
				return nil
			})
			got.waitFor(t, want, "after the reconnection")
			url, _, frames := c.tap.session(t, 1)
			if !strings.Contains(url, "version="+v1) {
				t.Errorf("reconnected to %s, want version=%s", url, v1)
			}
			f := nonPing(frames)[0]
			if f.T != tt.kind {
				t.Fatalf("first frame on reconnection: %s, want %s", f.T, tt.kind)
			}
			_, _, firstFrames := c.tap.session(t, 0)
			snapSize := firstFrames[0].size
			switch tt.kind {
			case "delta":
				if f.From != v1 || f.V != srv.Version() {
					t.Errorf("delta from %s to %s, want from %s to %s", f.From, f.V, v1, srv.Version())
				}
				if f.size*4 > snapSize {
					t.Errorf("resume delta of %d bytes; the snapshot was %d", f.size, snapSize)
				}
				if wantKeys := 3 * max(tt.changes, 0); len(f.keys()) != wantKeys {
					t.Errorf("delta keys %v, want %d (per change a route, its endpoints and another's endpoints)", f.keys(), wantKeys)
				}
				if tt.changes > 0 && !f.At.Equal(t0.Add(time.Second)) {
					t.Errorf("delta stamped %v, want the first change it brings, %v", f.At, t0.Add(time.Second))
				}
				if n := metricValue(t, srv.reg, "swarmgate_control_resumes_total"); n != 1 {
					t.Errorf("resumes %v, want 1", n)
				}
			case "snapshot":
				// At least one, for the stream that asked for the old
				// version. Not exactly one per request: on a starved
				// machine the client may have had to ask twice, and the
				// HTTP/2 transport retries a stream that failed before
				// its response on a new one, which the server counts
				// again and the tap never sees.
				if n := metricValue(t, srv.reg, "swarmgate_control_snapshots_total", "reason", tt.snapshot); n < 1 {
					t.Errorf("snapshots{reason=%s} = %v, want one for each stream that asked for version %s (%d requests)", tt.snapshot, n, v1, c.tap.askedFor("version="+v1))
				}
			}
			if n := got.count() - before; n != tt.updates {
				t.Errorf("%d updates on reconnection, want %d", n, tt.updates)
			}
		})
	}
}

// TestSlowEdgeDoesNotDelayOthers stalls one edge (its update blocks, so it
// stops reading) while versions follow each other: the other edges get
// every version promptly, the stalled one is dropped at the write timeout,
// and once it reads again it reconnects and resyncs.
func TestSlowEdgeDoesNotDelayOthers(t *testing.T) {
	// Long enough that a fast edge held up by the stalled one (it would
	// wait out the whole timeout) stands far apart from one slowed by a
	// starved machine (seconds at worst under -race on two busy cores).
	const writeTimeout = 8 * time.Second
	srv := startServer(t, "", ServerOptions{History: 4, WriteTimeout: writeTimeout, Heartbeat: time.Hour, ResumeWait: -1}, nil)
	srv.Update(manyRoutes(1000, 0))

	var fast []*testClient
	for range 3 {
		got := newConfigs()
		fast = append(fast, startClient(t, ClientOptions{Addrs: []string{srv.addr}}, got))
		got.waitFor(t, manyRoutes(1000, 0), "fast edge first sync")
	}
	// The slow edge's transport buffers 64 KiB of its stream, not 1 MiB.
	tr := newTransport(nil)
	tr.HTTP2.MaxReceiveBufferPerStream = 64 << 10
	tr.HTTP2.MaxReceiveBufferPerConnection = 64 << 10
	t.Cleanup(tr.CloseIdleConnections)
	slowGot := newConfigs()
	slowTap := &tap{rt: tr}
	slow := startClient(t, ClientOptions{Addrs: []string{srv.addr}, Transport: slowTap}, slowGot)
	slowGot.waitFor(t, manyRoutes(1000, 0), "slow edge first sync")
	stuck := make(chan struct{})
	slowGot.mu.Lock()
	slowGot.block = stuck
	slowGot.mu.Unlock()

	const versions = 20
	var worstUpdate, worstDelivery time.Duration
	for g := 1; g <= versions; g++ {
		cfg := manyRoutes(1000, g)
		start := time.Now()
		srv.Update(cfg)
		updated := time.Now()
		worstUpdate = max(worstUpdate, updated.Sub(start))
		for _, c := range fast {
			c.got.waitFor(t, cfg, fmt.Sprintf("fast edge at version %d", g))
		}
		// From the end of Update: what a stalled edge would add is its
		// write timeout; the CPU a busy machine takes to encode is not it.
		worstDelivery = max(worstDelivery, time.Since(updated))
	}
	t.Logf("%d versions of 1,000 endpoint sets (%d-byte deltas): slowest Update %v, slowest delivery to all fast edges after it %v",
		versions, len(srv.cur.Load().live), worstUpdate.Round(time.Millisecond), worstDelivery.Round(time.Millisecond))
	if worstDelivery >= writeTimeout/2 {
		t.Errorf("a fast edge waited %v for a version: the stalled edge held it up (write timeout %v)", worstDelivery, writeTimeout)
	}
	testkit.Eventually(t, 3*writeTimeout, 0, func() error {
		if n := metricValue(t, srv.reg, "swarmgate_control_stalled_edges_total"); n != 1 {
			return fmt.Errorf("stalled edges %v, want 1", n)
		}
		return nil
	})
	for i, c := range fast {
		if n := c.tap.count(); n != 1 {
			t.Errorf("fast edge %d reconnected (%d streams)", i, n)
		}
	}

	close(stuck)
	slowGot.waitFor(t, manyRoutes(1000, versions), "the slow edge after it resumed reading")
	if n := metricValue(t, srv.reg, "swarmgate_control_snapshots_total", "reason", "resync"); n != 1 {
		t.Errorf("resync snapshots %v, want 1 (the slow edge's version left the 4-version history)", n)
	}
	for i := range slowTap.count() {
		url, _, frames := slowTap.session(t, i)
		var kinds []string
		for _, f := range frames {
			kinds = append(kinds, f.T)
		}
		t.Logf("slow edge stream %d (%s): %v", i, url, kinds)
	}
	if s := slow.State(); s.Version != srv.Version() {
		t.Errorf("slow edge at %s, want %s", s.Version, srv.Version())
	}
}

// TestFailoverBetweenReplicas runs two replicas fed the same states (with
// different stamps, as two watchers of one Swarm would see them): they
// serve the same versions, and an edge whose replica dies resumes on the
// other with a delta.
func TestFailoverBetweenReplicas(t *testing.T) {
	tests := []struct {
		name string
		// lagging: the second replica reaches the edge's version only
		// after the edge arrives; never: it skips that version.
		lagging, never bool
		kind           string
	}{
		{name: "the other replica has the history", kind: "delta"},
		{name: "the other replica catches up within the resume wait", lagging: true, kind: "delta"},
		{name: "the other replica never had that version", never: true, kind: "snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startServer(t, "", ServerOptions{Name: "a", Heartbeat: time.Hour}, nil)
			b := startServer(t, "", ServerOptions{Name: "b", Heartbeat: time.Hour, ResumeWait: 2 * time.Second}, nil)
			states := []route.Config{manyRoutes(20, 0), manyRoutes(20, 1), manyRoutes(20, 2)}
			for i, cfg := range states[:2] {
				ca, cb := cfg, cfg
				ca.Changed, cb.Changed = time.Now(), time.Now().Add(time.Duration(i+1)*time.Millisecond)
				a.Update(ca)
				if tt.lagging && i == 1 || tt.never && i == 1 {
					continue
				}
				b.Update(cb)
				if a.Version() != b.Version() {
					t.Fatalf("state %d: replicas at %s and %s", i, a.Version(), b.Version())
				}
			}
			got := newConfigs()
			c := startClient(t, ClientOptions{Addrs: []string{a.addr, b.addr}}, got)
			got.waitFor(t, states[1], "synced on a")
			v := c.State().Version

			a.stop()
			if tt.lagging {
				testkit.Eventually(t, 10*time.Second, 0, func() error {
					if len(b.Status().Edges) == 0 {
						return fmt.Errorf("the edge has not reached b yet")
					}
					return nil
				})
				b.Update(states[1])
			}
			b.Update(states[2])
			got.waitFor(t, states[2], "after failing over to b")
			_, _, frames := c.tap.session(t, c.tap.count()-1)
			f := nonPing(frames)[0]
			if f.T != tt.kind {
				t.Errorf("first frame from b: %s, want %s", f.T, tt.kind)
			}
			if f.T == "delta" && f.From != v {
				t.Errorf("delta from %s, want the edge's version %s", f.From, v)
			}
			if s := c.State(); s.Server != b.addr || !s.Connected || s.Version != b.Version() {
				t.Errorf("client state %+v", s)
			}
		})
	}
}

// TestServerRestart stops the only replica: the edge keeps its Config and
// says so, then reconnects to the restarted replica, which holds no
// history: the same state costs an empty delta (the version is the
// content), a changed one a snapshot.
func TestServerRestart(t *testing.T) {
	tests := []struct {
		name    string
		after   route.Config
		kind    string
		updates int
	}{
		{"same state after the restart", manyRoutes(30, 1), "delta", 0},
		{"state changed meanwhile", manyRoutes(30, 2), "snapshot", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, "", ServerOptions{Heartbeat: time.Hour, ResumeWait: -1}, nil)
			srv.Update(manyRoutes(30, 0))
			srv.Update(manyRoutes(30, 1))
			got := newConfigs()
			c := startClient(t, ClientOptions{Addrs: []string{srv.addr}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, got)
			got.waitFor(t, manyRoutes(30, 1), "before the restart")
			n := got.count()

			srv.stop()
			testkit.Eventually(t, 10*time.Second, 0, func() error {
				if s := c.State(); s.Connected || s.LastError == "" || metricValue(t, c.reg, "swarmgate_control_client_reconnects_total") < 3 {
					return fmt.Errorf("client still connected or not retrying: %+v", s)
				}
				return nil
			})
			if s := c.State(); !s.Synced || s.Routes != 30 {
				t.Errorf("while the control plane is down: %+v; want the last Config kept", s)
			}
			if got.count() != n {
				t.Errorf("update called while the control plane was down")
			}

			again := startServer(t, srv.hostPort(), ServerOptions{Heartbeat: time.Hour, ResumeWait: -1}, nil)
			again.Update(tt.after)
			testkit.Eventually(t, 10*time.Second, 0, func() error {
				if s := c.State(); !s.Connected || s.Version != again.Version() {
					return fmt.Errorf("not reconnected: %+v", s)
				}
				return nil
			})
			got.waitFor(t, tt.after, "after the restart")
			_, _, frames := c.tap.session(t, c.tap.count()-1)
			if f := nonPing(frames)[0]; f.T != tt.kind || f.T == "delta" && len(f.keys()) != 0 {
				t.Errorf("first frame after the restart: %s with %d keys, want %s", f.T, len(f.keys()), tt.kind)
			}
			if d := got.count() - n; d != tt.updates {
				t.Errorf("%d updates after the restart, want %d", d, tt.updates)
			}
		})
	}
}

// TestIdleTimeout: a stream that carries no heartbeat is given up; one
// with heartbeats is kept, however quiet the configuration.
func TestIdleTimeout(t *testing.T) {
	tests := []struct {
		name       string
		heartbeat  time.Duration
		reconnects bool
	}{
		{"heartbeats keep the stream", 50 * time.Millisecond, false},
		{"a silent stream is given up", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, "", ServerOptions{Heartbeat: tt.heartbeat}, nil)
			srv.Update(manyRoutes(3, 0))
			got := newConfigs()
			c := startClient(t, ClientOptions{Addrs: []string{srv.addr}, IdleTimeout: 300 * time.Millisecond, MinBackoff: 10 * time.Millisecond}, got)
			got.waitFor(t, manyRoutes(3, 0), "first sync")
			time.Sleep(time.Second) // what is tested is what does not happen meanwhile
			if got := c.tap.count() > 1; got != tt.reconnects {
				t.Errorf("reconnected: %v, want %v (%d streams)", got, tt.reconnects, c.tap.count())
			}
			if got.count() != 1 {
				t.Errorf("%d updates, want 1", got.count())
			}
			if n := metricValue(t, c.reg, "swarmgate_control_client_reconnects_total") > 0; n != tt.reconnects {
				t.Errorf("reconnects counted: %v, want %v", n, tt.reconnects)
			}
		})
	}
}

// TestChangeToTableLatency: the client observes, for each delta, the time
// from the change's stamp to update's return, on its own clock.
func TestChangeToTableLatency(t *testing.T) {
	clk := testkit.NewClock()
	srv := startServer(t, "", ServerOptions{Heartbeat: time.Hour, Now: clk.Now}, nil)
	first := manyRoutes(3, 0)
	first.Changed = clk.Now().Add(-time.Hour) // a snapshot: not a change to time
	srv.Update(first)
	got := newConfigs()
	c := startClient(t, ClientOptions{Addrs: []string{srv.addr}, Now: clk.Now}, got)
	got.waitFor(t, first, "snapshot")
	next := manyRoutes(3, 1)
	next.Changed = clk.Now().Add(-1500 * time.Millisecond)
	srv.Update(next)
	got.waitFor(t, next, "delta")
	if c, _ := got.last(); !c.Changed.Equal(next.Changed) {
		t.Errorf("Config.Changed %v, want the source's %v", c.Changed, next.Changed)
	}
	mfs, _ := c.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "swarmgate_control_change_to_table_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() != 1.5 {
				t.Errorf("histogram: %d samples, sum %v; want 1 of 1.5s", h.GetSampleCount(), h.GetSampleSum())
			}
			return
		}
	}
	t.Error("no change-to-table histogram")
}

// TestStreamRequests checks what the stream answers besides a stream.
func TestStreamRequests(t *testing.T) {
	srv := startServer(t, "", ServerOptions{MaxEdges: 1, Heartbeat: time.Hour}, nil)
	base := "http://" + srv.hostPort() + StreamPath
	h1 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(h1.CloseIdleConnections)
	do := func(method, url string) (int, string) {
		req, _ := http.NewRequest(method, url, nil)
		resp, err := h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		return resp.StatusCode, line
	}
	if code, _ := do("GET", base); code != http.StatusServiceUnavailable {
		t.Errorf("before any Config: %d, want 503", code)
	}
	srv.Update(manyRoutes(2, 0))
	for _, tt := range []struct {
		method, query string
		code          int
	}{
		{"POST", "", http.StatusMethodNotAllowed},
		{"GET", "?version=zz", http.StatusBadRequest},
		{"GET", "?version=" + strings.Repeat("a", 33), http.StatusBadRequest},
	} {
		if code, _ := do(tt.method, base+tt.query); code != tt.code {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.query, code, tt.code)
		}
	}
	if code, _ := do("GET", "http://"+srv.hostPort()+"/other"); code != http.StatusNotFound {
		t.Errorf("other path: %d", code)
	}

	// HTTP/1.1 works too (curl), and the one edge allowed holds its place.
	req, _ := http.NewRequest("GET", base, nil)
	resp, err := h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, `{"t":"snapshot","v":"`+srv.Version()+`"`) || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("HTTP/1.1 stream: %q %v (%s)", line, err, resp.Header.Get("Content-Type"))
	}
	if code, _ := do("GET", base); code != http.StatusServiceUnavailable {
		t.Errorf("beyond MaxEdges: %d, want 503", code)
	}
	resp.Body.Close()
	if n := metricValue(t, srv.reg, "swarmgate_control_rejected_streams_total"); n != 4 {
		t.Errorf("rejected streams %v, want 4", n)
	}
}

// TestClientDistrustsABadState serves a delta whose result does not hash
// to the version it announces: the client keeps its last Config, drops its
// state and asks the next time for a snapshot.
func TestClientDistrustsABadState(t *testing.T) {
	good := startServer(t, "", ServerOptions{Heartbeat: time.Hour}, nil)
	good.Update(manyRoutes(2, 0))
	snap := good.cur.Load().snapshotFrame()
	v0 := good.Version()
	good.Update(manyRoutes(2, 1))
	delta := string(good.cur.Load().live)
	forged := strings.Replace(delta, `"v":"`+good.Version()+`"`, `"v":"`+strings.Repeat("0", versionLen)+`"`, 1)

	var queries []string
	var n atomic.Int32
	fake := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, string(snap))
		if n.Add(1) == 1 {
			io.WriteString(w, forged)
			return
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	fake.EnableHTTP2 = true
	fake.Config.Protocols = new(http.Protocols)
	fake.Config.Protocols.SetUnencryptedHTTP2(true)
	fake.Start()
	t.Cleanup(fake.Close)

	got := newConfigs()
	c := startClient(t, ClientOptions{Addrs: []string{fake.URL}, MinBackoff: 10 * time.Millisecond}, got)
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		if n.Load() < 2 || !c.State().Connected {
			return fmt.Errorf("no second stream yet")
		}
		return nil
	})
	c.stop(t)
	fake.CloseClientConnections()
	if got.count() != 1 {
		t.Errorf("%d updates, want 1: the forged delta must not reach the edge", got.count())
	}
	if len(queries) < 2 || queries[0] != "" || queries[1] != "" {
		t.Errorf("queries %q: after a bad state the client must ask for a snapshot (no version)", queries)
	}
	if s := c.State(); s.Version != v0 {
		t.Errorf("version %s, want %s", s.Version, v0)
	}
}

// TestIdleStreamOutlivesTheWriteTimeout keeps a stream with nothing to send
// open for several write timeouts: the timeout bounds a write, not the
// silence between two (an idle stream was reset, INTERNAL_ERROR, every
// WriteTimeout when the deadline stayed set after a write).
func TestIdleStreamOutlivesTheWriteTimeout(t *testing.T) {
	srv := startServer(t, "", ServerOptions{Heartbeat: 300 * time.Millisecond, WriteTimeout: 100 * time.Millisecond}, nil)
	srv.Update(testConfig(testRoute("web", "10.0.0.1:8080")))
	got := newConfigs()
	c := startClient(t, ClientOptions{Addrs: []string{srv.addr}}, got)
	got.waitFor(t, testConfig(testRoute("web", "10.0.0.1:8080")), "the first table")
	time.Sleep(time.Second) // ten write timeouts, three heartbeats
	if n := c.tap.count(); n != 1 {
		t.Errorf("%d streams; want the first one still open (last error %q)", n, c.State().LastError)
	}
	if _, _, frames := c.tap.session(t, 0); len(frames) < 3 {
		t.Errorf("%d frames on the stream; want the snapshot and heartbeats", len(frames))
	}
}
