package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// rawCodec carries gRPC messages as raw bytes, so the test needs no generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

var _ encoding.Codec = rawCodec{}

// startGRPC runs a grpc-go server over h2c with a unary and a bidirectional
// streaming echo method.
func startGRPC(t *testing.T) string {
	t.Helper()
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Unary", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			out := append([]byte("unary:"), in...)
			return &out, nil
		}}},
		Streams: []grpc.StreamDesc{{StreamName: "Bidi", ServerStreams: true, ClientStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			for {
				var in []byte
				if err := s.RecvMsg(&in); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				out := append([]byte("bidi:"), in...)
				if err := s.SendMsg(&out); err != nil {
					return err
				}
			}
		}}},
	}, struct{}{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// TestEdgeTLS runs the edge with a certificate directory and checks HTTPS
// with HTTP/2, the redirect from HTTP, 421 for a misdirected host, gRPC
// (unary and bidirectional streaming) to a grpc-go backend over h2c, and SNI
// passthrough delivering the backend's own certificate.
func TestEdgeTLS(t *testing.T) {
	certs := t.TempDir()
	ca := testkit.NewCA(t, "edge CA")
	ca.Issue(t, "secure.example.org", "grpc.example.org").WriteFiles(t, certs, "secure")
	ca.Issue(t, "other.example.org").WriteFiles(t, certs, "other")
	web := testkit.Addr(testkit.Backend(t, "web"))
	grpcAddr := startGRPC(t)

	// The passthrough backend terminates TLS itself with its own certificate,
	// from an authority the edge's clients do not trust.
	passCA := testkit.NewCA(t, "backend CA")
	passCert, passPool := passCA.Issue(t, "pass.example.org").TLSCertificate(), passCA.Pool
	passLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{passCert}})
	if err != nil {
		t.Fatal(err)
	}
	passSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "backend terminated TLS")
	}), ReadHeaderTimeout: time.Second}
	go passSrv.Serve(passLn)
	defer passSrv.Close()

	routes := filepath.Join(t.TempDir(), "routes.yaml")
	os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: web
    labels: {swarmgate.hosts: secure.example.org, swarmgate.port: "80", swarmgate.tls: secure, swarmgate.tls.hsts: 1y}
    endpoints: [%q]
  - name: other
    labels: {swarmgate.hosts: other.example.org, swarmgate.port: "80", swarmgate.tls: other}
    endpoints: [%q]
  - name: grpc
    labels: {swarmgate.hosts: grpc.example.org, swarmgate.port: "80", swarmgate.tls: secure, swarmgate.backend.h2c: "true"}
    endpoints: [%q]
  - name: pass
    labels: {swarmgate.tcp.sni: pass.example.org, swarmgate.port: "443"}
    endpoints: [%q]
`, web, web, grpcAddr, passLn.Addr().String())), 0o644)

	o := edgeOptions{
		httpAddr: testkit.UnusedAddr(t), httpsAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t), routes: routes,
		routesPoll: time.Second, drainTimeout: 2 * time.Second, dialTimeout: time.Second,
		maxBody: 1 << 20, maxHeader: 16 << 10,
	}
	o.certs = certs
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEdge(ctx, o, zaptest.NewLogger(t)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runEdge: %v", err)
		}
	}()
	waitReady(t, o.adminAddr)

	// All of secure, other and grpc are trusted by the client.
	roots := ca.Pool
	dialEdge := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, o.httpsAddr)
	}
	tr := &http.Transport{DialContext: dialEdge, TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	t.Run("h2 over TLS", func(t *testing.T) {
		resp, err := client.Get("https://secure.example.org/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || !strings.Contains(string(body), "/hello") {
			t.Fatalf("%d %s %q", resp.StatusCode, resp.Proto, body)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("Strict-Transport-Security = %q", got)
		}
		if got := resp.TLS.PeerCertificates[0].DNSNames[0]; got != "secure.example.org" {
			t.Errorf("served certificate for %s", got)
		}
	})

	t.Run("redirect from HTTP", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+o.httpAddr+"/form?a=1", strings.NewReader("x"))
		req.Host = "secure.example.org"
		plain := &http.Client{Transport: &http.Transport{}, CheckRedirect: client.CheckRedirect}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		plain.CloseIdleConnections()
		want := fmt.Sprintf("https://secure.example.org:%d/form?a=1", portOf(o.httpsAddr))
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Fatalf("%d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})

	t.Run("421 for a host under another certificate", func(t *testing.T) {
		conn, err := tls.Dial("tcp", o.httpsAddr, &tls.Config{ServerName: "secure.example.org", RootCAs: roots, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: other.example.org\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(conn)
		if !strings.HasPrefix(string(b), "HTTP/1.1 421") {
			t.Fatalf("got %q", firstLine(b))
		}
	})

	t.Run("gRPC unary and bidi to a grpc-go backend over h2c", func(t *testing.T) {
		cc, err := grpc.NewClient("passthrough:///grpc.example.org",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return dialEdge(ctx, "tcp", "") }),
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "grpc.example.org"})),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in, out := []byte("ping"), []byte(nil)
		if err := cc.Invoke(ctx, "/test.Echo/Unary", &in, &out); err != nil || string(out) != "unary:ping" {
			t.Fatalf("unary: %q %v", out, err)
		}
		s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/test.Echo/Bidi")
		if err != nil {
			t.Fatal(err)
		}
		// Each reply arrives before the next message is sent: the stream is
		// really full duplex through the edge, not buffered.
		for i := range 20 {
			msg := []byte(fmt.Sprintf("m%d", i))
			if err := s.SendMsg(&msg); err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := s.RecvMsg(&got); err != nil || string(got) != "bidi:"+string(msg) {
				t.Fatalf("bidi %d: %q %v", i, got, err)
			}
		}
		s.CloseSend()
		var tail []byte
		if err := s.RecvMsg(&tail); !errors.Is(err, io.EOF) {
			t.Fatalf("end of stream: %v (want the trailers' OK status)", err)
		}
	})

	t.Run("SNI passthrough delivers the backend's certificate", func(t *testing.T) {
		ptr := &http.Transport{DialContext: dialEdge, TLSClientConfig: &tls.Config{RootCAs: passPool}}
		defer ptr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: ptr, Timeout: 5 * time.Second}).Get("https://pass.example.org/")
		if err != nil {
			t.Fatalf("the client must verify the backend's own certificate: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "backend terminated TLS" {
			t.Fatalf("got %q", body)
		}
	})
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\r\n")
	return s
}

func waitReady(t *testing.T, admin string) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return fmt.Errorf("edge never became ready: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("edge never became ready: /readyz %d", resp.StatusCode)
		}
		return nil
	})
}

// portOf returns the port of a listen address.
func portOf(addr string) int {
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}
