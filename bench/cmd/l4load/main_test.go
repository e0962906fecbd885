package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1", 1, false},
		{"512K", 512 << 10, false},
		{"64M", 64 << 20, false},
		{"2G", 2 << 30, false},
		{"0", 0, true},
		{"-1M", 0, true},
		{"G", 0, true},
		{"1T", 0, true},
		{"99999999999G", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestSourceToSink sends through a real sink on loopback, with the bytes not
// a multiple of the segment or of the connection count, and checks the count.
func TestSourceToSink(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		seg   int64
		conns int
	}{
		{"one connection, one segment", 1000, 1 << 20, 1},
		{"one connection, uneven segments", 3<<20 + 7, 1 << 20, 1},
		{"three connections", 5<<20 + 1, 512 << 10, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			addr, done := startSink(t, ctx)
			defer func() { cancel(); <-done }()
			res, err := source(ctx, addr, tt.total, tt.seg, tt.conns, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if res.bytes != tt.total {
				t.Errorf("bytes = %d, want %d", res.bytes, tt.total)
			}
			if !strings.Contains(res.String(), "gbps=") {
				t.Errorf("report %q has no gbps", res.String())
			}
		})
	}
}

// TestSourceStopsAtDuration: with a duration already over, each connection
// sends its first segment only.
func TestSourceStopsAtDuration(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := startSink(t, ctx)
	defer func() { cancel(); <-done }()
	res, err := source(ctx, addr, 10<<20, 1<<20, 2, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.segments != 2 || res.bytes != 2<<20 {
		t.Errorf("segments = %d, bytes = %d; want 2 segments of 1 MiB", res.segments, res.bytes)
	}
}

// TestSourceFailsOnShortSink: a peer that closes in mid-segment is an error,
// not a short count.
func TestSourceFailsOnShortSink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 1000)
		c.Read(buf)
		c.Close()
	}()
	if _, err := source(context.Background(), ln.Addr().String(), 8<<20, 8<<20, 1, time.Minute); err == nil {
		t.Fatal("no error from a sink that closed in mid-segment")
	}
}

func startSink(t *testing.T, ctx context.Context) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sink(ctx, ln) }()
	return ln.Addr().String(), done
}
