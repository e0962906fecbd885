package adminhttp

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	fatal := make(chan error, 1)
	Serve(srv, ln, fatal, "test: admin listener")
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}

	// Close is no failure; a listener that breaks is.
	srv.Close()
	broken := NewServer(http.NotFoundHandler())
	Serve(broken, failingListener{ln}, fatal, "test: admin listener")
	if err := <-fatal; !strings.HasPrefix(err.Error(), "test: admin listener: ") || !errors.Is(err, errBroken) {
		t.Fatalf("fatal error %v", err)
	}
	select {
	case err := <-fatal:
		t.Fatalf("second fatal error %v", err)
	default:
	}
}

var errBroken = errors.New("broken")

type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) { return nil, errBroken }
