package socketproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// testProxy is a Proxy served on a loopback listener.
type testProxy struct {
	*Proxy
	reg  *prometheus.Registry
	addr string // host:port of the listener
	url  string // http://addr
}

// startProxy serves a Proxy for upstream on loopback until the test ends.
// tlsConf may be nil.
func startProxy(t *testing.T, o Options, tlsConf *tls.Config) *testProxy {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.NewServer(tlsConf)
	go func() {
		if tlsConf != nil {
			srv.ServeTLS(ln, "", "")
		} else {
			srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		p.EndStreams()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		p.Close()
	})
	return &testProxy{Proxy: p, reg: reg, addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
}

// newClient returns an HTTP client whose idle connections are closed when
// the test ends.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// waitFor polls cond until it holds or five seconds pass. It waits for an
// event the test cannot be told about directly (a goroutine reaching a
// point); correctness never depends on how long it takes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, time.Millisecond, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

// tap sits between the socket-proxy and the Docker Engine: a reverse proxy
// on loopback that records every request and counts every byte it reads
// from the socket-proxy, before forwarding to the real socket.
type tap struct {
	addr  string
	bytes atomic.Int64 // read from the socket-proxy's connections
	mu    sync.Mutex   // guards reqs
	reqs  []string     // "METHOD request-uri" as received
}

func (tp *tap) requests() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.reqs...)
}

// startTap forwards to the Docker socket at sock until the test ends.
func startTap(t *testing.T, sock string) *tap {
	t.Helper()
	tp := &tap{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	// A plain forwarder rather than httputil.ReverseProxy, which holds a
	// stream's response headers back until the first body byte.
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tp.mu.Lock()
			tp.reqs = append(tp.reqs, r.Method+" "+r.RequestURI)
			tp.mu.Unlock()
			out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://docker"+r.RequestURI, nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			out.Header = r.Header.Clone()
			resp, err := tr.RoundTrip(out)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			w.(http.Flusher).Flush()
			buf := make([]byte, 32<<10)
			for {
				n, err := resp.Body.Read(buf)
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
				if err != nil {
					return
				}
			}
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp.addr = ln.Addr().String()
	go srv.Serve(countingListener{ln, &tp.bytes})
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	return tp
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// rawResult is what a raw request got back.
type rawResult struct {
	status int    // 0 when the connection closed without a response
	body   string // up to 4 KiB
	header http.Header
}

// rawRequest writes req byte for byte on a new connection to addr and reads
// one response. Streaming responses are cut after their headers when
// headersOnly is set.
func rawRequest(t *testing.T, addr, req string, headersOnly bool) rawResult {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return rawResult{}
	}
	res := rawResult{status: resp.StatusCode, header: resp.Header}
	if headersOnly {
		// Closing the body would read the stream to its end.
		c.Close()
		return res
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for sb.Len() < 4096 {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	res.body = sb.String()
	return res
}

// upstreamOf returns the Options.Upstream value for an httptest server URL.
func upstreamOf(t *testing.T, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return "tcp://" + u.Host
}
