package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestEdgeStdlibHTTP2: --stdlib-http2 (default false) picks net/http's
// HTTP/2 server over the edge's own; both answer h2c. The two tell apart
// by their SETTINGS: net/http's names SETTINGS_MAX_FRAME_SIZE, the own
// one leaves it at the protocol's initial value, unsent.
func TestEdgeStdlibHTTP2(t *testing.T) {
	cmd := newEdgeCmd(&logOptions{})
	if f := cmd.Flags().Lookup("stdlib-http2"); f == nil || f.DefValue != "false" {
		t.Fatalf("--stdlib-http2: %v, want a flag with default false", f)
	}
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	writeRoutes(t, routes, testkit.Addr(testkit.Backend(t, "web")), "app.example.org")
	for _, stdlib := range []bool{false, true} {
		t.Run(fmt.Sprint("stdlib=", stdlib), func(t *testing.T) {
			o := edgeOptions{
				httpAddr: testkit.UnusedAddr(t), adminAddr: testkit.UnusedAddr(t), routes: routes, routesPoll: time.Second,
				drainTimeout: 2 * time.Second, dialTimeout: time.Second, maxBody: 1 << 20, maxHeader: 16 << 10,
				stdlibHTTP2: stdlib,
			}
			startEdge(t, o)
			waitReady(t, o.adminAddr)

			c, err := net.DialTimeout("tcp", o.httpAddr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, http2.ClientPreface)
			fr := http2.NewFramer(c, c)
			fr.WriteSettings()
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			sf, ok := f.(*http2.SettingsFrame)
			if !ok {
				t.Fatalf("first frame %v, want SETTINGS", f)
			}
			if _, named := sf.Value(http2.SettingMaxFrameSize); named != stdlib {
				t.Fatalf("SETTINGS_MAX_FRAME_SIZE named: %v, want %v (net/http's server: %v)", named, stdlib, stdlib)
			}

			tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("GET", "http://"+o.httpAddr+"/", nil)
			req.Host = "app.example.org"
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
				t.Fatalf("%d %s %q", resp.StatusCode, resp.Proto, body)
			}
		})
	}
}
