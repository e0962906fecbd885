package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer serves on a loopback port until the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(5 * time.Second)
	done := make(chan error, 1)
	go func() { done <- s.serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		s.close()
	})
	return ln.Addr().String()
}

func TestBodies(t *testing.T) {
	addr := startServer(t)
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tests := []struct {
		path     string
		wantCode int
		wantLen  int
	}{
		{"/", 200, 13},
		{"/?q=1", 200, 13},
		{"/1k", 200, 1024},
		{"/64k", 200, 65536},
		{"/nope", 404, len("not found\n")},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			for range 3 { // the same keep-alive connection, several times
				resp, err := client.Get("http://" + addr + tt.path)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tt.wantCode || len(b) != tt.wantLen || resp.ContentLength != int64(tt.wantLen) {
					t.Fatalf("GET %s = %d, %d bytes (Content-Length %d); want %d, %d bytes",
						tt.path, resp.StatusCode, len(b), resp.ContentLength, tt.wantCode, tt.wantLen)
				}
				if b[len(b)-1] != '\n' {
					t.Errorf("body does not end in a newline")
				}
			}
		})
	}
}

// TestRaw sends raw bytes on one connection and checks the status lines it
// gets back and whether the server then closes the connection.
func TestRaw(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		name       string
		send       string
		wantStatus []int
		wantClosed bool
	}{
		{
			name:       "pipelined",
			send:       "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /1k HTTP/1.1\r\nHost: a\r\n\r\n",
			wantStatus: []int{200, 200},
		},
		{
			name:       "body discarded then next request",
			send:       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
			wantStatus: []int{200, 404},
		},
		{
			name:       "bare LF line endings",
			send:       "GET / HTTP/1.1\nHost: a\n\n",
			wantStatus: []int{200},
		},
		{
			name:       "connection close",
			send:       "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
			wantStatus: []int{200},
			wantClosed: true,
		},
		{
			name:       "HTTP/1.0 closes by default",
			send:       "GET / HTTP/1.0\r\n\r\n",
			wantStatus: []int{200},
			wantClosed: true,
		},
		{
			name:       "HTTP/1.0 keep-alive",
			send:       "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			wantStatus: []int{200},
		},
		{
			name:       "bad request line",
			send:       "GARBAGE\r\n\r\n",
			wantStatus: []int{400},
			wantClosed: true,
		},
		{
			name:       "bad header",
			send:       "GET / HTTP/1.1\r\nno colon\r\n\r\n",
			wantStatus: []int{400},
			wantClosed: true,
		},
		{
			name:       "bad content length",
			send:       "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
			wantStatus: []int{400},
			wantClosed: true,
		},
		{
			name:       "chunked body refused",
			send:       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			wantStatus: []int{501},
			wantClosed: true,
		},
		{
			name:       "body too large",
			send:       "POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n",
			wantStatus: []int{413},
			wantClosed: true,
		},
		{
			name:       "header too large",
			send:       "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n",
			wantStatus: []int{431},
			wantClosed: true,
		},
		{
			name:       "many headers too large in total",
			send:       "GET / HTTP/1.1\r\n" + strings.Repeat("X: "+strings.Repeat("a", 1000)+"\r\n", 20) + "\r\n",
			wantStatus: []int{431},
			wantClosed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			for i, want := range tt.wantStatus {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("response %d: status %d, want %d", i, resp.StatusCode, want)
				}
			}
			if tt.wantClosed {
				if _, err := br.ReadByte(); err != io.EOF {
					t.Errorf("connection still open after the last response (read: %v)", err)
				}
				return
			}
			// The connection stays usable.
			io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("follow-up request: %v", err)
			}
			resp.Body.Close()
		})
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0"}, io.Discard) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunBadFlag(t *testing.T) {
	if err := run(context.Background(), []string{"-nope"}, io.Discard); err == nil {
		t.Fatal("run accepted an unknown flag")
	}
}
