package proxy

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// ServerOptions bound what one client may hold on a listener.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers. If zero, 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds keep-alive waits between requests. If zero, 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block; larger gets 431. If zero, 64 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body; larger gets 413. If zero, 1 GiB; negative is unlimited.
	MaxBodyBytes int64
}

// NewServer returns an http.Server for the listener named name (it labels the
// connection metrics) that serves p over HTTP/1.1 and cleartext HTTP/2 with
// prior knowledge. Read and write timeouts are deliberately absent: bodies may
// stream for hours (uploads, server-sent events); headers and idle waits are
// bounded instead.
func (p *Proxy) NewServer(name string, o ServerOptions) *http.Server {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 30
	}
	open := p.metrics.connections.WithLabelValues(name)
	var h http.Handler = p
	if o.MaxBodyBytes > 0 {
		h = limitBody(p, o.MaxBodyBytes)
	}
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          log.New(zapWriter{p.log.With(zap.String("listener", name))}, "", 0),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				open.Inc()
			case http.StateHijacked, http.StateClosed:
				open.Dec()
			}
		},
		Protocols: new(http.Protocols),
	}
	s.Protocols.SetHTTP1(true)
	s.Protocols.SetUnencryptedHTTP2(true)
	s.Protocols.SetHTTP2(true)
	return s
}

// limitBody answers 413 for a declared body over max and cuts a streamed one
// off at max.
func limitBody(p *Proxy, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			x := exchange{start: p.now(), requestID: requestID(r.Header)}
			p.fail(w, &x, http.StatusRequestEntityTooLarge, "request body over the limit")
			p.finish(r, &x)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		p.ServeHTTP(w, r)
	})
}

// Shutdown stops srv gracefully: listeners close at once, requests in flight
// get until ctx is done to finish, then every remaining connection, tunnels
// included, is closed.
func (p *Proxy) Shutdown(ctx context.Context, srv *http.Server) error {
	err := srv.Shutdown(ctx)
	p.CloseTunnels()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		srv.Close()
	}
	return err
}

// zapWriter adapts net/http's error log to zap.
type zapWriter struct{ l *zap.Logger }

func (z zapWriter) Write(b []byte) (int, error) {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	z.l.Debug("http server", zap.ByteString("message", b))
	return len(b), nil
}
