package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// fieldsBackend answers request /n with n fields X-F0..X-Fn-1 whose values
// name the request, and one field X-Only-<n>.
func fieldsBackend(t *testing.T) *httptest.Server {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Path[1:])
		for i := range n {
			w.Header().Set(fmt.Sprintf("X-F%d", i), r.URL.Path)
		}
		w.Header().Set("X-Only-"+r.URL.Path[1:], "y")
		io.WriteString(w, r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

// TestH1ResponseHeaderLent: the responses of one upstream connection made
// in the proxy's h1Response share its header map, each with its own fields
// only, and a response's Header is taken back (nil) when its body is
// closed; a head of more fields than a connection keeps a map for gets its
// own, which it keeps.
func TestH1ResponseHeaderLent(t *testing.T) {
	b := fieldsBackend(t)
	tr := newH1(t)
	var maps []http.Header
	for _, n := range []int{3, 1, maxHeaderKept + 5, 2} {
		req, _ := http.NewRequest("GET", b.URL+"/"+strconv.Itoa(n), nil)
		out := &upstreamFields{}
		out.set(req, false, "")
		var st exchangeStop
		mem := new(h1Response)
		resp, err := tr.roundTrip(req, false, &st, out, mem)
		if err != nil {
			t.Fatal(err)
		}
		path := "/" + strconv.Itoa(n)
		for i := range n {
			if v := resp.Header.Get(fmt.Sprintf("X-F%d", i)); v != path {
				t.Fatalf("%s: X-F%d %q", path, i, v)
			}
		}
		if _, ok := resp.Header["X-F"+strconv.Itoa(n)]; ok {
			t.Fatalf("%s: a field of an earlier response: %v", path, resp.Header)
		}
		for k := range resp.Header {
			if len(k) > 7 && k[:7] == "X-Only-" && k != "X-Only-"+strconv.Itoa(n) {
				t.Fatalf("%s: %s, a field of an earlier response", path, k)
			}
		}
		maps = append(maps, resp.Header)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lent := n < maxHeaderKept-5 // the head's other fields: Date, Content-Length, ...
		if lent != (resp.Header == nil) {
			t.Fatalf("%s: Header after Close %v, want nil only when lent", path, resp.Header)
		}
	}
	same := func(a, b http.Header) bool { return fmt.Sprintf("%p", a) == fmt.Sprintf("%p", b) }
	if !same(maps[0], maps[1]) || !same(maps[1], maps[3]) || same(maps[2], maps[0]) {
		t.Errorf("maps of the connection's responses: %p %p %p %p; want the first, second and fourth the same", maps[0], maps[1], maps[2], maps[3])
	}
}

// TestResponseHeadersOneUpstreamConn: responses that come one after the
// other on one upstream connection reach the client each with its own
// fields, whatever the fields before them.
func TestResponseHeadersOneUpstreamConn(t *testing.T) {
	b := fieldsBackend(t)
	e := startEngine(t, route.Config{Routes: []route.Route{testkit.Route("web", []string{"app.example.org"}, "/", testkit.Addr(b))}}, false)
	c, err := net.Dial("tcp", e.plainAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, n := range []int{6, 1, 40, 0, 3} {
		path := "/" + strconv.Itoa(n)
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: app.example.org\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != path {
			t.Fatalf("%s: body %q", path, body)
		}
		fields := 0
		for k, vv := range resp.Header {
			switch {
			case len(k) > 3 && k[:3] == "X-F":
				fields++
				if len(vv) != 1 || vv[0] != path {
					t.Errorf("%s: %s %q", path, k, vv)
				}
			case len(k) > 7 && k[:7] == "X-Only-" && k != "X-Only-"+path[1:]:
				t.Errorf("%s: %s, a field of an earlier response", path, k)
			}
		}
		if fields != n || resp.Header.Get("X-Only-"+path[1:]) != "y" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: %d X-F fields, want %d; header %v", path, fields, n, resp.Header)
		}
	}
}
