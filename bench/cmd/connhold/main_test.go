package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// echoServer answers GET / with 200 and upgrades /ws to a WebSocket that
// echoes each (short, masked) message back unmasked.
func echoServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			io.WriteString(w, "ok")
			return
		}
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		rw.Flush()
		for {
			var h [6]byte
			if _, err := io.ReadFull(rw, h[:]); err != nil {
				return
			}
			p := make([]byte, h[1]&0x7f)
			io.ReadFull(rw, p)
			for i := range p {
				p[i] ^= h[2+i%4]
			}
			rw.Write(append([]byte{h[0], byte(len(p))}, p...))
			rw.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestHold(t *testing.T) {
	addr := echoServer(t)
	for _, mode := range []string{"idle", "ws"} {
		t.Run(mode, func(t *testing.T) {
			stdin, release := io.Pipe()
			out, w := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- run(context.Background(), []string{"-addr", addr, "-mode", mode, "-conns", "20", "-parallel", "4"}, stdin, w, io.Discard)
				w.Close()
			}()
			br := bufio.NewReader(out)
			first, _ := br.ReadString('\n')
			if !strings.HasPrefix(first, "opened=20 of=20 errors=0 ") {
				t.Fatalf("first line %q", first)
			}
			if ready, _ := br.ReadString('\n'); ready != "ready\n" {
				t.Fatalf("then %q", ready)
			}
			release.Close()
			last, _ := br.ReadString('\n')
			if !strings.HasPrefix(last, "rechecked=20 of=20 first_error=-") {
				t.Fatalf("last line %q", last)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-addr", "10.0.0.1:80"}, {"-mode", "tcp"}, {"-conns", "0"}, {"-hold", "1h"}} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
