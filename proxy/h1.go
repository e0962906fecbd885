package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/swarmgate/swarmgate/internal/h1wire"
	"github.com/swarmgate/swarmgate/internal/rawio"
	"github.com/swarmgate/swarmgate/internal/sockopt"
)

// h1Transport is the HTTP/1.1 client for plain-HTTP upstreams. It does the
// work of http.Transport for the proxy's one case (a request, its response,
// a pooled keep-alive connection) on the handler's own goroutine: no read
// and write loop goroutines per connection and no hand-offs between them,
// which measured 14.7% less CPU per request than http.Transport in make bench
// (64.0 -> 54.6 µs, see bench/README.md). Upgrades go to fallback.
type h1Transport struct {
	dialer      *net.Dialer
	fallback    http.RoundTripper // Upgrade requests
	maxIdle     int               // idle connections kept per address
	idleTimeout time.Duration     // idle connections older than this are not reused

	// connectFloor is the least time a connect is given before another
	// endpoint is tried (see dial). If zero, defaultConnectFloor.
	connectFloor time.Duration
	// userTimeout is how long data written to an upstream may stay
	// unacknowledged before the connection is given up (TCP_USER_TIMEOUT):
	// a request sent on a pooled connection to a task whose node vanished
	// fails after this, not after the route's response timeout. If zero,
	// defaultUserTimeout; negative leaves the kernel's default (minutes).
	userTimeout time.Duration

	// connectEWMA is the connect latency of every address together, in
	// nanoseconds (0: none measured): the estimate for an address that has
	// none of its own.
	connectEWMA atomic.Int64

	// mu guards idle, dialing and closed.
	mu      sync.Mutex
	idle    map[string][]*h1Conn
	dialing map[string]*dialState // per address: dial slots and connect latency
	closed  bool
}

// dialState is an address's dials in progress and observed connect latency.
type dialState struct {
	slots chan struct{} // a slot per dial in progress
	ewma  atomic.Int64  // connect latency, nanoseconds; 0: none measured
}

// Connect hedging. A connect to a task takes well under a millisecond on an
// overlay network, so one that has not completed after many times the
// address's usual connect latency is to a task that is gone (its node lost,
// unplugged or partitioned away, before discovery knows). Waiting for the
// dial timeout (5 s, a client's whole patience) would cost the request; so
// after connectFactor times the observed latency, at least the floor, the
// request fails over to another endpoint (a connect error: nothing was sent)
// while the first dial goes on; if it completes, its connection waits in the
// pool. The floor keeps a starved machine (connects of tens of
// milliseconds when both cores are saturated) from failing over healthy
// endpoints.
const (
	defaultConnectFloor = 100 * time.Millisecond
	connectFactor       = 8
	defaultUserTimeout  = 2 * time.Second
)

// errConnectSlow is the error of a connect given up for another endpoint.
var errConnectSlow = errors.New("connect not completed within the adaptive connect timeout: trying another endpoint")

// slowConnectError is errConnectSlow as a timeout, so that callers that ask
// net.Error see one.
type slowConnectError struct{ wait time.Duration }

func (e *slowConnectError) Error() string {
	return errConnectSlow.Error() + " (" + e.wait.String() + ")"
}
func (e *slowConnectError) Unwrap() error   { return errConnectSlow }
func (e *slowConnectError) Timeout() bool   { return true }
func (e *slowConnectError) Temporary() bool { return true }

// maxDialing bounds the dials in progress to one address: requests beyond
// it wait for a slot (or leave, if their client does), so that a burst of
// requests, or of streams reset at once, cannot open connections faster
// than the pool can use them.
const maxDialing = 32

// h1Conn is one upstream connection.
type h1Conn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   string
	reused bool // served a request before
	// deadline: a deadline may be set on c (by an exchange, see attach).
	deadline bool
	idleAt   time.Time // when it went back to the pool

	// The response being read: its head, a head too large for br, its
	// chunked body. Reused from one response to the next.
	head    h1wire.Response
	spill   []byte
	chunked h1wire.ChunkedReader
	// header is the Header of the proxy's responses on this connection
	// (an exchange with an h1Response), cleared for each: the proxy copies
	// it to the client's response before the body's end, when the body's
	// Close takes it back from the response (h1Body.header).
	header http.Header
}

// maxResponseHeader bounds an upstream response's header block.
const maxResponseHeader = 1 << 20

// maxHeaderKept is the most fields of a response whose header map a
// connection keeps for its next response.
const maxHeaderKept = 32

// maxSpillKept is the largest spill buffer (a head larger than the
// connection's read buffer) a connection keeps for its next response.
const maxSpillKept = 64 << 10

// responseLimits bound an upstream response's head and trailers: by size
// (1 MiB each), and by field count only as far as the size does.
var responseLimits = h1wire.Limits{MaxHeaderBytes: maxResponseHeader, MaxFields: maxResponseHeader / 4, MaxTrailerBytes: maxResponseHeader}

var _ http.RoundTripper = (*h1Transport)(nil)

// RoundTrip sends req to req.URL.Host over a pooled connection and returns
// the response; its Body returns the connection to the pool once read to
// the end. A dial error is a *net.OpError with Op "dial", as from
// http.Transport. A request without a body that meets a connection the
// upstream closed while it was idle is retried once on a new connection.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, false, nil, nil, nil)
}

// roundTrip sends req, on a new connection when fresh, never a pooled one:
// the proxy's retry after a pooled connection went stale (errStaleConn),
// whose path to the next endpoint a connect proves within the adaptive
// connect timeout, where another pooled connection across the same broken
// path would wait out the user timeout again. st, when not nil,
// is how the caller ends the exchange early and bounds its response (the
// proxy's forward, which watches the client itself); when nil, req's
// context ends it, as for any http.RoundTripper. fields, when not nil,
// are the header fields written instead of req.Header's. mem, when not
// nil, holds the response (see h1Response). Upgrades go to fallback, with
// req's context.
func (t *h1Transport) roundTrip(req *http.Request, fresh bool, st *exchangeStop, fields *upstreamFields, mem *h1Response) (*http.Response, error) {
	if upgradeType(req.Header) != "" {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	if st == nil {
		st = &exchangeStop{ctx: ctx}
		st.unwatch = context.AfterFunc(ctx, st.end)
	}
	resp, err := t.roundTripStop(ctx, req, fresh, st, fields, mem)
	if err != nil {
		st.finish()
	}
	return resp, err
}

func (t *h1Transport) roundTripStop(ctx context.Context, req *http.Request, fresh bool, st *exchangeStop, fields *upstreamFields, mem *h1Response) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		pc, err := t.connStop(ctx, req.URL.Host, fresh || attempt > 0, st)
		if err != nil {
			return nil, err
		}
		if err := st.Err(); err != nil {
			t.put(pc, st.clock) // nothing was written: the connection serves the next request
			return nil, err
		}
		resp, err := t.exchange(st, pc, req, fields, mem)
		if err == nil {
			return resp, nil
		}
		pc.c.Close()
		if attempt == 0 && pc.reused && errors.Is(err, errIdleClosed) && req.Body == nil && st.Err() == nil {
			continue // the upstream closed the idle connection: nothing was processed
		}
		if errors.Is(err, errStaleConn) {
			// The path to the task is broken: its other idle connections
			// would wait out the same timeout.
			t.dropIdle(pc.addr)
		}
		return nil, err
	}
}

// errIdleClosed is a reused connection that ended before any byte of the
// response: the upstream closed it while it was idle.
var errIdleClosed = errors.New("upstream closed an idle connection")

// errStaleConn is a reused connection that failed before any byte of the
// response other than by the upstream's close: the request's data went
// unacknowledged for the user timeout (a partition, a lost node) or the
// task's address became unreachable. A new connection to the same task
// would fail the same way, so the proxy treats the endpoint as one that
// failed to connect and retries an idempotent request on another endpoint,
// on a new connection (roundTrip's fresh).
var errStaleConn = errors.New("reused upstream connection went stale")

// closedByPeer reports whether err is the upstream's end of a connection
// (EOF, a reset, a broken pipe): what a request on a connection the upstream
// closed while it was idle meets, and what a new connection to the same task
// answers.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// exchange writes req on pc and reads the response head, within st's
// response deadline; st's end interrupts it (and the body's reads). The
// response is built in mem, or in a new h1Response when mem is nil.
func (t *h1Transport) exchange(st *exchangeStop, pc *h1Conn, req *http.Request, fields *upstreamFields, mem *h1Response) (*http.Response, error) {
	if err := st.attach(pc); err != nil {
		return nil, err
	}
	err := writeRequestFields(pc.bw, req, fields)
	if err == nil {
		err = pc.bw.Flush()
	}
	if err == nil {
		st.bodySent()
		// The first byte of the response, or the end of a connection the
		// upstream had closed while it was idle.
		_, err = pc.br.Peek(1)
	}
	if err != nil {
		st.detach()
		if err := st.stopErr(err); err != nil {
			return nil, err
		}
		if pc.reused {
			if closedByPeer(err) {
				return nil, errIdleClosed
			}
			return nil, fmt.Errorf("%w: %w", errStaleConn, err)
		}
		return nil, err
	}
	for {
		err := h1wire.ReadResponseHead(pc.br, &pc.head, req.Method == http.MethodHead, responseLimits, &pc.spill)
		if err != nil {
			st.detach()
			if err := st.stopErr(err); err != nil {
				return nil, err
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading upstream response head: %w", err)
		}
		if code := pc.head.Status; code < 200 && code != http.StatusSwitchingProtocols {
			continue // 100 Continue, 103 Early Hints: interim, not forwarded
		}
		var header http.Header // a new map, unless the connection's is lent
		if mem == nil {
			mem = new(h1Response)
		} else if len(pc.head.Fields) <= maxHeaderKept {
			if pc.header == nil {
				pc.header = make(http.Header, len(pc.head.Fields))
			}
			header = pc.header
			clear(header)
		}
		resp := newResponse(&pc.head, req, mem, header)
		if cap(pc.spill) > maxSpillKept {
			pc.spill = nil // a pooled connection does not keep a large head's buffer
		}
		b := &mem.body
		*b = h1Body{t: t, pc: pc, st: st, keep: !resp.Close && !req.Close, trailer: &resp.Trailer}
		if header != nil {
			b.header = &resp.Header
		}
		b.frame()
		st.headRead(b.buffered())
		resp.Body = b
		return resp, nil
	}
}

// newResponse builds the *http.Response that http.ReadResponse would for
// the head h: the same Header (framing fields removed or rewritten as it
// does: Transfer-Encoding, a repeated Content-Length, a chunked response's
// Trailer, an HTTP/1.1 Connection: close; Cache-Control: no-cache added
// for Pragma: no-cache), Status, ContentLength, TransferEncoding, Close and
// declared Trailer keys. Every string in it is cut from one copy of the
// head's bytes, with field names in canonical form. The response is m's;
// its Header is header, an empty map, or a new one if header is nil.
func newResponse(h *h1wire.Response, req *http.Request, m *h1Response, header http.Header) *http.Response {
	size := len(h.StatusText)
	for _, f := range h.Fields {
		size += len(f.Name) + len(f.Value)
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.Write(h.StatusText)
	for _, f := range h.Fields {
		writeCanonical(&sb, f.Name)
		sb.Write(f.Value)
	}
	all := sb.String()
	resp := &m.resp
	*resp = http.Response{Status: all[:len(h.StatusText)], StatusCode: h.Status, Proto: "HTTP/1.1", ProtoMajor: 1,
		ProtoMinor: h.Minor, Close: h.Close, Request: req}
	if h.Minor == 0 {
		resp.Proto = "HTTP/1.0"
	}
	if header == nil {
		header = make(http.Header, len(h.Fields))
	}
	vals := m.vals[:]
	if len(h.Fields) > len(vals) {
		vals = make([]string, len(h.Fields))
	}
	chunked := false
	pos := len(h.StatusText)
	for _, f := range h.Fields {
		k := all[pos : pos+len(f.Name)]
		pos += len(f.Name)
		v := all[pos : pos+len(f.Value)]
		pos += len(f.Value)
		if vv := header[k]; vv != nil {
			header[k] = append(vv, v)
			continue
		}
		vals[0] = v
		header[k] = vals[:1:1]
		vals = vals[1:]
	}
	if _, ok := header["Transfer-Encoding"]; ok {
		delete(header, "Transfer-Encoding")
		chunked = true // the head's rules leave only a single "chunked"
		resp.TransferEncoding = []string{"chunked"}
	}
	if cl := header["Content-Length"]; len(cl) > 1 {
		header["Content-Length"] = cl[:1] // identical, as the head's rules require
	}
	if vv, ok := header["Trailer"]; ok && chunked {
		delete(header, "Trailer")
		for _, v := range vv {
			for k := range strings.SplitSeq(v, ",") {
				if k = textproto.TrimString(k); k != "" {
					if resp.Trailer == nil {
						resp.Trailer = make(http.Header)
					}
					resp.Trailer[http.CanonicalHeaderKey(k)] = nil
				}
			}
		}
	}
	if h.Minor == 1 && httpguts.HeaderValuesContainsToken(header["Connection"], "close") {
		delete(header, "Connection")
	}
	if p := header["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := header["Cache-Control"]; !ok {
			header["Cache-Control"] = []string{"no-cache"}
		}
	}
	resp.Header = header
	switch {
	case req.Method == http.MethodHead:
		resp.ContentLength = h.ContentLength
	case h.Status < 200, h.Status == http.StatusNoContent, h.Status == http.StatusNotModified:
		resp.ContentLength = 0
	case chunked:
		resp.ContentLength = -1
	default:
		resp.ContentLength = h.ContentLength
	}
	return resp
}

// h1Response is the memory of one response of the own transport: the
// response, its body and its header's first values, in one allocation (or
// none: the proxy's exchange holds one, for its upstream response). It
// lives as long as the response, and is not reused for another. A response
// made in the proxy's h1Response has its connection's header map, valid
// until the body is closed (see h1Conn.header).
type h1Response struct {
	resp http.Response
	body h1Body
	vals [8]string // the values of a head of up to 8 fields
}

// writeCanonical writes a field name (a token) in canonical form, as
// textproto.CanonicalMIMEHeaderKey would return it: upper case first and
// after each '-', lower case elsewhere.
func writeCanonical(sb *strings.Builder, name []byte) {
	upper := true
	for _, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		sb.WriteByte(c)
		upper = c == '-'
	}
}

// writeRequest writes req on bw as net/http's Request.Write would (the same
// bytes: request line, Host, User-Agent, framing fields, the other fields in
// sorted order, then the body and any trailers), without its per-request
// allocations (a sorter, a transferWriter, fmt, a 32 KiB copy buffer). The
// few requests whose framing net/http decides by reading the body first (an
// unknown length on a method that usually has no body, a non-nil body of
// length zero), CONNECT, and those with a Transfer-Encoding other than
// chunked go to Request.Write itself. An Expect field is written like any
// other and the body follows at once, as Request.Write does (the edge's
// servers answer 100-continue themselves and remove the field; an upstream's
// 100 Continue is dropped by exchange). The head is flushed before a body
// is copied; chunks are flushed as they are written.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	return writeRequestFields(bw, req, nil)
}

// writeRequestFields is writeRequest with the header fields of f instead
// of req.Header, when f is not nil.
func writeRequestFields(bw *bufio.Writer, req *http.Request, f *upstreamFields) error {
	if req.ContentLength != 0 && req.Body == nil {
		return fmt.Errorf("http: Request.ContentLength=%d with nil Body", req.ContentLength)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	length := req.ContentLength
	te := req.TransferEncoding
	switch {
	case body == nil:
		length, te = 0, nil
	case len(te) > 0 && te[0] == "chunked":
		length = -1
	case len(te) > 0, length == 0, length < 0 && lacksBody(method), method == http.MethodConnect:
		if f != nil {
			r := *req
			r.Header = f.header()
			req = &r
		}
		return req.Write(bw) // net/http probes the body or sends it close-delimited
	case length < 0:
		te = chunkedTE
	}
	chunked := length < 0
	host, err := outgoingHost(req)
	if err != nil {
		return err
	}
	uri := req.URL.Opaque
	switch {
	case uri == "":
		uri = req.URL.EscapedPath()
		if uri == "" {
			uri = "/"
		}
	case strings.HasPrefix(uri, "//"):
		uri = req.URL.Scheme + ":" + uri
	}
	query := req.URL.ForceQuery || req.URL.RawQuery != ""
	if ctlByte(uri) || query && ctlByte(req.URL.RawQuery) {
		return errors.New("net/http: can't write control character in Request.URL")
	}
	var trailer []string
	if chunked && req.Trailer != nil {
		trailer = make([]string, 0, len(req.Trailer))
		for k := range req.Trailer {
			k = http.CanonicalHeaderKey(k)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return fmt.Errorf("invalid Trailer key %q", k)
			}
			trailer = append(trailer, k)
		}
		slices.Sort(trailer)
	}

	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	if query {
		bw.WriteByte('?')
		bw.WriteString(req.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	ua := "Go-http-client/1.1"
	if f != nil {
		ua = f.userAgent() // an absent one stays absent
	} else if vv, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = vv[0]
		}
	}
	if ua != "" {
		writeField(bw, "User-Agent", cleanValue(ua))
	}
	// The fields of f have no Connection: it is hop-by-hop.
	if req.Close && (f != nil || !hasToken(firstValue(req.Header, "Connection"), "close")) {
		bw.WriteString("Connection: close\r\n")
	}
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case length > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), length, 10))
		bw.WriteString("\r\n")
	}
	if len(trailer) > 0 {
		bw.WriteString("Trailer: ")
		for i, k := range trailer {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(k)
		}
		bw.WriteString("\r\n")
	}
	if f != nil {
		f.write(bw)
	} else {
		writeFields(bw, req.Header, true)
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if body == nil {
		return nil
	}
	if err := bw.Flush(); err != nil {
		body.Close()
		return err
	}
	if chunked {
		err = writeChunked(bw, body, req.Trailer)
	} else {
		err = writeLength(bw, body, length)
	}
	if cerr := body.Close(); err == nil {
		err = cerr
	}
	return err
}

// chunkedTE is the Transfer-Encoding of a body of unknown length.
var chunkedTE = []string{"chunked"}

// lacksBody reports the methods that net/http probes before it sends a body
// of unknown length with them (requestMethodUsuallyLacksBody).
func lacksBody(method string) bool {
	switch method {
	case "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
		return true
	}
	return false
}

// outgoingHost is the Host field Request.Write sends: req.Host or the URL's,
// in punycode, empty if it is not a valid field value, without an IPv6 zone.
func outgoingHost(req *http.Request) (string, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	host, err := httpguts.PunycodeHostPort(host)
	if err != nil {
		return "", err
	}
	if !httpguts.ValidHostHeader(host) {
		return "", nil
	}
	if strings.HasPrefix(host, "[") {
		if i := strings.LastIndex(host, "]"); i >= 0 {
			if j := strings.LastIndex(host[:i], "%"); j >= 0 {
				host = host[:j] + host[i:]
			}
		}
	}
	return host, nil
}

// reqExcluded are the fields writeRequest writes itself (or never).
func reqExcluded(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// writeFields writes h in key order, as Header.Write does: fields with an
// invalid name are left out, CR and LF in values become spaces and values
// are trimmed. request leaves out the fields of reqExcluded.
func writeFields(bw *bufio.Writer, h http.Header, request bool) {
	var buf [48]string
	keys := buf[:0]
	for k := range h {
		if request && reqExcluded(k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range h[k] {
			writeField(bw, k, cleanValue(v))
		}
	}
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// cleanValue is a field value as net/http writes it: CR and LF replaced by
// spaces, leading and trailing spaces and tabs trimmed.
func cleanValue(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
	}
	return textproto.TrimString(v)
}

func firstValue(h http.Header, k string) string {
	if vv := h[k]; len(vv) > 0 {
		return vv[0]
	}
	return ""
}

// hasToken reports whether token is in v, delimited by spaces, tabs or
// commas, ignoring ASCII case (net/http's hasToken).
func hasToken(v, token string) bool {
	for sp := 0; sp+len(token) <= len(v); sp++ {
		if sp > 0 && !tokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !tokenBoundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func tokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

func ctlByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// writeLength copies a body of the given length, then reads what the body
// has beyond it, which is an error (as in Request.Write).
func writeLength(bw *bufio.Writer, body io.Reader, length int64) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for n < length {
		nr, err := body.Read(buf[:min(int64(len(buf)), length-n)])
		if nr > 0 {
			if _, werr := bw.Write(buf[:nr]); werr != nil {
				return werr
			}
			n += int64(nr)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n == length {
		extra, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{body}, buf)
		if err != nil {
			return err
		}
		n += extra
	}
	if n != length {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", length, n)
	}
	return nil
}

// writeChunked copies a body in the chunked coding, a chunk per read,
// flushed at once (a slow body's bytes are not held back), then the last
// chunk and the trailer fields.
func writeChunked(bw *bufio.Writer, body io.Reader, trailer http.Header) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		nr, err := body.Read(buf)
		if nr > 0 {
			bw.Write(strconv.AppendUint(bw.AvailableBuffer(), uint64(nr), 16))
			bw.WriteString("\r\n")
			bw.Write(buf[:nr])
			bw.WriteString("\r\n")
			if ferr := bw.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	bw.WriteString("0\r\n")
	if trailer != nil {
		writeFields(bw, trailer, false)
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// exchangeStop ends an exchange on the own transport early and bounds its
// response: end (the client gone, the backend drain deadline) sets a past
// deadline on the connection in use, so that blocked I/O returns at once,
// and the response timeout is a deadline on that connection, not a timer
// and a context per request. A request without a body has a fixed
// deadline, its connect included; one with a body has afterBody, from the
// body's end.
type exchangeStop struct {
	deadline  time.Time       // the response head's deadline; zero if none
	afterBody time.Duration   // the response timeout from the body's end; 0 if none
	unwatch   func() bool     // a context.AfterFunc's stop, for finish; or nil
	ctx       context.Context // the request's, whose error Err returns once ended; or nil
	// clock is the caller's latest reading of the system clock, or zero:
	// the proxy's as the exchange starts (takeIdle's now) and as its
	// response ends (put's idle time), so that the transport reads none of
	// its own. Only the exchange's goroutine touches it.
	clock time.Time

	mu       sync.Mutex
	pc       *h1Conn       // the connection of the exchange in progress, or nil
	ended    bool          // end was called
	timedOut atomic.Bool   // the response deadline passed
	done     chan struct{} // closed by end; made for the waits that need it
}

// errTimedOut is an exchange whose response deadline passed.
var errTimedOut = errors.New("upstream response timed out")

// ClientGone ends the exchange (h1serve.ClientGone).
func (st *exchangeStop) ClientGone() { st.end() }

// end interrupts the exchange and any that would start: its error is
// context.Canceled, as a canceled request context's.
func (st *exchangeStop) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return
	}
	st.ended = true
	if st.pc != nil {
		st.pc.c.SetDeadline(aLongTimeAgo)
	}
	if st.done != nil {
		close(st.done)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// Err is context.Canceled once end was called, errTimedOut once the
// deadline passed, else nil.
func (st *exchangeStop) Err() error {
	st.mu.Lock()
	ended := st.ended
	st.mu.Unlock()
	switch {
	case ended && st.ctx != nil && st.ctx.Err() != nil:
		return st.ctx.Err()
	case ended:
		return context.Canceled
	case st.timedOut.Load():
		return errTimedOut
	}
	return nil
}

// timed reports whether a response deadline applies.
func (st *exchangeStop) timed() bool { return !st.deadline.IsZero() || st.afterBody > 0 }

// stopErr is the error of an exchange whose I/O failed with err: st's own
// when it was ended, or when err is the response deadline passing
// (errTimedOut, which the proxy answers 504); else nil, the I/O's error
// stands. Only st sets deadlines on a connection during an exchange.
func (st *exchangeStop) stopErr(err error) error {
	if e := st.Err(); e != nil {
		return e
	}
	if st.timed() && errors.Is(err, os.ErrDeadlineExceeded) {
		st.timedOut.Store(true)
		return errTimedOut
	}
	return nil
}

// attach makes pc the exchange's connection, with the response deadline
// (or none: a deadline an exchange before left is cleared); it fails if
// the exchange was ended.
func (st *exchangeStop) attach(pc *h1Conn) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return context.Canceled
	}
	st.pc = pc
	switch {
	case !st.deadline.IsZero():
		pc.c.SetDeadline(st.deadline)
		pc.deadline = true
	case pc.deadline:
		pc.c.SetDeadline(time.Time{})
		pc.deadline = false
	}
	return nil
}

// bodySent starts a body's response timeout, unless the exchange was
// ended (its past deadline stays).
func (st *exchangeStop) bodySent() {
	if st.afterBody <= 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended && st.pc != nil {
		st.pc.c.SetReadDeadline(time.Now().Add(st.afterBody))
		st.pc.deadline = true
	}
}

// headRead clears the response deadline once the head is read: the
// timeout is for the head, not for the body. A body the reader holds
// whole is read without the connection: its deadline stays, for the
// connection's next exchange to replace (attach). An ended exchange keeps
// its past deadline.
func (st *exchangeStop) headRead(bodyBuffered bool) {
	if bodyBuffered {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended && st.pc != nil && st.pc.deadline {
		st.pc.c.SetDeadline(time.Time{})
		st.pc.deadline = false
	}
}

// detach ends the connection's part in the exchange. It reports whether
// end interrupted it (its deadline is then in the past: it must close).
func (st *exchangeStop) detach() (interrupted bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pc = nil
	return st.ended
}

// doneChan is closed when the exchange is ended.
func (st *exchangeStop) doneChan() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done == nil {
		st.done = make(chan struct{})
		if st.ended {
			close(st.done)
		}
	}
	return st.done
}

// deadlineTimer is a timer for the response deadline, nil (never ready)
// when there is none; the caller stops it.
func (st *exchangeStop) deadlineTimer() *time.Timer {
	if st.deadline.IsZero() {
		return nil
	}
	return time.NewTimer(time.Until(st.deadline))
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// finish releases what RoundTrip set up for st: the exchange is over.
func (st *exchangeStop) finish() {
	if st.unwatch != nil {
		st.unwatch()
	}
}

// conn returns an idle connection to addr, or dials one, until ctx is done.
func (t *h1Transport) conn(ctx context.Context, addr string, fresh bool) (*h1Conn, error) {
	st := &exchangeStop{ctx: ctx}
	defer context.AfterFunc(ctx, st.end)()
	return t.connStop(ctx, addr, fresh, st)
}

// connStop is conn until st is ended or its deadline passes.
func (t *h1Transport) connStop(ctx context.Context, addr string, fresh bool, st *exchangeStop) (*h1Conn, error) {
	if !fresh {
		if pc := t.takeIdle(addr, st.clock); pc != nil {
			return pc, nil
		}
	}
	ds := t.dialState(addr)
	select {
	case ds.slots <- struct{}{}:
	default:
		dl := st.deadlineTimer()
		select {
		case ds.slots <- struct{}{}:
			stopTimer(dl)
		case <-st.doneChan():
			stopTimer(dl)
			return nil, st.Err()
		case <-timerC(dl):
			st.timedOut.Store(true)
			return nil, errTimedOut
		}
	}
	if !fresh {
		// A dial that ended while this one waited may have left one.
		if pc := t.takeIdle(addr, time.Time{}); pc != nil {
			<-ds.slots
			return pc, nil
		}
	}
	return t.dial(ctx, addr, ds, st)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// dial connects to addr holding one of its dial slots, which the dial frees
// when it ends. It waits for the connect at most the address's adaptive
// connect timeout (connectWait): past it, it returns a dial error so that
// the proxy tries another endpoint, and the dial goes on (see
// defaultConnectFloor). A dial the client gives up on (a reset stream, a
// closed connection) also completes, bounded by the dial timeout, and its
// connection waits in the pool for the next request: a flood of requests
// that are cancelled at once costs connections only up to the pool's size.
// A failed or slow connect drops the address's idle connections: a task
// that does not answer a connect will not answer on them either.
func (t *h1Transport) dial(ctx context.Context, addr string, ds *dialState, st *exchangeStop) (*h1Conn, error) {
	type result struct {
		pc  *h1Conn
		err error
	}
	done := make(chan result, 1)
	wait := t.connectWait(ds)
	start := time.Now()
	go func() {
		defer func() { <-ds.slots }()
		c, err := t.dialer.DialContext(context.WithoutCancel(ctx), "tcp", addr)
		if err != nil {
			t.dropIdle(addr)
			done <- result{err: err}
			return
		}
		t.observeConnect(ds, time.Since(start))
		t.setUserTimeout(c)
		// The buffers read and write the socket raw (see rawio): the
		// exchange's system calls do not wake the runtime's monitor.
		var rw io.ReadWriter = c
		if raw := rawio.New(c); raw != nil {
			rw = raw
		}
		done <- result{pc: &h1Conn{c: c, br: bufio.NewReaderSize(rw, 16<<10), bw: bufio.NewWriterSize(rw, 16<<10), addr: addr}}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	dl := st.deadlineTimer()
	defer stopTimer(dl)
	var err error
	select {
	case r := <-done:
		return r.pc, r.err
	case <-timer.C:
		err = &net.OpError{Op: "dial", Net: "tcp", Err: &slowConnectError{wait: wait}}
	case <-st.doneChan():
		err = st.Err()
	case <-timerC(dl):
		st.timedOut.Store(true)
		err = errTimedOut
	}
	// The dial and the timer may both be ready (a starved process sees
	// them at once): a completed dial wins.
	select {
	case r := <-done:
		return r.pc, r.err
	default:
	}
	if _, slow := err.(*net.OpError); slow {
		t.dropIdle(addr)
	}
	go func() {
		if r := <-done; r.err == nil {
			t.put(r.pc, time.Time{})
		}
	}()
	return nil, err
}

// connectWait is how long a connect to the address may take before another
// endpoint is tried: connectFactor times its connect latency (that of all
// addresses while it has none), at least the floor, at most the dial timeout.
func (t *h1Transport) connectWait(ds *dialState) time.Duration {
	floor := t.connectFloor
	if floor <= 0 {
		floor = defaultConnectFloor
	}
	est := ds.ewma.Load()
	if est == 0 {
		est = t.connectEWMA.Load()
	}
	wait := max(time.Duration(est)*connectFactor, floor)
	if t.dialer.Timeout > 0 {
		wait = min(wait, t.dialer.Timeout)
	}
	return wait
}

// observeConnect folds a connect's latency into the address's estimate and
// the transport's: a slower sample moves it half way up, a faster one an
// eighth of the way down, so one slow connect raises the timeout at once
// and it comes back down gradually.
func (t *h1Transport) observeConnect(ds *dialState, d time.Duration) {
	fold(&ds.ewma, int64(max(d, 1)))
	fold(&t.connectEWMA, int64(max(d, 1)))
}

func fold(v *atomic.Int64, s int64) {
	for {
		old := v.Load()
		next := s
		switch {
		case old == 0:
		case s > old:
			next = old + (s-old)/2
		default:
			next = old - (old-s)/8
		}
		if v.CompareAndSwap(old, next) {
			return
		}
	}
}

// setUserTimeout sets TCP_USER_TIMEOUT on an upstream connection.
func (t *h1Transport) setUserTimeout(c net.Conn) {
	d := t.userTimeout
	if d == 0 {
		d = defaultUserTimeout
	}
	if d < 0 {
		return
	}
	sockopt.SetTCPUserTimeout(c, d)
}

// dialState returns the dial state of addr. It stays while the address
// has idle connections or dials; CloseIdleConnections drops the others
// (their connect latency is then estimated from the transport's again).
func (t *h1Transport) dialState(addr string) *dialState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dialing == nil {
		t.dialing = make(map[string]*dialState)
	}
	ds := t.dialing[addr]
	if ds == nil {
		ds = &dialState{slots: make(chan struct{}, maxDialing)}
		t.dialing[addr] = ds
	}
	return ds
}

// dropIdle closes the idle connections to addr.
func (t *h1Transport) dropIdle(addr string) {
	t.mu.Lock()
	list := t.idle[addr]
	delete(t.idle, addr)
	t.mu.Unlock()
	for _, pc := range list {
		pc.c.Close()
	}
}

// takeIdle returns an idle connection to addr that is young enough to
// reuse, or nil. now is the caller's reading of the clock (zero: read it).
// A connection idle for longer than staleCheckAfter is checked first
// (alive), outside the lock: other requests take and return connections
// meanwhile.
func (t *h1Transport) takeIdle(addr string, now time.Time) *h1Conn {
	if now.IsZero() {
		now = time.Now()
	}
	for {
		pc, expired := t.popIdle(addr, now)
		for _, old := range expired {
			old.c.Close()
		}
		if pc == nil {
			return nil
		}
		if now.Sub(pc.idleAt) > staleCheckAfter && !pc.alive() {
			pc.c.Close()
			continue
		}
		return pc
	}
}

// popIdle takes the most recently used idle connection to addr that is
// not older than the idle timeout, and those that are (to be closed).
func (t *h1Transport) popIdle(addr string, now time.Time) (pc *h1Conn, expired []*h1Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[addr]
	for len(list) > 0 {
		pc = list[len(list)-1]
		list = list[:len(list)-1]
		if now.Sub(pc.idleAt) > t.idleTimeout {
			expired = append(expired, pc)
			pc = nil
			continue
		}
		t.idle[addr] = list
		pc.reused = true
		return pc, expired
	}
	delete(t.idle, addr)
	return nil, expired
}

// staleCheckAfter is how long a connection may sit idle before it is checked
// for a close by the upstream (keep-alive timeouts are seconds long; under
// load connections are reused within milliseconds and are not checked).
const staleCheckAfter = time.Second

// alive reports whether an idle connection is still open: nothing to read.
// A close, a reset or unexpected bytes mean it is not. On a socket the
// check does not wait (rawio.Quiet); on another connection it waits a
// millisecond for a byte.
func (pc *h1Conn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false // bytes nobody asked for
	}
	if quiet, ok := rawio.Quiet(pc.c); ok {
		return quiet
	}
	pc.c.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := pc.br.Peek(1)
	pc.c.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// put returns a connection whose response was read to the end. A
// deadline may be left on it (see headRead): the next exchange sets its
// own or clears it (attach). now is the caller's reading of the clock
// (zero: read it); an earlier one only makes the connection look older.
func (t *h1Transport) put(pc *h1Conn, now time.Time) {
	if now.IsZero() {
		now = time.Now()
	}
	pc.idleAt = now
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || len(t.idle[pc.addr]) >= t.maxIdle {
		pc.c.Close()
		return
	}
	if t.idle == nil {
		t.idle = make(map[string][]*h1Conn)
	}
	t.idle[pc.addr] = append(t.idle[pc.addr], pc)
}

// CloseIdleConnections closes every idle connection.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	for addr, ds := range t.dialing {
		if len(ds.slots) == 0 {
			delete(t.dialing, addr) // no dial in progress: nothing waits on it
		}
	}
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.c.Close()
		}
	}
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// h1Body is a response body, framed as its head says: read to the end,
// its connection goes back to the pool; closed early, the connection is
// closed.
type h1Body struct {
	t       *h1Transport
	pc      *h1Conn
	st      *exchangeStop
	keep    bool
	mode    bodyMode
	remain  int64        // bodyLength: bytes left
	trailer *http.Header // the response's Trailer, filled at the end of a chunked body
	header  *http.Header // the response's Header when it is pc's map, set to nil by Close
	eof     bool
	done    bool
}

type bodyMode uint8

const (
	bodyNone       bodyMode = iota // HEAD, 1xx, 204, 304, Content-Length: 0
	bodyLength                     // Content-Length bytes
	bodyChunked                    // the chunked coding, read by pc.chunked
	bodyUntilClose                 // the rest of the connection
)

// buffered reports whether the whole body is in the connection's reader:
// reading it reads nothing from the connection.
func (b *h1Body) buffered() bool {
	switch b.mode {
	case bodyNone:
		return true
	case bodyLength:
		return int64(b.pc.br.Buffered()) >= b.remain
	}
	return false
}

// frame sets the body's framing from its connection's response head.
func (b *h1Body) frame() {
	switch h := &b.pc.head; {
	case h.Body == h1wire.BodyLength:
		b.mode, b.remain = bodyLength, h.ContentLength
	case h.Body == h1wire.BodyChunked:
		b.mode = bodyChunked
		b.pc.chunked.Reset(b.pc.br, responseLimits)
	case h.UntilClose:
		b.mode = bodyUntilClose
	}
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	var n int
	var err error
	switch b.mode {
	case bodyNone:
		err = io.EOF
	case bodyLength:
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err = b.pc.br.Read(p)
		b.remain -= int64(n)
		switch {
		case err == io.EOF:
			err = io.ErrUnexpectedEOF // a body cut short
		case err == nil && b.remain == 0:
			err = io.EOF // with the last bytes, as net/http's body does
		}
	case bodyChunked:
		n, err = b.pc.chunked.Read(p)
		if err == io.EOF {
			b.setTrailer()
		}
	case bodyUntilClose:
		n, err = b.pc.br.Read(p)
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// setTrailer merges the trailer fields of a chunked body into the
// response's Trailer, as net/http does (fields not declared included).
func (b *h1Body) setTrailer() {
	fields := b.pc.chunked.Trailer
	if len(fields) == 0 {
		return
	}
	if *b.trailer == nil {
		*b.trailer = make(http.Header, len(fields))
	}
	got := make(http.Header, len(fields))
	for _, f := range fields {
		k := http.CanonicalHeaderKey(string(f.Name))
		got[k] = append(got[k], string(f.Value))
	}
	for k, vv := range got {
		(*b.trailer)[k] = vv
	}
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if b.header != nil {
		*b.header = nil // pc's map serves its next response
	}
	interrupted := false
	var now time.Time // put's, when the caller left its reading (exchangeStop.clock)
	if b.st != nil {
		interrupted = b.st.detach()
		b.st.finish()
		now = b.st.clock
	}
	if !b.eof || !b.keep || interrupted {
		// A body not read to its end, or a connection the response closes.
		b.pc.c.Close()
		return nil
	}
	b.t.put(b.pc, now)
	return nil
}
