// Command l4load is the bulk-transfer pair of the benchmark's L4 suite.
//
//	l4load sink -listen 127.0.0.1:19000
//	l4load source -addr 127.0.0.1:19001 -bytes 2G -duration 10s -conns 1
//
// The source streams bytes through the proxy under test to the sink, which
// discards them. The stream is cut into segments: an 8-byte big-endian length,
// then that many bytes; the sink answers each segment with the number of bytes
// it read (8 bytes, big-endian), and the source checks it. A segment is the
// unit of the run's bounds: the source starts no new segment once -bytes are
// sent or -duration has passed, so every byte counted has been delivered.
// No half-close is needed, so the proxies' half-close settings do not matter.
//
// The source prints one line: bytes=N elapsed=SECONDS gbps=G segments=N.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/bench/internal/benchkit"
)

func main() { benchkit.Main(run) }

// bufSize is the size of every read and write: large enough that the
// per-call cost disappears next to the copying.
const bufSize = 256 << 10

// ioTimeout bounds every read and write of a segment: a proxy that stops
// forwarding fails the run instead of hanging it.
const ioTimeout = 30 * time.Second

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("l4load: usage: l4load sink|source [flags]")
	}
	fs := benchkit.FlagSet("l4load "+args[0], stderr)
	switch args[0] {
	case "sink":
		ln, err := benchkit.ParseListen(fs, args[1:], "127.0.0.1:19000")
		if err != nil {
			return err
		}
		return sink(ctx, ln)
	case "source":
		addr := fs.String("addr", "127.0.0.1:19001", "address to send to (the proxy)")
		total := fs.String("bytes", "2G", "bytes to send in all (suffix K, M, G: powers of 1024)")
		duration := fs.Duration("duration", 10*time.Second, "start no new segment after this")
		conns := fs.Int("conns", 1, "parallel connections")
		segment := fs.String("segment", "64M", "segment size")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		n, err := parseSize(*total)
		if err != nil {
			return fmt.Errorf("l4load: -bytes: %w", err)
		}
		seg, err := parseSize(*segment)
		if err != nil {
			return fmt.Errorf("l4load: -segment: %w", err)
		}
		if *conns < 1 || *conns > 256 {
			return fmt.Errorf("l4load: -conns must be 1..256, got %d", *conns)
		}
		if *duration <= 0 || *duration > 10*time.Minute {
			return fmt.Errorf("l4load: -duration must be in (0, 10m], got %s", *duration)
		}
		res, err := source(ctx, *addr, n, seg, *conns, *duration)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, res)
		return nil
	default:
		return fmt.Errorf("l4load: unknown mode %q (sink or source)", args[0])
	}
}

// parseSize reads "2G", "64M", "512K" or a plain byte count.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// sink accepts connections until ctx is done and serves each with serveSink.
func sink(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("l4load: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			if err := serveSink(c); err != nil && ctx.Err() == nil {
				log.Printf("l4load: sink: %v", err)
			}
		}()
	}
}

// serveSink reads segments until the peer closes between two of them.
func serveSink(c net.Conn) error {
	buf := make([]byte, bufSize)
	var hdr [8]byte
	for {
		if err := c.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("segment header: %w", err)
		}
		want := int64(binary.BigEndian.Uint64(hdr[:]))
		var got int64
		for got < want {
			if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
				return err
			}
			n, err := c.Read(buf[:min(int64(len(buf)), want-got)])
			got += int64(n)
			if err != nil {
				return fmt.Errorf("segment: %d of %d bytes: %w", got, want, err)
			}
		}
		binary.BigEndian.PutUint64(hdr[:], uint64(got))
		if _, err := c.Write(hdr[:]); err != nil {
			return fmt.Errorf("segment ack: %w", err)
		}
	}
}

// result is the source's report.
type result struct {
	bytes    int64
	segments int
	elapsed  time.Duration
}

func (r result) String() string {
	gbps := 0.0
	if r.elapsed > 0 {
		gbps = float64(r.bytes) * 8 / r.elapsed.Seconds() / 1e9
	}
	return fmt.Sprintf("bytes=%d elapsed=%.3f gbps=%.3f segments=%d", r.bytes, r.elapsed.Seconds(), gbps, r.segments)
}

// source sends total bytes (split evenly over conns connections, in segments
// of at most seg bytes) to addr, starting no segment after duration.
func source(ctx context.Context, addr string, total, seg int64, conns int, duration time.Duration) (result, error) {
	start := time.Now()
	deadline := start.Add(duration)
	type connResult struct {
		bytes    int64
		segments int
		err      error
	}
	out := make([]connResult, conns)
	var wg sync.WaitGroup
	for i := range out {
		share := total / int64(conns)
		if i == 0 {
			share += total % int64(conns)
		}
		wg.Add(1)
		go func(cr *connResult) {
			defer wg.Done()
			cr.bytes, cr.segments, cr.err = sendConn(ctx, addr, share, seg, deadline)
		}(&out[i])
	}
	wg.Wait()
	res := result{elapsed: time.Since(start)}
	for _, cr := range out {
		if cr.err != nil {
			return result{}, fmt.Errorf("l4load: source: %w", cr.err)
		}
		res.bytes += cr.bytes
		res.segments += cr.segments
	}
	return res, nil
}

// sendConn sends share bytes on one connection, segment by segment.
func sendConn(ctx context.Context, addr string, share, seg int64, deadline time.Time) (int64, int, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, bufSize)
	for i := range buf {
		buf[i] = byte(i * 7) // not all zeros: nothing on the path may shortcut it
	}
	var sent int64
	segments := 0
	var hdr [8]byte
	for sent < share && (segments == 0 || time.Now().Before(deadline)) {
		n := min(seg, share-sent)
		binary.BigEndian.PutUint64(hdr[:], uint64(n))
		if err := c.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
			return sent, segments, err
		}
		if _, err := c.Write(hdr[:]); err != nil {
			return sent, segments, fmt.Errorf("segment header: %w", err)
		}
		for left := n; left > 0; {
			if err := c.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
				return sent, segments, err
			}
			w, err := c.Write(buf[:min(int64(len(buf)), left)])
			left -= int64(w)
			if err != nil {
				return sent, segments, fmt.Errorf("segment: %w", err)
			}
		}
		if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
			return sent, segments, err
		}
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return sent, segments, fmt.Errorf("segment ack: %w", err)
		}
		if got := int64(binary.BigEndian.Uint64(hdr[:])); got != n {
			return sent, segments, fmt.Errorf("the sink counted %d bytes of a %d-byte segment", got, n)
		}
		sent += n
		segments++
	}
	return sent, segments, nil
}
