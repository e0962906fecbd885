package h1serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/swarmgate/swarmgate/internal/h1wire"
	"github.com/swarmgate/swarmgate/internal/rawio"
	"github.com/swarmgate/swarmgate/internal/workpool"
)

// A connection's state, for Shutdown.
const (
	stateNew    int32 = iota // no byte of the first request yet
	stateIdle                // no byte of the next request yet
	stateBusy                // reading a request, serving it or writing its response
	stateClosed              // closed by Shutdown while idle
)

// Buffer sizes: heads almost always fit the small reader, which is what
// an active request holds; a larger head moves to a reader of
// MaxHeaderBytes. Responses are written through a 4 KiB writer; a body of
// up to stageSize bytes that the handler ends without a flush is sent with
// a Content-Length, a longer one chunked (as net/http does).
const (
	smallReader = 4 << 10
	writerSize  = 4 << 10
	stageSize   = 2 << 10
	// discardMax is how much of a request body the handler left unread is
	// read and dropped so that the connection can be kept (net/http's
	// maxPostHandlerReadBytes); beyond that it is closed.
	discardMax = 256 << 10
	// watchDelay is how long a request may run, its body read, before a
	// read on the connection watches for the client leaving (its context
	// is then canceled). Shorter exchanges pay nothing for it.
	watchDelay = 20 * time.Millisecond
	// lingerMax bounds the wait for the client to close after the server
	// closed its side (the response is not lost to a reset).
	lingerMax = 500 * time.Millisecond
)

var (
	smallReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, smallReader) }}
	writers      = sync.Pool{New: func() any { return &wbuf{bw: bufio.NewWriterSize(nil, writerSize)} }}
	// bigReaders holds readers of one size: MaxHeaderBytes varies by
	// server, so a reader of another size is dropped instead of pooled.
	bigReaders sync.Pool
)

// reqState is what reading a request needs beside the reader: the parsed
// head (with the field slots it has grown) and the chunked decoder. It is
// pooled with the reader, so an idle connection holds neither.
type reqState struct {
	head  h1wire.Request
	chunk h1wire.ChunkedReader
}

var reqStates = sync.Pool{New: func() any { return new(reqState) }}

// wbuf is what a response holds while it is written.
type wbuf struct {
	bw    *bufio.Writer
	stage [stageSize]byte
	head  []byte // scratch for a head's lines
}

// conn is one client connection.
type conn struct {
	srv      *Server
	rwc      net.Conn
	src      connReader // what br reads from
	br       *bufio.Reader
	big      bool // br is a MaxHeaderBytes reader
	remote   string
	tls      *tls.ConnectionState
	ctx      context.Context // the base's, with what ConnContext added
	base     baseCtx
	accepted time.Time
	lim      h1wire.Limits
	rs       *reqState       // while a request is read and served
	raw      syscall.RawConn // a TCP connection's descriptor, for readFirst; else nil
	out      io.Writer       // what responses are written to: rwc, or a TCP connection's raw writes
	// onReadable is c.readable, made once; firstErr is what it met.
	onReadable func(fd uintptr) bool
	firstErr   error
	served     int                  // requests answered
	done       chan workpool.Result // a worker's answer to serveOne (workers.Run)
	serveFn    func() bool          // c.serveOne
	// sysfd is a plain TCP connection's descriptor, for parking (-1: it
	// does not park); inEpoll: it is in the parker's epoll set.
	sysfd   int32
	inEpoll bool
	// idleUntil is when the wait for the next request ends (zero while a
	// request is served): kept across a parking.
	idleUntil time.Time

	state atomic.Int32

	// mu guards what the watch goroutine shares with the serving one.
	mu        sync.Mutex
	inHandler bool
	bodyDone  bool // the request body is read to its end (or there is none)
	fired     bool // watchDelay has passed
	watching  bool
	aborting  bool
	gone      bool       // the client closed while its request ran
	watcher   ClientGone // told when gone is set (WatchClient)
	// deadlineLeft: the read deadline of the wait for the request (or of
	// its head) is still set; the watch clears it before it reads.
	deadlineLeft bool
	watchEnd     chan struct{}
	timer        *time.Timer
	// timerArmed: timer will fire (watchTimer); watchAt is when the
	// running request's watch is due.
	timerArmed bool
	watchAt    time.Time
	// The running request's context, to cancel when it ends: rctx, in its
	// response, or cancel, a context.WithCancel's (see newRequest).
	rctx   *reqCtx
	cancel context.CancelFunc
}

// connReader is the source of the connection's bufio.Reader: a byte read
// while no reader was held comes first.
type connReader struct {
	rwc     net.Conn
	raw     *rawio.Conn // a TCP connection's raw reads, else nil
	one     [1]byte
	hasByte bool
	prefix  []byte // bytes moved from a smaller reader
	// fd is the socket's descriptor while readFirst's callback runs (-1
	// otherwise): a read is then one non-blocking read(2).
	fd int
}

// errWouldBlock is a non-blocking read that found nothing to read.
var errWouldBlock = errors.New("h1serve: nothing to read yet")

func (r *connReader) Read(p []byte) (int, error) {
	if r.fd >= 0 {
		return readFD(r.fd, p)
	}
	if len(r.prefix) > 0 {
		n := copy(p, r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	}
	if r.hasByte && len(p) > 0 {
		p[0] = r.one[0]
		r.hasByte = false
		return 1, nil
	}
	if r.raw != nil {
		return r.raw.Read(p)
	}
	return r.rwc.Read(p)
}

// readFD is one non-blocking read(2) of fd into p, raw (see rawio).
func readFD(fd int, p []byte) (int, error) {
	n, err := rawio.ReadFD(fd, p)
	if err == syscall.EAGAIN {
		return 0, errWouldBlock
	}
	return n, err
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, out: rwc, accepted: time.Now(), lim: s.limits()}
	c.src.rwc = rwc
	c.src.fd = -1
	c.sysfd = -1
	// Only a plain TCP connection is read around: a wrapping type (TLS,
	// a PROXY header's replay) has its own Read.
	if tc, ok := rwc.(*net.TCPConn); ok {
		if rw := rawio.New(tc); rw != nil {
			c.src.raw = rw
			c.out = rw
		}
		if raw, err := tc.SyscallConn(); err == nil {
			c.raw = raw
			c.onReadable = c.readable
			if s.ParkIdle >= 0 {
				c.sysfd = descriptor(raw)
			}
		}
	}
	return c
}

func (c *conn) serve() {
	s := c.srv
	s.setState(c.rwc, http.StateNew)
	parked := false
	defer func() { c.recover(parked) }()
	c.remote = c.rwc.RemoteAddr().String()
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if !tc.ConnectionState().HandshakeComplete {
			c.rwc.SetDeadline(c.accepted.Add(s.readHeaderTimeout()))
			if err := tc.HandshakeContext(context.Background()); err != nil {
				if !errors.Is(err, io.EOF) {
					s.logf("http: TLS handshake error from %s: %v", c.remote, err)
				}
				return
			}
			c.rwc.SetDeadline(time.Time{})
		}
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.base = baseCtx{c: c, local: c.rwc.LocalAddr()}
	c.ctx = &c.base
	if s.ConnContext != nil {
		c.ctx = s.ConnContext(c.ctx, c.rwc)
	}
	parked = c.loop()
}

// resume serves a parked connection again, on a goroutine of its own.
func (c *conn) resume() {
	parked := false
	defer func() { c.recover(parked) }()
	parked = c.loop()
}

// recover logs a panic of the connection's goroutine, and closes the
// connection unless it was parked (then it is the parker's).
func (c *conn) recover(parked bool) {
	if err := recover(); err != nil && err != http.ErrAbortHandler {
		buf := make([]byte, 64<<10)
		buf = buf[:runtime.Stack(buf, false)]
		c.srv.logf("http: panic serving %v: %v\n%s", c.remote, err, buf)
	}
	if !parked {
		c.close()
	}
}

// loop serves requests until the connection is to close (false) or it was
// parked (true).
func (c *conn) loop() (parked bool) {
	s := c.srv
	if c.done == nil {
		c.done = make(chan workpool.Result, 1)
		c.serveFn = c.serveOne // one method value for every request
	}
	for {
		switch c.next() {
		case waitClose:
			return false
		case waitParked:
			return true
		}
		r := s.workers.Run(c.serveFn, c.done)
		c.cancelRequest()
		c.rctx, c.cancel = nil, nil // the request's context is not kept while idle
		if r.Panic != nil {
			if r.Panic != http.ErrAbortHandler {
				s.logf("http: panic serving %v: %v\n%s", c.remote, r.Panic, r.Stack)
			}
			return false
		}
		if !r.OK { // the connection closes, or the handler called runtime.Goexit
			return false
		}
		c.served++
		c.idleUntil = time.Time{}
		if c.state.CompareAndSwap(stateBusy, stateIdle) {
			s.setState(c.rwc, http.StateIdle)
		}
		if s.shutting.Load() {
			return false
		}
	}
}

// close ends the connection: buffers back to their pools, ConnState told.
func (c *conn) close() {
	if c.timer != nil {
		c.mu.Lock()
		c.inHandler = false
		c.timer.Stop()
		c.mu.Unlock()
	}
	c.cancelRequest()
	if c.rwc == nil { // hijacked or handed over
		return
	}
	c.releaseReader()
	c.rwc.Close()
	c.srv.track(c, false)
	c.srv.setState(c.rwc, http.StateClosed)
}

// detach forgets the connection without closing it: it was hijacked or
// handed over.
func (c *conn) detach() net.Conn {
	rwc := c.rwc
	c.srv.track(c, false)
	c.rwc = nil
	return rwc
}

// closeIfIdle closes c if it waits for a request (a new connection only
// once it has waited for newFor), for Shutdown.
func (c *conn) closeIfIdle(newFor time.Duration) {
	if c.state.CompareAndSwap(stateIdle, stateClosed) ||
		time.Since(c.accepted) > newFor && c.state.CompareAndSwap(stateNew, stateClosed) {
		c.rwc.Close()
	}
}

func (c *conn) releaseReader() {
	if c.rs != nil {
		c.rs.chunk = h1wire.ChunkedReader{}
		reqStates.Put(c.rs)
		c.rs = nil
	}
	if c.br == nil {
		return
	}
	c.br.Reset(nil)
	if c.big {
		bigReaders.Put(c.br)
	} else {
		smallReaders.Put(c.br)
	}
	c.br, c.big = nil, false
}

func (c *conn) acquireReader() {
	if c.rs == nil {
		c.rs = reqStates.Get().(*reqState)
	}
	if c.br != nil {
		return
	}
	c.br = smallReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.src)
}

// What next found.
const (
	waitServe  = iota // a request came: serve it
	waitClose         // the connection is to close
	waitParked        // idle for ParkIdle: parked, the goroutine is to return
)

// next waits for the next request's first byte without a buffer, then
// takes a reader for it. A plain TCP connection idle for ParkIdle is
// parked instead (see parker).
func (c *conn) next() int {
	s := c.srv
	first := c.served == 0
	if c.br != nil && c.br.Buffered() > 0 || c.src.hasByte {
		// a pipelined request, or a byte the watch read
	} else {
		c.releaseReader()
		var deadline, wait time.Time
		park := false
		if first {
			deadline = c.accepted.Add(s.readHeaderTimeout())
			wait = deadline
		} else {
			now := time.Now()
			if c.idleUntil.IsZero() {
				c.idleUntil = now.Add(s.idleTimeout())
			}
			deadline, wait = c.idleUntil, c.idleUntil
			if c.sysfd >= 0 {
				if t := now.Add(s.parkIdle()); t.Before(deadline) {
					wait, park = t, true
				}
			}
		}
		c.rwc.SetReadDeadline(wait)
		if err := c.readFirst(); err != nil {
			// A timeout, the client's close: nothing to answer.
			if park && errors.Is(err, os.ErrDeadlineExceeded) && !s.shutting.Load() {
				c.dropIdle()
				if s.parker.park(s, c) {
					return waitParked
				}
				c.rwc.SetReadDeadline(deadline)
				if c.readFirst() == nil {
					return c.busy(first)
				}
			}
			return waitClose
		}
	}
	return c.busy(first)
}

// busy takes the connection from waiting to serving a request whose
// first byte came.
func (c *conn) busy(first bool) int {
	from := stateIdle
	if first {
		from = stateNew
	}
	if !c.state.CompareAndSwap(from, stateBusy) {
		return waitClose // closed by Shutdown
	}
	c.acquireReader()
	if !first && !c.headBuffered() {
		c.rwc.SetReadDeadline(time.Now().Add(c.srv.readHeaderTimeout()))
	}
	return waitServe
}

// dropIdle lets go of what an idle connection about to park need not
// hold: the watch's timer (made again for the next request).
func (c *conn) dropIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil && !c.inHandler {
		c.timer.Stop()
		c.timer, c.timerArmed = nil, false
	}
}

// expire closes a parked connection: its idle timeout passed, or the
// server shuts down.
func (c *conn) expire() {
	c.state.Store(stateClosed)
	c.close()
}

// headBuffered reports whether the reader holds a whole request head: it
// is parsed without a read, so no header deadline is set for it (the wait's
// deadline stays until the request's end is known; see deadlineLeft).
func (c *conn) headBuffered() bool {
	if c.br.Buffered() == 0 {
		return false
	}
	b, _ := c.br.Peek(c.br.Buffered())
	return bytes.Contains(b, headEnd)
}

var headEnd = []byte("\r\n\r\n")

// readFirst waits for the first bytes of a request without holding a
// buffer. On a TCP connection it waits for the socket to be readable and
// reads what came into a pooled reader, in one read(2) when the bytes are
// there; elsewhere it reads one byte (the reader then reads the rest). It
// returns an error when nothing came (a timeout, a close).
func (c *conn) readFirst() error {
	if c.raw == nil {
		n, err := c.rwc.Read(c.src.one[:])
		c.src.hasByte = n == 1
		if c.src.hasByte {
			return nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	c.firstErr = nil
	if err := c.raw.Read(c.onReadable); err != nil {
		return err
	}
	return c.firstErr
}

// readable is readFirst's callback (c.onReadable), run with the socket's
// descriptor: it reads into a pooled reader and keeps it, or gives it back
// when nothing was there yet (false: wait for the socket).
func (c *conn) readable(fd uintptr) bool {
	br := smallReaders.Get().(*bufio.Reader)
	c.src.fd = int(fd)
	br.Reset(&c.src)
	_, err := br.Peek(1)
	c.src.fd = -1
	if err == nil {
		c.br = br
		return true
	}
	br.Reset(nil)
	smallReaders.Put(br)
	if err == errWouldBlock {
		return false
	}
	c.firstErr = err
	return true
}

// h2Preface is the HTTP/2 client connection preface (RFC 9113 section 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// isH2C reads while the bytes so far are the start of the HTTP/2 preface,
// and reports whether all of it came.
func (c *conn) isH2C() bool {
	for n := 1; n <= len(h2Preface); n++ {
		b, err := c.br.Peek(n)
		if err != nil || b[n-1] != h2Preface[n-1] {
			return false
		}
	}
	return true
}

// handOver gives the connection to H2C with the bytes read so far.
func (c *conn) handOver() {
	buffered, _ := c.br.Peek(c.br.Buffered())
	replay := append([]byte(nil), buffered...)
	c.releaseReader()
	c.rwc.SetReadDeadline(time.Time{})
	rwc := c.detach()
	c.srv.setState(rwc, http.StateHijacked)
	c.srv.H2C(&replayConn{Conn: rwc, replay: replay})
}

// replayConn reads replay before its connection.
type replayConn struct {
	net.Conn
	replay []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.replay) > 0 {
		n := copy(p, r.replay)
		r.replay = r.replay[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// firstByte is the first byte of the request about to be read (next has
// read it).
func (c *conn) firstByte() byte {
	if c.br.Buffered() == 0 && c.src.hasByte {
		return c.src.one[0]
	}
	b, err := c.br.Peek(1)
	if err != nil {
		return 0
	}
	return b[0]
}

// readHead reads a request head, moving to a reader of MaxHeaderBytes when
// it does not fit the small one.
func (c *conn) readHead() error {
	for {
		err := h1wire.ReadHead(c.br, &c.rs.head, c.lim)
		if err == nil {
			return nil
		}
		var refused *h1wire.Error
		if !c.big && errors.As(err, &refused) && (refused.Status == 431 || refused.Status == 414) &&
			c.br.Buffered() == c.br.Size() && c.br.Size() < c.lim.MaxHeaderBytes {
			c.grow()
			continue
		}
		return err
	}
}

// grow moves the small reader's bytes to a reader of MaxHeaderBytes.
func (c *conn) grow() {
	size := c.lim.MaxHeaderBytes
	big, _ := bigReaders.Get().(*bufio.Reader)
	if big == nil || big.Size() != size {
		big = bufio.NewReaderSize(nil, size)
	}
	small := c.br
	buffered, _ := small.Peek(small.Buffered())
	c.src.prefix = buffered
	big.Reset(&c.src)
	big.Peek(len(buffered)) // copies the prefix; no read from the connection
	c.src.prefix = nil
	small.Reset(nil)
	smallReaders.Put(small)
	c.br, c.big = big, true
}

// serveOne reads one request and answers it. It reports whether the
// connection may carry another.
func (c *conn) serveOne() bool {
	s := c.srv
	if c.served == 0 && s.H2C != nil && c.tls == nil && c.firstByte() == 'P' {
		if c.isH2C() {
			c.handOver()
			return false
		}
	}
	if err := c.readHead(); err != nil {
		var refused *h1wire.Error
		if errors.As(err, &refused) {
			c.refuse(refused.Status)
		}
		return false
	}
	s.setState(c.rwc, http.StateActive)

	w, r, err := c.newRequest()
	if err != nil {
		c.refuse(http.StatusBadRequest)
		return false
	}
	// No deadline on what the handler reads: bodies are bounded by the
	// handler (proxy's idleBody). Without a body, nothing reads the
	// connection until the watch, which clears the deadline first.
	c.mu.Lock()
	c.deadlineLeft = c.bodyDone
	c.mu.Unlock()
	if !c.bodyDone {
		c.rwc.SetReadDeadline(time.Time{})
	}
	if w.expect == expectOther {
		w.closeAfter = true
		w.reqBody = nil // not read: the client waits for the answer
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		return false
	}
	c.startWatch()
	s.Handler.ServeHTTP(w, r)
	if w.hijacked {
		c.cancelRequest()
		return false
	}
	c.stopWatch()
	w.finish()
	c.cancelRequest()
	if c.gone {
		return false
	}
	if w.closeAfter {
		if w.unread {
			c.linger() // the client may still be sending its body
		}
		return false
	}
	return true
}

// refuse answers a request the parser refused and closes.
func (c *conn) refuse(code int) {
	text := strconv.Itoa(code) + " " + http.StatusText(code)
	b := make([]byte, 0, 160)
	b = statusLine(b, 1, code)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(text)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, text...)
	c.rwc.SetWriteDeadline(time.Now().Add(c.srv.readHeaderTimeout()))
	c.out.Write(b)
	c.linger()
}

// linger half-closes the connection and reads what the client still
// sends, for lingerMax at most, so that a response is not lost to a reset
// that unread bytes would cause (net/http's rstAvoidanceDelay; NGINX's
// lingering close): a client still sending its body can finish, read the
// answer and close.
func (c *conn) linger() {
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.rwc.(closeWriter)
	if !ok {
		return
	}
	cw.CloseWrite()
	c.rwc.SetReadDeadline(time.Now().Add(lingerMax))
	if c.br != nil {
		c.br.Discard(c.br.Buffered())
	}
	io.Copy(io.Discard, c.rwc) // until the client closes, or lingerMax
}

// startWatch arms the watch of a request: after watchDelay, with the body
// read, a read on the connection tells the client leaving (its context is
// canceled) from a pipelined request (its byte is kept).
//
// The timer is not stopped when a request ends: a timer still armed for
// an earlier request serves this one, moved on to its time when it fires
// (keep-alive requests shorter than watchDelay then cost no timer change
// each, and no wake of the netpoller for a timer earlier than its own).
func (c *conn) startWatch() {
	c.mu.Lock()
	c.inHandler = true
	c.fired = false
	c.gone = false
	c.watchAt = time.Now().Add(watchDelay)
	switch {
	case c.timer == nil:
		c.timer = time.AfterFunc(watchDelay, c.watchTimer)
		c.timerArmed = true
	case !c.timerArmed:
		c.timer.Reset(watchDelay)
		c.timerArmed = true
	}
	c.mu.Unlock()
}

func (c *conn) watchTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timerArmed = false
	if !c.inHandler {
		return
	}
	if d := time.Until(c.watchAt); d > 0 {
		c.timer.Reset(d) // armed for an earlier request
		c.timerArmed = true
		return
	}
	c.fired = true
	c.watchLocked()
}

// watchLocked starts the watch read if the time has come and the body is
// done. c.mu is held.
func (c *conn) watchLocked() {
	if !c.fired || !c.bodyDone || c.watching || !c.inHandler || c.src.hasByte || c.br == nil || c.br.Buffered() > 0 {
		return
	}
	if c.deadlineLeft {
		c.rwc.SetReadDeadline(time.Time{})
		c.deadlineLeft = false
	}
	c.watching = true
	c.watchEnd = make(chan struct{})
	go c.watch(c.watchEnd)
}

func (c *conn) watch(end chan struct{}) {
	defer close(end)
	n, err := c.rwc.Read(c.src.one[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watching = false
	switch {
	case n == 1:
		c.src.hasByte = true
	case err != nil && !c.aborting:
		c.gone = true
		c.cancelRequest()
		if g := c.watcher; g != nil {
			c.watcher = nil
			g.ClientGone()
		}
	}
}

// stopWatch ends the watch of a request: the timer, and a watch read.
func (c *conn) stopWatch() {
	c.mu.Lock()
	c.inHandler = false
	c.watcher = nil
	if !c.watching {
		c.mu.Unlock()
		return
	}
	c.aborting = true
	end := c.watchEnd
	c.mu.Unlock()
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-end
	c.rwc.SetReadDeadline(time.Time{})
	c.mu.Lock()
	c.aborting = false
	c.mu.Unlock()
}

var aLongTimeAgo = time.Unix(1, 0)

// connKey is the context key of a request's connection, for WatchClient.
type connKey struct{}

// baseCtx is the root of a connection's context, in the conn itself: it
// holds the values net/http's server puts there (http.ServerContextKey,
// http.LocalAddrContextKey) and the connection (connKey), without an
// allocation each. It is never done.
type baseCtx struct {
	c     *conn
	local net.Addr
}

func (*baseCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*baseCtx) Done() <-chan struct{}       { return nil }
func (*baseCtx) Err() error                  { return nil }

func (b *baseCtx) Value(key any) any {
	switch key {
	case connKey{}:
		return b.c
	case http.ServerContextKey:
		return b.c.srv.HTTPServer
	case http.LocalAddrContextKey:
		return b.local
	}
	return nil
}

func (*baseCtx) String() string { return "h1serve connection context" }

// cancelRequest cancels the context of the request newRequest made last.
func (c *conn) cancelRequest() {
	switch {
	case c.rctx != nil:
		c.rctx.cancel()
	case c.cancel != nil:
		c.cancel()
	}
}

// reqCtx is a request's context when the connection's is never done (the
// usual case: see newRequest): what context.WithCancel of the connection's
// would be, canceled once when the request ends or its client leaves,
// without its two allocations while nothing waits on it. It is in the
// request's response, which is made for that request only, so a handler
// that keeps the context sees it canceled.
//
// A Done channel is only made when asked for: then the context becomes a
// context.WithCancel of the connection's (inner), which Done, Err and
// Value answer from, so that the contexts derived from it are inner's
// children as they would be of any *cancelCtx (the context package finds
// inner through Value), at the cost they had before.
type reqCtx struct {
	context.Context // the connection's; its Done is nil

	// mu guards the fields below.
	mu          sync.Mutex
	canceled    bool
	inner       context.Context // made by Done; or nil
	cancelInner context.CancelFunc
}

// closedChan is the Done channel of a context canceled before Done was
// asked for; it is never written to.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (x *reqCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.inner == nil {
		if x.canceled {
			return closedChan
		}
		x.inner, x.cancelInner = context.WithCancel(x.Context)
	}
	return x.inner.Done()
}

func (x *reqCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.inner != nil:
		return x.inner.Err()
	case x.canceled:
		return context.Canceled
	}
	return nil
}

func (x *reqCtx) Value(key any) any {
	x.mu.Lock()
	inner := x.inner
	x.mu.Unlock()
	if inner != nil {
		return inner.Value(key)
	}
	return x.Context.Value(key)
}

// cancel ends the context; later calls do nothing.
func (x *reqCtx) cancel() {
	x.mu.Lock()
	x.canceled = true
	cancel := x.cancelInner
	x.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (*reqCtx) String() string { return "h1serve request context" }

// ClientGone is told that the client of a request closed its connection
// while the request was served (see WatchClient).
type ClientGone interface{ ClientGone() }

// WatchClient has g.ClientGone called, once, when the client of the
// request whose context is ctx closes its connection while the handler
// runs: the moment the request's context is canceled, without the
// allocations of a context.AfterFunc. If the client is gone already, it is
// called at once. The watch ends with UnwatchClient or when the handler
// returns; a request has one watcher (a second replaces the first). It
// reports false, watching nothing, when ctx is not the context of a
// request this package serves.
func WatchClient(ctx context.Context, g ClientGone) bool {
	c, ok := ctx.Value(connKey{}).(*conn)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		g.ClientGone()
		return true
	}
	if c.inHandler {
		c.watcher = g
	}
	return true
}

// UnwatchClient ends the watch WatchClient started for ctx's request:
// once it returns, ClientGone is not called.
func UnwatchClient(ctx context.Context) {
	if c, ok := ctx.Value(connKey{}).(*conn); ok {
		c.mu.Lock()
		c.watcher = nil
		c.mu.Unlock()
	}
}

// bodyEnded records that the request body was read to its end.
func (c *conn) bodyEnded() {
	c.mu.Lock()
	c.bodyDone = true
	c.watchLocked()
	c.mu.Unlock()
}
