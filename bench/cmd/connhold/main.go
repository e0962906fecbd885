// Command connhold opens many client connections through a proxy and holds
// them open, for the idle and WebSocket rows of the side-by-side benchmark
// (bench/README.md): benchrun reads the proxy's RSS while they are open.
//
//	connhold -addr 127.0.0.1:19001 -host bench.local -mode idle -conns 10000
//	connhold -addr 127.0.0.1:19001 -host bench.local -mode ws -conns 1000
//
// -mode idle: each connection sends one keep-alive GET of -path and reads
// its answer, then stays idle. -mode ws: each connection upgrades to a
// WebSocket on /ws and exchanges one message (echoed by the backend), then
// stays idle. Once every connection is open (or failed), it prints one line
// of key=value results ("opened=..."), then "ready", and holds them until
// its standard input closes (or a line comes), -hold passes, or a signal.
// Then every connection still open does it again (a second GET, or a second
// echo), so that the row proves they all still work, and it prints
// "rechecked=N of=M ..." and exits. Loopback only: -addr must be one.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/bench/internal/benchkit"
)

func main() {
	benchkit.Main(func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return run(ctx, args, os.Stdin, stdout, stderr)
	})
}

// config is one run's flags.
type config struct {
	addr, host, path, mode string
	conns, parallel        int
	hold, timeout          time.Duration
}

func parse(args []string, stderr io.Writer) (config, error) {
	fs := benchkit.FlagSet("connhold", stderr)
	var c config
	fs.StringVar(&c.addr, "addr", "127.0.0.1:19001", "the proxy's address (loopback)")
	fs.StringVar(&c.host, "host", "bench.local", "Host of every request")
	fs.StringVar(&c.path, "path", "/", "path of the idle mode's GET")
	fs.StringVar(&c.mode, "mode", "idle", "idle (one keep-alive GET, then idle) or ws (a WebSocket on /ws, one echo, then idle)")
	fs.IntVar(&c.conns, "conns", 10000, "connections to open (1..50000)")
	fs.IntVar(&c.parallel, "parallel", 64, "connections being opened at once")
	fs.DurationVar(&c.hold, "hold", 2*time.Minute, "hold them at most this long")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "bound on each connect, request and echo")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("connhold: unexpected arguments %q", fs.Args())
	}
	switch {
	case c.mode != "idle" && c.mode != "ws":
		return c, fmt.Errorf("connhold: -mode must be idle or ws, got %q", c.mode)
	case c.conns < 1 || c.conns > 50000:
		return c, fmt.Errorf("connhold: -conns must be 1..50000, got %d", c.conns)
	case c.parallel < 1 || c.parallel > 1024:
		return c, fmt.Errorf("connhold: -parallel must be 1..1024, got %d", c.parallel)
	case c.hold <= 0 || c.hold > 10*time.Minute:
		return c, fmt.Errorf("connhold: -hold must be in (0, 10m], got %s", c.hold)
	}
	ap, err := netip.ParseAddrPort(c.addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return c, fmt.Errorf("connhold: -addr must be a loopback address:port, got %q", c.addr)
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	begin := time.Now()
	conns, errs, first := c.openAll(ctx)
	fmt.Fprintf(stdout, "opened=%d of=%d errors=%d open_s=%.3f first_error=%s\nready\n",
		len(conns), c.conns, errs, time.Since(begin).Seconds(), word(first))
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	released := make(chan struct{})
	go func() {
		bufio.NewReader(stdin).ReadString('\n') // a line or EOF
		close(released)
	}()
	hold := time.NewTimer(c.hold)
	defer hold.Stop()
	select {
	case <-released:
	case <-hold.C:
	case <-ctx.Done():
	}
	ok, first := c.recheckAll(conns)
	for _, h := range conns {
		h.conn.Close()
	}
	fmt.Fprintf(stdout, "rechecked=%d of=%d first_error=%s\n", ok, len(conns), word(first))
	return nil
}

// word is err's text as one key=value word, "-" for none.
func word(err error) string {
	if err == nil {
		return "-"
	}
	return strings.ReplaceAll(err.Error(), " ", "_")
}

// held is one open connection.
type held struct {
	conn net.Conn
	br   *bufio.Reader
}

// openAll opens c.conns connections, c.parallel at a time.
func (c config) openAll(ctx context.Context) ([]*held, int, error) {
	var (
		mu    sync.Mutex
		out   []*held
		errs  int
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	for range min(c.parallel, c.conns) {
		wg.Go(func() {
			for ctx.Err() == nil && next.Add(1) <= int64(c.conns) {
				h, err := c.open(ctx)
				mu.Lock()
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				} else {
					out = append(out, h)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out, errs, first
}

func (c config) open(ctx context.Context) (*held, error) {
	d := net.Dialer{Timeout: c.timeout}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	h := &held{conn: conn, br: bufio.NewReaderSize(conn, 4096)}
	if c.mode == "ws" {
		err = c.upgrade(h)
		if err == nil {
			err = c.echo(h, "open")
		}
	} else {
		err = c.get(h)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return h, nil
}

// recheckAll does each connection's exchange again, c.parallel at a time.
func (c config) recheckAll(conns []*held) (int, error) {
	var (
		ok    atomic.Int64
		mu    sync.Mutex
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	for range min(c.parallel, max(len(conns), 1)) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(conns)) {
					return
				}
				var err error
				if c.mode == "ws" {
					err = c.echo(conns[i], "again")
				} else {
					err = c.get(conns[i])
				}
				if err == nil {
					ok.Add(1)
					continue
				}
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return int(ok.Load()), first
}

// get sends one keep-alive GET and reads its answer, which must be a 200
// with a Content-Length body.
func (c config) get(h *held) error {
	h.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := fmt.Fprintf(h.conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", c.path, c.host); err != nil {
		return err
	}
	status, hdr, err := readHead(h.br)
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("GET %s: status %d", c.path, status)
	}
	n, err := strconv.ParseInt(hdr["content-length"], 10, 64)
	if err != nil {
		return fmt.Errorf("GET %s: no Content-Length", c.path)
	}
	if strings.EqualFold(hdr["connection"], "close") {
		return errors.New("GET: the proxy closes the connection")
	}
	_, err = h.br.Discard(int(n))
	return err
}

// upgrade asks for a WebSocket on /ws and checks the 101's accept key.
func (c config) upgrade(h *held) error {
	h.conn.SetDeadline(time.Now().Add(c.timeout))
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	if _, err := fmt.Fprintf(h.conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", c.host, key); err != nil {
		return err
	}
	status, hdr, err := readHead(h.br)
	if err != nil {
		return err
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if status != 101 || hdr["sec-websocket-accept"] != base64.StdEncoding.EncodeToString(sum[:]) {
		return fmt.Errorf("upgrade: status %d, accept %q", status, hdr["sec-websocket-accept"])
	}
	return nil
}

// echo sends a masked text message and reads it back.
func (c config) echo(h *held, msg string) error {
	h.conn.SetDeadline(time.Now().Add(c.timeout))
	var mask [4]byte
	rand.Read(mask[:])
	frame := append([]byte{0x81, 0x80 | byte(len(msg))}, mask[:]...)
	for i := range len(msg) {
		frame = append(frame, msg[i]^mask[i%4])
	}
	if _, err := h.conn.Write(frame); err != nil {
		return err
	}
	var head [2]byte
	if _, err := io.ReadFull(h.br, head[:]); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	n := int(head[1] & 0x7f)
	if head[0] != 0x81 || head[1]&0x80 != 0 || n >= 126 {
		return fmt.Errorf("echo: frame header %x", head)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(h.br, payload); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if string(payload) != msg {
		return fmt.Errorf("echo: %q back for %q", payload, msg)
	}
	return nil
}

// readHead reads a response's status line and headers (lower-case names).
func readHead(br *bufio.Reader) (int, map[string]string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("status line: %w", err)
	}
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0, nil, fmt.Errorf("status line %q", strings.TrimSpace(line))
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, nil, fmt.Errorf("status line %q", strings.TrimSpace(line))
	}
	hdr := map[string]string{}
	for range 100 {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, nil, fmt.Errorf("headers: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return status, hdr, nil
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			hdr[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return 0, nil, errors.New("headers: more than 100 lines")
}
