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
		offerDone <- Offer(context.Background(), sock, func() map[string]net.Listener {
			return map[string]net.Listener{"http": ln}
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
	lns, ack, err := Inherit(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	successor := serve(lns["http"], "new")
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
