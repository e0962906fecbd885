package policy

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/net/http/httpguts"
)

// minCompress is the smallest body worth compressing: below it the
// encoding's framing and the CPU cost more than the bytes saved.
const minCompress = 1024

// Encoder settings: fast levels and small windows, so that one response
// costs a bounded amount of memory (a few hundred KiB at most, pooled)
// whatever its size, and the edge's CPU is not spent on ratios a few
// percent better.
var (
	gzipPool = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, 5)
		return w
	}}
	zstdPool = sync.Pool{New: func() any {
		// Concurrency 1 makes the encoder synchronous: it writes to the
		// client on the handler's goroutine and starts none of its own.
		w, _ := zstd.NewWriter(io.Discard, zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		return w
	}}
	brotliPool = sync.Pool{New: func() any {
		return brotli.NewWriterOptions(io.Discard, brotli.WriterOptions{Quality: 4, LGWin: 18})
	}}
)

// encoder is what the three encoders have in common.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(io.Writer)
}

// zstdEncoder adapts *zstd.Encoder, whose Reset returns nothing else.
type zstdEncoder struct{ *zstd.Encoder }

func (z zstdEncoder) Reset(w io.Writer) { z.Encoder.Reset(w) }

func getEncoder(name string, w io.Writer) encoder {
	var e encoder
	switch name {
	case Zstd:
		e = zstdEncoder{zstdPool.Get().(*zstd.Encoder)}
	case Brotli:
		e = brotliPool.Get().(*brotli.Writer)
	default:
		e = gzipPool.Get().(*gzip.Writer)
	}
	e.Reset(w)
	return e
}

func putEncoder(name string, e encoder) {
	e.Reset(io.Discard) // let go of the client's writer
	switch name {
	case Zstd:
		zstdPool.Put(e.(zstdEncoder).Encoder)
	case Brotli:
		brotliPool.Put(e)
	default:
		gzipPool.Put(e)
	}
}

// compress encodes the responses of clients that accept one of encodings
// (the edge's order breaks ties of the client's q-values), when the type is
// compressible, the body is at least minCompress bytes (or of unknown
// length), and the response is not encoded already, a range (206) or marked
// no-transform. It streams: a flush of the response flushes the encoder.
func compress(encodings []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc := negotiate(r.Header.Values("Accept-Encoding"), encodings)
		if r.Method == http.MethodHead || r.Header.Get("Range") != "" {
			// A HEAD has no body; a range asks for bytes of the identity
			// body, and a 200 answer to it is rare enough to send as is.
			enc = ""
		}
		cw := &compressWriter{ResponseWriter: w, enc: enc}
		finished := false
		defer func() {
			if !finished {
				cw.abort() // a panic (http.ErrAbortHandler): no closing frame
			}
		}()
		next.ServeHTTP(cw, r)
		finished = true
		cw.finish()
	})
}

// compressWriter decides at WriteHeader whether to encode, and buffers up
// to minCompress bytes of a body of unknown length to find out whether it
// is worth it.
type compressWriter struct {
	http.ResponseWriter
	enc     string // negotiated encoding; "" is none
	code    int    // status, held while pending
	state   uint8
	buf     []byte // held body bytes while pending
	encoder encoder
}

const (
	csHeader  uint8 = iota // no WriteHeader yet
	csPending              // compressible, length unknown, fewer than minCompress bytes seen
	csEncode               // encoding
	csPlain                // passing through
)

func (w *compressWriter) WriteHeader(code int) {
	if w.state != csHeader {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // 1xx informational: more to come
		return
	}
	h := w.Header()
	ok := compressible(h) && code != http.StatusPartialContent && code != http.StatusNoContent &&
		code != http.StatusNotModified && code != http.StatusSwitchingProtocols
	if ok {
		h.Add("Vary", "Accept-Encoding")
	}
	if !ok || w.enc == "" {
		w.state = csPlain
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err != nil || n < minCompress {
			w.state = csPlain
			w.ResponseWriter.WriteHeader(code)
			return
		}
		w.start(code)
		return
	}
	w.code, w.state = code, csPending
}

// start begins encoding: the fields say so, then the status goes out.
func (w *compressWriter) start(code int) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", w.enc)
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et) // the encoded bytes are not the identity's
	}
	w.state = csEncode
	w.ResponseWriter.WriteHeader(code)
	w.encoder = getEncoder(w.enc, w.ResponseWriter)
	if len(w.buf) > 0 {
		w.encoder.Write(w.buf)
	}
	w.buf = nil
}

// plain sends the status and the held bytes as they are.
func (w *compressWriter) plain() error {
	w.state = csPlain
	w.ResponseWriter.WriteHeader(w.code)
	_, err := w.ResponseWriter.Write(w.buf)
	w.buf = nil
	return err
}

func (w *compressWriter) Write(b []byte) (int, error) {
	if w.state == csHeader {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case csPending:
		if len(w.buf)+len(b) < minCompress {
			if w.buf == nil {
				w.buf = make([]byte, 0, minCompress)
			}
			w.buf = append(w.buf, b...)
			return len(b), nil
		}
		w.start(w.code)
		fallthrough
	case csEncode:
		return w.encoder.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what the encoder holds: a stream is compressed as it goes.
func (w *compressWriter) Flush() {
	if w.state == csHeader {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case csPending:
		w.start(w.code)
		fallthrough
	case csEncode:
		w.encoder.Flush()
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *compressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish ends the response: a short body of unknown length goes out as
// it is, an encoded one gets its closing frame.
func (w *compressWriter) finish() {
	switch w.state {
	case csPending:
		w.plain()
	case csEncode:
		w.encoder.Close()
		putEncoder(w.enc, w.encoder)
		w.encoder = nil
	}
}

// abort releases the encoder without writing its closing frame, so that a
// response cut short does not look complete.
func (w *compressWriter) abort() {
	if w.encoder != nil {
		putEncoder(w.enc, w.encoder)
		w.encoder = nil
	}
}

// compressible reports a response that is not encoded already, may be
// transformed, and is of a type that compresses: text, JSON, XML,
// JavaScript, SVG, WebAssembly and the like. Event streams are left alone:
// their point is that each event arrives at once.
func compressible(h http.Header) bool {
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	if h.Get("Content-Range") != "" || httpguts.HeaderValuesContainsToken(h["Cache-Control"], "no-transform") {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return false
	}
	switch {
	case mt == "text/event-stream":
		return false
	case strings.HasPrefix(mt, "text/"):
		return true
	case strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/javascript", "application/xml", "application/wasm",
		"application/x-javascript", "application/ld+json", "application/graphql-response+json",
		"image/svg+xml", "application/manifest+json", "application/x-ndjson", "font/ttf", "font/otf":
		return true
	}
	return false
}

// negotiate picks the encoding for an Accept-Encoding (RFC 9110 section
// 12.5.3): the highest q-value among offered, "*" standing for the ones not
// named, ties to the first of offered; "" when none is acceptable.
func negotiate(accept []string, offered []string) string {
	if len(accept) == 0 {
		return ""
	}
	best, bestQ := "", 0.0
	for _, enc := range offered {
		q, star := -1.0, -1.0
		for _, f := range accept {
			for item := range strings.SplitSeq(f, ",") {
				name, params, _ := strings.Cut(item, ";")
				name = strings.TrimSpace(name)
				v := qValue(params)
				switch {
				case strings.EqualFold(name, enc):
					q = v
				case name == "*":
					star = v
				}
			}
		}
		if q < 0 {
			q = star
		}
		if q > bestQ {
			best, bestQ = enc, q
		}
	}
	return best
}

// qValue reads q= from the parameters of an Accept-Encoding item: 1 when
// absent, 0 when malformed.
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || q < 0 || q > 1 {
				return 0
			}
			return q
		}
	}
	return 1
}
