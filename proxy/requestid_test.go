package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// TestRequestIDEverywhere: the request ID the proxy makes (or takes from
// the client) is the one the upstream receives, the client gets back and
// the access log records, for each request of a keep-alive connection,
// with either engine; made IDs differ from one request to the next.
func TestRequestIDEverywhere(t *testing.T) {
	engines(t, func(t *testing.T, stdlib bool) {
		var mu sync.Mutex
		var upstream []string
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			upstream = append(upstream, r.Header.Get("X-Request-Id"))
			mu.Unlock()
			io.WriteString(w, "ok")
		}))
		t.Cleanup(b.Close)
		e := startEngine(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}}, stdlib)
		core, logs := observer.New(zap.InfoLevel)
		e.p.access = zap.New(core)

		c, err := net.Dial("tcp", e.plainAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		var client []string
		for _, id := range []string{"", "", "from-the-client", "bad id", ""} {
			req := "GET / HTTP/1.1\r\nHost: app.example.org\r\n"
			if id != "" {
				req += "X-Request-Id: " + id + "\r\n"
			}
			io.WriteString(c, req+"\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			client = append(client, resp.Header.Get("X-Request-Id"))
		}
		var logged []string
		for _, entry := range logs.All() {
			for _, f := range entry.Context {
				if f.Key == "request_id" {
					logged = append(logged, f.String)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(upstream) != 5 || len(logged) != 5 {
			t.Fatalf("upstream saw %q, access log %q; want 5 each", upstream, logged)
		}
		seen := map[string]bool{}
		for i, id := range client {
			if id != upstream[i] || id != logged[i] {
				t.Errorf("request %d: client got %q, upstream saw %q, access log %q", i, id, upstream[i], logged[i])
			}
			if i == 2 {
				if id != "from-the-client" {
					t.Errorf("the client's ID: %q", id)
				}
				continue
			}
			if len(id) != 32 || seen[id] {
				t.Errorf("request %d: made ID %q (32 hex digits, new each request)", i, id)
			}
			seen[id] = true
		}
	})
}

// TestRequestIDBuf: an ID made in a requestIDBuf costs no allocation, is
// set in the header and stays as made.
func TestRequestIDBuf(t *testing.T) {
	h := http.Header{}
	var buf requestIDBuf
	var id string
	if n := testing.AllocsPerRun(100, func() {
		delete(h, "X-Request-Id")
		id = buf.requestID(h)
	}); n != 0 {
		t.Errorf("%v allocations per ID", n)
	}
	if len(id) != 32 || h.Get("X-Request-Id") != id {
		t.Errorf("id %q, header %q", id, h.Get("X-Request-Id"))
	}
	h2 := http.Header{"X-Request-Id": {"abc"}}
	if id := new(requestIDBuf).requestID(h2); id != "abc" || h2.Get("X-Request-Id") != "abc" {
		t.Errorf("client's id: %q, header %q", id, h2.Get("X-Request-Id"))
	}
	id1 := requestID(http.Header{})
	keep := string([]byte(id1))
	requestID(http.Header{})
	if id1 != keep {
		t.Errorf("an ID changed after another was made: %q, was %q", id1, keep)
	}
}
