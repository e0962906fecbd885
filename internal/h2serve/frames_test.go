package h2serve

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn dials addr and does the client's side of the preface and the
// SETTINGS exchange, returning a framer for the rest.
func rawConn(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// writeRequest sends a HEADERS frame of the given fields (name, value
// pairs, in order) on stream id.
func writeRequest(t *testing.T, fr *http2.Framer, id uint32, end bool, kv ...string) {
	t.Helper()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := 0; i+1 < len(kv); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

// awaitFrame reads frames until match returns true, for at most 3 s.
func awaitFrame(t *testing.T, c net.Conn, fr *http2.Framer, what string, match func(http2.Frame) bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return
		}
	}
}

func newLogger(w io.Writer, mu *sync.Mutex) *log.Logger {
	return log.New(lockedWriter{w, mu}, "", 0)
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serveOne serves s on a loopback listener, every connection.
func serveOne(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); s.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(c)
		}
	}()
	return ln.Addr().String()
}

// TestMalformedRequests: a request a second parser could read differently
// (RFC 9113 section 8.1.1, 8.2, 8.3) is refused with RST_STREAM
// PROTOCOL_ERROR before any handler sees it, and the connection goes on.
func TestMalformedRequests(t *testing.T) {
	ran := make(chan string, 16)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		if r.URL.Path != "/next" && err == nil {
			// A body that breaks its Content-Length is only seen as it
			// comes: its handler may run, and its read must fail.
			t.Errorf("%s: the body's read succeeded", r.URL.Path)
		}
		ran <- r.URL.Path
	})}
	addr := serveOne(t, s)
	base := []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "x"}
	for _, tt := range []struct {
		name   string
		fields []string
		end    bool
		data   string // sent after the headers, with END_STREAM
	}{
		{"connection field", append(base, "connection", "keep-alive"), true, ""},
		{"transfer-encoding", append(base, "transfer-encoding", "chunked"), true, ""},
		{"upgrade", append(base, "upgrade", "websocket"), true, ""},
		{"te other than trailers", append(base, "te", "gzip"), true, ""},
		{"uppercase name", append(base, "X-Upper", "v"), true, ""},
		{"no :path", []string{":method", "GET", ":scheme", "https", ":authority", "x"}, true, ""},
		{"no :method", []string{":scheme", "https", ":path", "/", ":authority", "x"}, true, ""},
		{":protocol", append(base, ":protocol", "websocket"), true, ""},
		{"pseudo after regular", []string{":method", "GET", ":scheme", "https", "x-a", "b", ":path", "/"}, true, ""},
		{"path not origin-form", []string{":method", "GET", ":scheme", "https", ":path", "x", ":authority", "x"}, true, ""},
		{"bad method", []string{":method", "G T", ":scheme", "https", ":path", "/", ":authority", "x"}, true, ""},
		{"bad authority", []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "a b"}, true, ""},
		{"content-length without body", append(base, "content-length", "5"), true, ""},
		{"content-length signed", append(base, "content-length", "+5"), false, "hello"},
		{"content-length values differ", append(base, "content-length", "5", "content-length", "6"), false, "hello"},
		{"body longer than content-length", append(base, "content-length", "3"), false, "hello"},
		{"body shorter than content-length", append(base, "content-length", "9"), false, "hello"},
		{"CONNECT with a path", []string{":method", "CONNECT", ":authority", "x:443", ":path", "/"}, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, fr := rawConn(t, addr)
			writeRequest(t, fr, 1, tt.end, tt.fields...)
			if tt.data != "" {
				fr.WriteData(1, true, []byte(tt.data))
			}
			awaitFrame(t, c, fr, "RST_STREAM PROTOCOL_ERROR", func(f http2.Frame) bool {
				switch f := f.(type) {
				case *http2.RSTStreamFrame:
					if f.ErrCode != http2.ErrCodeProtocol {
						t.Fatalf("RST_STREAM %v, want PROTOCOL_ERROR", f.ErrCode)
					}
					return true
				case *http2.MetaHeadersFrame:
					t.Fatalf("answered %v", f.Fields)
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY %v: a malformed request is a stream error", f.ErrCode)
				}
				return false
			})
			// The connection serves the next stream.
			writeRequest(t, fr, 3, true, ":method", "GET", ":scheme", "https", ":path", "/next", ":authority", "x")
			awaitFrame(t, c, fr, "the next response", func(f http2.Frame) bool {
				h, ok := f.(*http2.MetaHeadersFrame)
				return ok && h.StreamID == 3 && h.PseudoValue("status") == "200"
			})
			for p := range ran {
				if p == "/next" {
					break
				}
				if tt.data == "" {
					t.Fatalf("the handler saw %s", p)
				}
			}
		})
	}
}

// TestConnectionErrors: frames on streams the client never opened, and a
// stream identifier that goes back, end the connection with GOAWAY
// PROTOCOL_ERROR (RFC 9113 section 5.1, 5.1.1).
func TestConnectionErrors(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	addr := serveOne(t, s)
	for _, tt := range []struct {
		name string
		send func(t *testing.T, fr *http2.Framer)
		code http2.ErrCode
	}{
		{"DATA on an idle stream", func(t *testing.T, fr *http2.Framer) { fr.WriteData(5, true, []byte("x")) }, http2.ErrCodeProtocol},
		{"RST_STREAM on an idle stream", func(t *testing.T, fr *http2.Framer) { fr.WriteRSTStream(5, http2.ErrCodeCancel) }, http2.ErrCodeProtocol},
		{"even stream", func(t *testing.T, fr *http2.Framer) {
			writeRequest(t, fr, 2, true, ":method", "GET", ":scheme", "http", ":path", "/")
		}, http2.ErrCodeProtocol},
		{"stream id goes back", func(t *testing.T, fr *http2.Framer) {
			writeRequest(t, fr, 5, true, ":method", "GET", ":scheme", "http", ":path", "/")
			writeRequest(t, fr, 3, true, ":method", "GET", ":scheme", "http", ":path", "/")
		}, http2.ErrCodeStreamClosed}, // stream 3 is closed once 5 opened (RFC 9113 section 5.1.1)
		{"PUSH_PROMISE from the client", func(t *testing.T, fr *http2.Framer) {
			writeRequest(t, fr, 1, false, ":method", "GET", ":scheme", "http", ":path", "/")
			fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true, BlockFragment: []byte{0x82}})
		}, http2.ErrCodeProtocol},
		{"connection window overflow", func(t *testing.T, fr *http2.Framer) { fr.WriteWindowUpdate(0, 1<<31-1) }, http2.ErrCodeFlowControl},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, fr := rawConn(t, addr)
			tt.send(t, fr)
			awaitFrame(t, c, fr, "GOAWAY", func(f http2.Frame) bool {
				g, ok := f.(*http2.GoAwayFrame)
				if ok && g.ErrCode != tt.code {
					t.Fatalf("GOAWAY %v, want %v", g.ErrCode, tt.code)
				}
				return ok
			})
		})
	}
}

// TestConcurrencyLimit: a stream over MaxConcurrentStreams is refused
// (REFUSED_STREAM, which a client retries), and one is taken again once a
// handler returned.
func TestConcurrencyLimit(t *testing.T) {
	release := make(chan struct{})
	s := &Server{MaxConcurrentStreams: 2, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
	})}
	addr := serveOne(t, s)
	c, fr := rawConn(t, addr)
	for _, id := range []uint32{1, 3, 5} {
		writeRequest(t, fr, id, true, ":method", "GET", ":scheme", "http", ":path", "/hold", ":authority", "x")
	}
	awaitFrame(t, c, fr, "REFUSED_STREAM on stream 5", func(f http2.Frame) bool {
		r, ok := f.(*http2.RSTStreamFrame)
		if ok && (r.StreamID != 5 || r.ErrCode != http2.ErrCodeRefusedStream) {
			t.Fatalf("RST_STREAM %d %v", r.StreamID, r.ErrCode)
		}
		return ok
	})
	close(release)
	// Once the client saw streams 1 and 3 end, it may open another.
	ended := map[uint32]bool{}
	awaitFrame(t, c, fr, "the ends of streams 1 and 3", func(f http2.Frame) bool {
		if f.Header().Flags.Has(http2.FlagHeadersEndStream) && f.Header().Type == http2.FrameHeaders {
			ended[f.Header().StreamID] = true
		}
		return ended[1] && ended[3]
	})
	writeRequest(t, fr, 7, true, ":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x")
	awaitFrame(t, c, fr, "stream 7's answer", func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.StreamID == 7
	})
}

// TestFlowControlWindows: with the client's initial window at 10 bytes,
// the response comes 10 bytes at a time as the client opens its window,
// and a SETTINGS change of the window applies to the open stream.
func TestFlowControlWindows(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 35))
	})}
	addr := serveOne(t, s)
	c, fr := rawConn(t, addr)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	writeRequest(t, fr, 1, true, ":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x")
	got := 0
	next := func(want int) {
		awaitFrame(t, c, fr, "DATA", func(f http2.Frame) bool {
			d, ok := f.(*http2.DataFrame)
			if ok && len(d.Data()) > 0 {
				if len(d.Data()) != want {
					t.Fatalf("DATA of %d bytes, want %d", len(d.Data()), want)
				}
				got += len(d.Data())
				return true
			}
			return false
		})
	}
	next(10)
	fr.WriteWindowUpdate(1, 10)
	next(10)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 20}) // +10 for the stream
	next(10)
	fr.WriteWindowUpdate(1, 100)
	next(5)
	if got != 35 {
		t.Fatalf("%d bytes", got)
	}
}
