package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
)

// DefaultRequestBuffer is how much of a request body the edge reads before
// it picks an upstream (Options.RequestBuffer).
const DefaultRequestBuffer = 64 << 10

// bufferBody reads up to limit bytes of r's body before an upstream is
// picked, so that a client that sends its body slowly holds a goroutine of
// the edge, not a connection to a task. A body that fits is sent from
// memory with its length; the rest of a larger one is streamed after the
// part read. gRPC bodies (application/grpc*) are streams of messages that
// may wait for answers: they are never buffered.
func bufferBody(r *http.Request, limit int64) error {
	if limit <= 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 ||
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		return nil
	}
	n := limit
	if r.ContentLength > 0 && r.ContentLength < n {
		n = r.ContentLength
	}
	var buf bytes.Buffer
	buf.Grow(int(min(n, 4<<10)))
	_, err := io.CopyN(&buf, r.Body, n+1) // one more byte: does the body go on?
	switch {
	case errors.Is(err, io.EOF):
		// The whole body: sent from memory, with its length.
		r.Body.Close()
		r.ContentLength = int64(buf.Len())
		r.TransferEncoding = nil
		r.Body = io.NopCloser(&buf)
		return nil
	case err != nil:
		return err
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(&buf, r.Body), r.Body}
	return nil
}
