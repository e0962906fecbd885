package testkit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestBackend(t *testing.T) {
	b := Backend(t, "web")
	if got := b.URL; got != "http://"+Addr(b) {
		t.Fatalf("Addr %q for URL %q", Addr(b), got)
	}
	resp := Request(t, b.Client(), "POST", b.URL+"/x?q=1", "app.example.org", strings.NewReader("body"))
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "web POST /x?q=1" {
		t.Fatalf("got %q", got)
	}
}

func TestRequestHost(t *testing.T) {
	hosts := make(chan string, 1)
	s := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host }))
	Request(t, s.Client(), "GET", s.URL, "app.example.org", nil).Body.Close()
	if got := <-hosts; got != "app.example.org" {
		t.Fatalf("Host %q", got)
	}
	r := &fatalRecorder{TB: t}
	if Request(r, http.DefaultClient, "GET", "http://"+UnusedAddr(t), "app.example.org", nil); !strings.Contains(r.failed, "refused") {
		t.Fatalf("failure %q, want the dial error", r.failed)
	}
}

func TestUnusedAddr(t *testing.T) {
	a := UnusedAddr(t)
	if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection", a)
	}
	ln, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatalf("cannot listen on %s: %v", a, err)
	}
	ln.Close()
}

func TestWebSocketEcho(t *testing.T) {
	b := WebSocketEcho(t, "echo: ")
	c, _, err := websocket.DefaultDialer.Dial("ws://"+Addr(b)+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, mt := range []int{websocket.TextMessage, websocket.BinaryMessage} {
		if err := c.WriteMessage(mt, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		gotType, got, err := c.ReadMessage()
		if err != nil || gotType != mt || string(got) != "echo: hi" {
			t.Fatalf("got %d %q %v, want %d %q", gotType, got, err, mt, "echo: hi")
		}
	}
}

func TestEventStream(t *testing.T) {
	next := make(chan struct{})
	b := EventStream(t, 2, next)
	resp, err := b.Client().Get(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	for _, want := range []string{"data: event 0\n", "\n", "data: event 1\n", "\n"} {
		if got, err := rd.ReadString('\n'); err != nil || got != want {
			t.Fatalf("read %q %v, want %q", got, err, want)
		}
		if want == "\n" {
			next <- struct{}{} // the next event comes only now
		}
	}
	if rest, err := io.ReadAll(rd); err != nil || len(rest) != 0 {
		t.Fatalf("after 2 events: %q %v, want the end of the response", rest, err)
	}
}

func TestRoute(t *testing.T) {
	r := Route("web", []string{"app.example.org"}, "/api", "10.0.0.1:80", "10.0.0.2:80")
	if r.Service != "web" || r.Hosts[0] != "app.example.org" || r.Path != "/api" || len(r.Endpoints) != 2 ||
		r.Port != 80 || r.Balancer != "round-robin" || r.Timeout != 5*time.Second {
		t.Fatalf("%+v", r)
	}
}
