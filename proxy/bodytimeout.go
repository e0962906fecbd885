package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultBodyTimeout is how long a client may send nothing in the middle
// of a request body (ServerOptions.BodyTimeout), as NGINX's
// client_body_timeout.
const DefaultBodyTimeout = 60 * time.Second

// idleBody is a request body whose every read must make progress within
// timeout: a client that stops sending in the middle of its body is cut
// off (and answered 408 by the proxy), instead of holding a goroutine and
// its buffers for ever. An upload that keeps moving is never cut, however
// long it takes.
type idleBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	now     func() time.Time
	done    bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if !b.done {
		// Not every connection supports deadlines (a test's recorder):
		// then the body is read as it was.
		_ = b.rc.SetReadDeadline(b.now().Add(b.timeout))
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{}) // the connection's own timeouts apply again
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errBodyTimeout
	}
	return n, err
}

// errBodyTimeout is a client that sent nothing of its body for BodyTimeout.
var errBodyTimeout = errors.New("the client sent nothing of its request body for too long")

// limitBodyIdle wraps every request body of h in an idleBody.
func limitBodyIdle(h http.Handler, timeout time.Duration, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			r.Body = &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), timeout: timeout, now: now}
		}
		h.ServeHTTP(w, r)
	})
}
