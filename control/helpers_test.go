package control

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// testRoute is a published route of service svc with endpoints eps.
func testRoute(svc string, eps ...string) route.Route {
	return route.Route{
		Service: svc, ServiceID: "id-" + svc, CreatedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Hosts: []string{svc + ".example.org"}, Path: "/", Weight: route.DefaultWeight, Port: 8080,
		Backend: route.BackendTask, Balancer: route.DefaultBalancer, TLS: route.TLSOff, BackendTLS: route.BackendTLSOff,
		Timeout: route.DefaultTimeout, Endpoints: eps,
	}
}

func testConfig(routes ...route.Route) route.Config {
	return route.Config{Routes: routes}
}

// manyRoutes is a Config of n services whose endpoints carry the given
// generation in their last octet, so that each generation changes every
// endpoint set and no route.
func manyRoutes(n, generation int) route.Config {
	cfg := route.Config{}
	for i := range n {
		cfg.Routes = append(cfg.Routes, testRoute(fmt.Sprintf("svc%04d", i),
			fmt.Sprintf("10.%d.%d.%d:8080", i/250, i%250, generation%250+1),
			fmt.Sprintf("10.%d.%d.%d:8080", i/250, i%250, (generation+1)%250+1)))
	}
	return cfg
}

// normalize puts a Config in the form the Client delivers: routes by ID,
// errors by service, times in UTC, empty slices nil, no Changed.
func normalize(c route.Config) route.Config {
	out := route.Config{}
	for _, r := range c.Routes {
		r.CreatedAt = r.CreatedAt.UTC()
		for _, s := range []*[]string{&r.Hosts, &r.SNI, &r.Endpoints} {
			if len(*s) == 0 {
				*s = nil
			}
		}
		if len(r.Redirects) == 0 {
			r.Redirects = nil
		}
		out.Routes = append(out.Routes, r)
	}
	slices.SortStableFunc(out.Routes, func(a, b route.Route) int { return strings.Compare(a.ID(), b.ID()) })
	out.Errors = slices.Clone(c.Errors)
	slices.SortStableFunc(out.Errors, func(a, b *route.LabelError) int { return strings.Compare(a.Service, b.Service) })
	return out
}

func sameConfig(a, b route.Config) bool { return reflect.DeepEqual(normalize(a), normalize(b)) }

// testServer is a Server on a real loopback listener.
type testServer struct {
	*Server
	addr string // tcp://host:port
	http *http.Server
	reg  *prometheus.Registry
	done chan struct{}
}

// startServer serves a new Server on addr ("" for any port), with TLS when
// tlsConf is set. It stops when the test ends, if not before.
func startServer(t *testing.T, addr string, o ServerOptions, tlsConf *tls.Config) *testServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// A restarted server takes its predecessor's port: it may linger briefly.
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if o.Registerer == nil {
		o.Registerer = reg
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	s := &testServer{Server: NewServer(o), addr: "tcp://" + ln.Addr().String(), reg: reg, done: make(chan struct{})}
	s.http = s.HTTPServer(tlsConf)
	if tlsConf != nil {
		ln = tls.NewListener(ln, s.http.TLSConfig)
	}
	go func() {
		defer close(s.done)
		s.http.Serve(ln)
	}()
	t.Cleanup(s.stop)
	return s
}

// stop ends the streams and closes the listener and every connection.
func (s *testServer) stop() {
	s.Close()
	s.http.Close()
	<-s.done
	// Handlers log until they return; the test's logger must outlive them.
	for deadline := time.Now().Add(5 * time.Second); len(s.Status().Edges) > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// hostPort is the server's address without the scheme.
func (s *testServer) hostPort() string { return strings.TrimPrefix(s.addr, "tcp://") }

// tap is a RoundTripper that keeps every byte of every stream (200
// response) the client read, per request.
type tap struct {
	rt       http.RoundTripper
	mu       sync.Mutex
	sessions []*tapSession
	asked    []string // the URL of every request, answered or not
}

type tapSession struct {
	url   string
	proto string
	buf   bytes.Buffer // guarded by tap.mu
}

func newTap(tlsConf *tls.Config) *tap { return &tap{rt: newTransport(tlsConf)} }

func (t *tap) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.asked = append(t.asked, req.URL.String())
	t.mu.Unlock()
	resp, err := t.rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err // only streams are recorded
	}
	s := &tapSession{url: req.URL.String(), proto: resp.Proto}
	t.mu.Lock()
	t.sessions = append(t.sessions, s)
	t.mu.Unlock()
	resp.Body = &tapBody{ReadCloser: resp.Body, t: t, s: s}
	return resp, nil
}

func (t *tap) close() { t.rt.(*http.Transport).CloseIdleConnections() }

type tapBody struct {
	io.ReadCloser
	t *tap
	s *tapSession
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.t.mu.Lock()
	b.s.buf.Write(p[:n])
	b.t.mu.Unlock()
	return n, err
}

// count returns the number of streams opened.
// askedFor counts the requests whose URL contains s, answered or not: a
// stream the server answered may still fail on the client before it is a
// session (a starved machine's timeouts).
func (t *tap) askedFor(s string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, u := range t.asked {
		if strings.Contains(u, s) {
			n++
		}
	}
	return n
}

func (t *tap) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions)
}

// session returns stream i's URL, protocol and complete frames.
func (t *tap) session(tb testing.TB, i int) (url, proto string, frames []tapFrame) {
	tb.Helper()
	t.mu.Lock()
	s := t.sessions[i]
	data := slices.Clone(s.buf.Bytes())
	t.mu.Unlock()
	// A stream cut mid-frame (a dropped edge) ends with part of one.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var f wireFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			tb.Fatalf("stream %d: bad frame %.200q: %v", i, sc.Bytes(), err)
		}
		frames = append(frames, tapFrame{wireFrame: f, size: len(sc.Bytes()) + 1})
	}
	return s.url, s.proto, frames
}

// all returns every byte the client received.
func (t *tap) all() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []byte
	for _, s := range t.sessions {
		out = append(out, s.buf.Bytes()...)
	}
	return out
}

type tapFrame struct {
	wireFrame
	size int
}

func (f tapFrame) keys() []string {
	keys := sortedKeys(f.Set)
	return append(keys, f.Del...)
}

// nonPing returns the frames that are not heartbeats.
func nonPing(fs []tapFrame) []tapFrame {
	return slices.DeleteFunc(fs, func(f tapFrame) bool { return f.T == "ping" })
}

// configs records what a Client delivers.
type configs struct {
	mu     sync.Mutex
	list   []route.Config
	times  []time.Time
	notify chan struct{}
	block  chan struct{} // if not nil, update waits until it is closed
}

func newConfigs() *configs { return &configs{notify: make(chan struct{}, 1)} }

func (r *configs) update(c route.Config) {
	r.mu.Lock()
	block := r.block
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	r.mu.Lock()
	r.list = append(r.list, c)
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *configs) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.list)
}

func (r *configs) last() (route.Config, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) == 0 {
		return route.Config{}, false
	}
	return r.list[len(r.list)-1], true
}

// waitFor waits until the latest Config is want.
func (r *configs) waitFor(t *testing.T, want route.Config, what string) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		c, ok := r.last()
		if !ok {
			return errors.New(what + ": no Config yet")
		}
		if !sameConfig(c, want) {
			return fmt.Errorf("%s: latest Config has %d routes, %d errors, want %d, %d",
				what, len(c.Routes), len(c.Errors), len(want.Routes), len(want.Errors))
		}
		return nil
	})
}

// testClient is a Client running until the test ends (or stop).
type testClient struct {
	*Client
	got    *configs
	tap    *tap
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startClient(t *testing.T, o ClientOptions, got *configs) *testClient {
	t.Helper()
	c := newTestClient(t, o)
	c.start(t, got)
	return c
}

func newTestClient(t *testing.T, o ClientOptions) *testClient {
	t.Helper()
	tc := &testClient{reg: prometheus.NewRegistry()}
	if o.Transport == nil {
		tc.tap = newTap(o.TLS)
		o.Transport = tc.tap
		t.Cleanup(tc.tap.close)
	}
	if o.Registerer == nil {
		o.Registerer = tc.reg
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 200 * time.Millisecond
	}
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	tc.Client = c
	return tc
}

// start runs the client until stop or the end of the test.
func (c *testClient) start(t *testing.T, got *configs) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.got, c.cancel, c.done = got, cancel, make(chan error, 1)
	go func() { c.done <- c.Run(ctx, got.update) }()
	t.Cleanup(func() { c.stop(t) })
}

func (c *testClient) stop(t *testing.T) {
	t.Helper()
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	if err := <-c.done; err != nil {
		t.Errorf("Client.Run: %v", err)
	}
}

// metricValue reads a counter or gauge of a registry, summed over labels
// that match.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
