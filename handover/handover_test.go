package handover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestInheritWithoutPredecessor(t *testing.T) {
	_, _, err := Inherit(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if !errors.Is(err, ErrNoPredecessor) {
		t.Fatalf("err = %v, want ErrNoPredecessor", err)
	}
}

// TestHandOverUnderLoad runs an "old" server, hands its listener to a "new"
// one while clients keep opening fresh connections, and counts failures.
func TestHandOverUnderLoad(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "edge.sock")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	// Two edges, each routing to its own backend so the test can tell who answered.
	serve := func(ln net.Listener, name string) *proxy.Server {
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(b.Close)
		p := proxy.New(proxy.Options{})
		t.Cleanup(p.Close)
		p.Update(route.Config{Routes: []route.Route{{
			Service: name, Path: "/", Default: true, Weight: 100, Balancer: "round-robin",
			Endpoints: []string{strings.TrimPrefix(b.URL, "http://")},
		}}})
		s := p.NewServer("http", proxy.ServerOptions{})
		go s.Serve(ln)
		return s
	}
	old := serve(ln, "old")
	handed := make(chan struct{})
	offerDone := make(chan error, 1)
	go func() {
		offerDone <- Offer(context.Background(), sock, func() Sockets {
			return Sockets{Listeners: map[string]net.Listener{"http": ln}}
		}, func() {
			// The successor serves: stop accepting here and drain.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			old.Shutdown(ctx)
			close(handed)
		})
	}()
	waitSocket(t, sock)

	var ok, failed atomic.Int64
	seen := sync.Map{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: true} // a new connection each time: the accept path is what is tested
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for n := 0; n < 5000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://" + addr + "/")
				if err != nil {
					t.Logf("request failed: %v", err)
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				seen.Store(string(b), true)
				ok.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	inherited, ack, err := Inherit(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	successor := serve(inherited.Listeners["http"], "new")
	if err := ack(); err != nil {
		t.Fatal(err)
	}
	<-handed
	if err := <-offerDone; err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	successor.Shutdown(context.Background())
	_, sawOld := seen.Load("old")
	_, sawNew := seen.Load("new")
	t.Logf("%d requests ok, %d failed; old served: %v, new served: %v", ok.Load(), failed.Load(), sawOld, sawNew)
	if failed.Load() != 0 || !sawOld || !sawNew {
		t.Fatalf("hand-over lost %d requests (old %v, new %v)", failed.Load(), sawOld, sawNew)
	}
}

// TestHandOverUDP passes a TCP listener and a UDP socket: the successor's
// UDP socket is the same socket (same address, and a datagram sent to it
// after the predecessor closed its copy arrives).
func TestHandOverUDP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "edge.sock")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String()) // the same port, as HTTPS and QUIC share it
	if err != nil {
		t.Fatal(err)
	}
	offerDone := make(chan error, 1)
	go func() {
		offerDone <- Offer(context.Background(), sock, func() Sockets {
			return Sockets{Listeners: map[string]net.Listener{"https": ln}, Packets: map[string]net.PacketConn{"https": pc}}
		}, func() {})
	}()
	waitSocket(t, sock)
	got, ack, err := Inherit(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if err := ack(); err != nil {
		t.Fatal(err)
	}
	if err := <-offerDone; err != nil {
		t.Fatal(err)
	}
	ln.Close()
	pc.Close()
	upc := got.Packets["https"]
	if upc == nil || got.Listeners["https"] == nil {
		t.Fatalf("inherited %v", got)
	}
	if upc.LocalAddr().String() != pc.LocalAddr().String() {
		t.Fatalf("inherited UDP socket on %s, want %s", upc.LocalAddr(), pc.LocalAddr())
	}
	c, err := net.Dial("udp", upc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	upc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, _, err := upc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

func waitSocket(t *testing.T, path string) {
	t.Helper()
	testkit.Eventually(t, time.Second, 5*time.Millisecond, func() error {
		c, err := net.Dial("unix", path)
		if err != nil {
			return fmt.Errorf("hand-over socket: %w", err)
		}
		c.Close()
		return nil
	})
}
