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

// TestWebSocket: GET /ws with Upgrade: websocket gets 101 with the accept
// key of RFC 6455's example, and each masked frame comes back unmasked, a
// close frame last; without the key the upgrade is a 400.
func TestWebSocket(t *testing.T) {
	addr := startServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("101: %v after %q", err, head.String())
		}
		if line == "\r\n" {
			break
		}
		head.WriteString(line)
	}
	if h := head.String(); !strings.HasPrefix(h, "HTTP/1.1 101 ") || !strings.Contains(h, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") {
		t.Fatalf("answer %q", h)
	}
	mask := [4]byte{1, 2, 3, 4}
	for _, msg := range []string{"hello", strings.Repeat("x", 300)} {
		frame := []byte{0x81}
		if len(msg) < 126 {
			frame = append(frame, 0x80|byte(len(msg)))
		} else {
			frame = append(frame, 0x80|126, byte(len(msg)>>8), byte(len(msg)))
		}
		frame = append(frame, mask[:]...)
		for i := range len(msg) {
			frame = append(frame, msg[i]^mask[i%4])
		}
		c.Write(frame)
		op, payload, err := readFrame(br)
		if err != nil || op != 0x1 || string(payload) != msg {
			t.Fatalf("echo of %d bytes: op %x, %d bytes, %v", len(msg), op, len(payload), err)
		}
	}
	c.Write([]byte{0x88, 0x80, 1, 2, 3, 4})
	if op, _, err := readFrame(br); err != nil || op != 0x8 {
		t.Fatalf("close: op %x, %v", op, err)
	}

	bad, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(bad, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	line, _ := bufio.NewReader(bad).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 400 ") {
		t.Fatalf("upgrade without a key: %q", line)
	}
}
