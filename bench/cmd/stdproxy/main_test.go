package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestProxy runs the proxy between a real client and a real backend and
// checks what the backend sees and what the client gets.
func TestProxy(t *testing.T) {
	type seen struct{ host, xff, proto, path string }
	got := make(chan seen, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.URL.RequestURI()}
		w.Header().Set("X-Backend", "yes")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "body")
	}))
	defer backend.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, strings.TrimPrefix(backend.URL, "http://"), io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	tests := []struct{ host, path string }{
		{"bench.local", "/"},
		{"other.example", "/64k?x=1"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+tt.path, nil)
		req.Host = tt.host
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot || string(b) != "body" || resp.Header.Get("X-Backend") != "yes" {
			t.Errorf("%s%s: got %d %q %v", tt.host, tt.path, resp.StatusCode, b, resp.Header)
		}
		s := <-got
		want := seen{tt.host, "127.0.0.1", "http", tt.path}
		if s != want {
			t.Errorf("backend saw %+v, want %+v", s, want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"bad listen address", []string{"-listen", "127.0.0.1:notaport"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(context.Background(), tt.args, io.Discard); err == nil {
				t.Fatal("run returned nil")
			}
		})
	}
}
