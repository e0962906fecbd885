package fleet

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// serve runs Handler over s and returns a Client of it (after a replica
// that is down, so every request also fails over).
func serve(t *testing.T, s Store, o HandlerOptions) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(Handler(s, o))
	srv.EnableHTTP2 = true
	srv.Start()
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downAddr := down.Listener.Addr().String()
	down.Close()
	c, err := NewClient(ClientOptions{
		Addrs:     []string{"tcp://" + downAddr, "tcp://" + srv.Listener.Addr().String()},
		Transport: srv.Client().Transport, Timeout: 5 * time.Second, Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

func TestClientValues(t *testing.T) {
	_, c := serve(t, &Memory{}, HandlerOptions{})
	ctx := context.Background()
	if _, err := c.Load(ctx, "certs/a/a.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v", err)
	}
	val := []byte("chain \x00 with any bytes")
	if err := c.Store(ctx, "certs/a/a.crt", val); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(ctx, "certs/a b/x%2f", val); err == nil {
		t.Fatal("a key with a space was sent")
	}
	c.Store(ctx, "certs/b/b.crt", []byte("b"))
	if v, err := c.Load(ctx, "certs/a/a.crt"); err != nil || !bytes.Equal(v, val) {
		t.Fatalf("Load = %q, %v", v, err)
	}
	if ki, err := c.Stat(ctx, "certs/a/a.crt"); err != nil || ki.Size != int64(len(val)) || !ki.IsTerminal {
		t.Fatalf("Stat = %+v, %v", ki, err)
	}
	if !c.Exists(ctx, "certs") || c.Exists(ctx, "nope") {
		t.Fatal("Exists")
	}
	if keys, err := c.List(ctx, "certs", true); err != nil || !slices.Equal(keys, []string{"certs/a/a.crt", "certs/b/b.crt"}) {
		t.Fatalf("List = %q, %v", keys, err)
	}
	if _, err := c.List(ctx, "none", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List of a missing prefix: %v", err)
	}
	if err := c.Delete(ctx, "certs"); err != nil {
		t.Fatal(err)
	}
	if c.Exists(ctx, "certs/a/a.crt") {
		t.Fatal("Delete of a prefix left a key")
	}
	if err := c.Store(ctx, "big", make([]byte, MaxValueLen+1)); err == nil {
		t.Fatal("a value over the limit was sent")
	}
}

func TestHandlerLimits(t *testing.T) {
	srv, _ := serve(t, &Memory{}, HandlerOptions{})
	cl := srv.Client()
	for _, c := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{"PUT", Path + "value/big", make([]byte, MaxValueLen+1), http.StatusRequestEntityTooLarge},
		{"PUT", Path + "value/a%20b", []byte("x"), http.StatusBadRequest},
		{"GET", Path + "value/" + strings.Repeat("k", MaxKeyLen+1), nil, http.StatusBadRequest},
		{"GET", Path + "list?prefix=%2Fabs", nil, http.StatusBadRequest},
		{"POST", Path + "value/a", nil, http.StatusMethodNotAllowed},
		{"POST", Path + "unlock/a?token=x", nil, http.StatusConflict},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, bytes.NewReader(c.body))
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %.60s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
}

// failing is a Store whose every call fails, as a Docker API that is down.
type failing struct{ Memory }

func (*failing) Load(context.Context, string) ([]byte, error) { return nil, errors.New("docker down") }

func TestHandlerStoreDown(t *testing.T) {
	_, c := serve(t, &failing{}, HandlerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Load(ctx, "a")
	if err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Load from a failing store: %v, want a 503 error", err)
	}
}

func TestClientLock(t *testing.T) {
	mem := &Memory{}
	_, a := serve(t, mem, HandlerOptions{LockTTL: 300 * time.Millisecond, LockWait: 100 * time.Millisecond})
	_, b := serve(t, mem, HandlerOptions{LockTTL: 300 * time.Millisecond, LockWait: 100 * time.Millisecond})
	ctx := context.Background()
	if err := a.Lock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
	// b waits while a holds (and refreshes, well past the TTL), then gets it.
	var got atomic.Bool
	done := make(chan error, 1)
	go func() {
		err := b.Lock(ctx, "issue_cert_x")
		got.Store(true)
		done <- err
	}()
	time.Sleep(time.Second)
	if got.Load() {
		t.Fatal("b took a lock a holds and refreshes")
	}
	if err := a.Unlock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b did not get the released lock")
	}
	// b dies holding it (no refresh, no unlock): a takes over once it expires.
	b.Close()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Lock(lctx, "issue_cert_x"); err != nil {
		t.Fatalf("takeover of a dead holder's lock: %v", err)
	}
	t.Logf("took over after %v", time.Since(start).Round(time.Millisecond))
	if err := a.Unlock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer ccancel()
	a.Lock(ctx, "held")
	if err := b.Lock(cctx, "held"); err == nil {
		t.Fatal("Lock of a held lock returned before its context ended")
	}
	a.Unlock(ctx, "held")
}
