package main

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

const (
	// maxHeaderBytes bounds the request line plus headers (431 beyond).
	maxHeaderBytes = 16 << 10
	// maxBodyBytes bounds a request body that is read and discarded (413 beyond).
	maxBodyBytes = 1 << 20
)

// bodySizes maps each path to the size of the body it returns.
var bodySizes = map[string]int{
	"/":    13,
	"/1k":  1 << 10,
	"/64k": 64 << 10,
}

// canned is one prepared response, with and without Connection: close.
type canned struct {
	keepAlive, close []byte
}

// server holds the canned responses and the open connections (for close).
type server struct {
	idle      time.Duration
	responses map[string]canned
	notFound  canned

	// mu guards conns.
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newServer(idle time.Duration) *server {
	s := &server{
		idle:      idle,
		responses: make(map[string]canned, len(bodySizes)),
		notFound:  newCanned(404, "Not Found", []byte("not found\n")),
		conns:     make(map[net.Conn]struct{}),
	}
	for path, n := range bodySizes {
		s.responses[path] = newCanned(200, "OK", body(n))
	}
	return s
}

// body returns n bytes of printable text ending in a newline.
func body(n int) []byte {
	b := bytes.Repeat([]byte("swarmgate-bench-"), n/16+1)[:n]
	b[n-1] = '\n'
	return b
}

func newCanned(code int, reason string, body []byte) canned {
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n", code, reason, len(body))
	return canned{
		keepAlive: append([]byte(head+"\r\n"), body...),
		close:     append([]byte(head+"Connection: close\r\n\r\n"), body...),
	}
}

// errorResponse is a response after which the connection is closed.
func errorResponse(code int, reason string) []byte {
	return []byte(fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, reason))
}

// serve accepts until ln is closed.
func (s *server) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("backend: accept: %w", err)
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// close closes every open connection and waits for their goroutines.
func (s *server) close() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// request is what the loop needs to know about one parsed request head.
type request struct {
	resp          canned
	contentLength int64
	chunked       bool
	close         bool
	ws            bool   // GET /ws with Upgrade: websocket
	wsKey         string // its Sec-WebSocket-Key
}

// errHeaderTooLarge and errBadRequest select the error response.
var (
	errHeaderTooLarge = errors.New("header too large")
	errBadRequest     = errors.New("bad request")
)

func (s *server) serveConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, maxHeaderBytes)
	bw := bufio.NewWriterSize(c, 64<<10)
	for {
		// Flush only when no pipelined request is waiting, and arm the
		// deadline once per batch rather than once per request.
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(s.idle))
		}
		req, err := s.readRequest(br)
		var fail []byte
		switch {
		case errors.Is(err, errHeaderTooLarge):
			fail = errorResponse(431, "Request Header Fields Too Large")
		case errors.Is(err, errBadRequest):
			fail = errorResponse(400, "Bad Request")
		case err != nil:
			bw.Flush()
			return // EOF, timeout or reset: nothing to answer
		case req.chunked:
			fail = errorResponse(501, "Not Implemented")
		case req.contentLength > maxBodyBytes:
			fail = errorResponse(413, "Content Too Large")
		}
		if fail != nil {
			bw.Write(fail)
			bw.Flush()
			lingerClose(c)
			return
		}
		if req.contentLength > 0 {
			if _, err := br.Discard(int(req.contentLength)); err != nil {
				return
			}
		}
		if req.ws {
			serveWebSocket(c, br, bw, req.wsKey, s.idle)
			return
		}
		if req.close {
			bw.Write(req.resp.close)
			bw.Flush()
			return
		}
		if _, err := bw.Write(req.resp.keepAlive); err != nil {
			return
		}
	}
}

// lingerClose half-closes c and drains what the client still sends for a
// moment, so that unread request bytes do not make the kernel answer with a
// reset that destroys the error response in flight (as net/http does).
func lingerClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c, maxBodyBytes)
}

// readRequest parses one request head from br and picks its response. It
// works on the reader's buffer and allocates nothing for a well-formed
// request. io.EOF before the first byte means the client closed an idle
// connection.
func (s *server) readRequest(br *bufio.Reader) (request, error) {
	var req request
	line, err := readLine(br)
	if err != nil {
		return req, err
	}
	size := len(line)
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 || target[0] != '/' {
		return req, errBadRequest
	}
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	resp, ok := s.responses[string(target)]
	if !ok {
		resp = s.notFound
	}
	req.resp = resp
	wsPath := string(target) == wsPath
	upgrade := false
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		req.close = true // unless it asks for keep-alive below
	default:
		return req, errBadRequest
	}
	for {
		h, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return req, errBadRequest
			}
			return req, err
		}
		if size += len(h); size > maxHeaderBytes {
			return req, errHeaderTooLarge
		}
		if len(h) == 0 {
			if wsPath && upgrade {
				if req.wsKey == "" {
					return req, errBadRequest
				}
				req.ws = true
			}
			return req, nil
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return req, errBadRequest
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return req, errBadRequest
			}
			req.contentLength = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			req.chunked = true
		case wsPath && bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(value, []byte("websocket"))
		case wsPath && bytes.EqualFold(name, []byte("Sec-WebSocket-Key")):
			req.wsKey = string(value)
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				req.close = true
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				req.close = false
			}
		}
	}
}

// readLine returns one line without its CRLF (or bare LF). The slice is only
// valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	b, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errHeaderTooLarge
		}
		return nil, err
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b, nil
}

// wsPath is the path that accepts WebSocket upgrades (RFC 6455) and echoes
// every message back.
const wsPath = "/ws"

// wsMaxPayload bounds a WebSocket frame's payload; a larger one closes the
// connection.
const wsMaxPayload = 64 << 10

// wsAccept is the Sec-WebSocket-Accept of key (RFC 6455 section 4.2.2).
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// serveWebSocket answers the upgrade with 101 and echoes each frame the
// client sends, unmasked (a server's frames are not masked), until a close
// frame (echoed too), an error, or idle without a frame.
func serveWebSocket(c net.Conn, br *bufio.Reader, bw *bufio.Writer, key string, idle time.Duration) {
	fmt.Fprintf(bw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
	if bw.Flush() != nil {
		return
	}
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		op, payload, err := readFrame(br)
		if err != nil {
			return
		}
		if _, err := bw.Write(appendFrame(nil, op, payload)); err != nil || bw.Flush() != nil || op == 0x8 {
			return
		}
	}
}

// readFrame reads one WebSocket frame (FIN assumed: messages are not
// fragmented here) and returns its opcode and unmasked payload.
func readFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	op, masked, n := h[0]&0x0f, h[1]&0x80 != 0, uint64(h[1]&0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > wsMaxPayload {
		return 0, nil, fmt.Errorf("websocket: a %d-byte frame", n)
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(br, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return op, payload, nil
}

// appendFrame appends an unmasked final frame of op with payload to b.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}
