package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// goroutineID is the calling goroutine's id, from its stack's header.
func goroutineID() string {
	buf := make([]byte, 64)
	return strings.Fields(string(buf[:runtime.Stack(buf, false)]))[1]
}

// pooledEdge is a Server on TLS (h2 and http/1.1) whose Handler is
// wrapped after NewServer, as the edge wraps it, by test handlers for the
// paths under /t/; the rest goes to the proxy.
type pooledEdge struct {
	srv    *Server
	client *http.Client
	url    string
	logs   *observer.ObservedLogs
}

func startPooled(t *testing.T, stdlib bool, test http.Handler) *pooledEdge {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	p := New(Options{Logger: zap.New(core), Registerer: prometheus.NewRegistry(), DialTimeout: time.Second})
	backend := testkit.Backend(t, "b")
	p.Update(route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(backend))}})
	srv := p.NewServer("https", ServerOptions{StdlibHTTP1: stdlib})
	inner := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/t/") {
			test.ServeHTTP(w, r)
			return
		}
		inner.ServeHTTP(w, r)
	})
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS()
	conf := &tls.Config{Certificates: cert.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
	roots := cert.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cert.Close()
	srv.TLSConfig = conf
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(tls.NewListener(ln, conf))
	tr := &http.Transport{TLSClientConfig: roots, ForceAttemptHTTP2: true}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		p.Close()
	})
	return &pooledEdge{srv: srv, client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		url: "https://" + ln.Addr().String(), logs: logs}
}

func (e *pooledEdge) get(t *testing.T, ctx context.Context, path string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
	req.Host = "app.example.org"
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.ProtoMajor != 2 {
		t.Fatalf("%s: %s, want HTTP/2", path, resp.Proto)
	}
	return resp, b, err
}

// TestH2RequestsOnWorkers: with either engine, HTTP/2 requests run on the
// Server's workers (one after another on the same one, not on the
// stream's goroutine), and the handler keeps what net/http gives it:
// Flush and trailers, the request's context ending when the client gives
// up, http.ErrAbortHandler resetting the stream without a log line, and a
// panic resetting it and logged with the worker's stack.
func TestH2RequestsOnWorkers(t *testing.T) {
	engines(t, func(t *testing.T, stdlib bool) {
		ended := make(chan error, 1)
		e := startPooled(t, stdlib, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/t/goid":
				io.WriteString(w, goroutineID())
			case "/t/trailer":
				w.Header().Set("Trailer", "X-Sum")
				io.WriteString(w, "part")
				w.(http.Flusher).Flush()
				w.Header().Set("X-Sum", "42")
			case "/t/wait":
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					ended <- r.Context().Err()
				case <-time.After(5 * time.Second):
					ended <- errors.New("the request's context did not end")
				}
			case "/t/abort":
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			case "/t/panic":
				panicInHandler()
			}
		}))
		ctx := context.Background()
		_, first, err := e.get(t, ctx, "/t/goid")
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_, id, err := e.get(t, ctx, "/t/goid")
			if err != nil {
				t.Fatal(err)
			}
			if string(id) != string(first) {
				t.Fatalf("requests one after another ran on goroutines %s and %s: not on a worker kept", first, id)
			}
		}
		resp, body, err := e.get(t, ctx, "/t/trailer")
		if err != nil || string(body) != "part" || resp.Trailer.Get("X-Sum") != "42" {
			t.Fatalf("trailer: %q %v, trailer %v", body, err, resp.Trailer)
		}
		if resp, body, err := e.get(t, ctx, "/"); err != nil || resp.StatusCode != 200 || string(body) != "b GET /" {
			t.Fatalf("through the proxy: %v %q", err, body)
		}

		cctx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(cctx, "GET", e.url+"/t/wait", nil)
		resp, err = e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Fatalf("the client gave up: the handler saw %v", err)
		}

		if _, body, err := e.get(t, ctx, "/t/abort"); err == nil {
			t.Fatalf("ErrAbortHandler: a complete response %q, want the stream reset", body)
		}
		if _, _, err := e.get(t, ctx, "/t/panic"); err == nil {
			t.Fatal("panic: a complete response, want the stream reset")
		}
		var panics []string // net/http logs after the reset
		for deadline := time.Now().Add(5 * time.Second); len(panics) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for _, l := range e.logs.All() {
				if m, ok := l.ContextMap()["message"].(string); ok && strings.Contains(m, "panic serving") {
					panics = append(panics, m)
				}
			}
		}
		if len(panics) != 1 || !strings.Contains(panics[0], "handler went wrong") ||
			!strings.Contains(panics[0], "panicInHandler") || !strings.Contains(panics[0], "workpool") {
			t.Fatalf("panic log lines (want one, with the value and the worker's stack): %q", panics)
		}
		if _, id, err := e.get(t, ctx, "/t/goid"); err != nil || len(id) == 0 {
			t.Fatalf("after the panics: %q %v", id, err)
		}
	})
}

func panicInHandler() { panic("handler went wrong") }

// onWorkers waits for a goroutine serving the proxy on a worker, and
// reports whether one was seen within 5 s.
func onWorkers() bool {
	buf := make([]byte, 4<<20)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "(*Proxy).ServeHTTP(") && strings.Contains(g, "workpool.(*Pool).loop") {
				return true
			}
		}
	}
	return false
}

// TestH3RequestsOnWorkers: an HTTP/3 request runs through the proxy on a
// worker of the HTTP3Server, and is answered; Shutdown ends the idle
// workers.
func TestH3RequestsOnWorkers(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	}))
	defer backend.Close()
	e := startH3(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(backend))}}, ServerOptions{})
	done := make(chan string, 1)
	go func() {
		resp, err := e.client.Get("https://app.example.org/slow")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	seen := onWorkers()
	close(release)
	if got := <-done; got != "done" {
		t.Fatalf("the request: %q", got)
	}
	if !seen {
		t.Fatal("no HTTP/3 request through the proxy ran on a worker")
	}
}
