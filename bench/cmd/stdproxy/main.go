// Command stdproxy is the standard library's reference point in the
// side-by-side benchmark: net/http/httputil.ReverseProxy in front of one
// backend, with a Transport tuned the way a production proxy would tune it
// (a large idle pool per host, no compression, no HTTP/2 negotiation), and the
// X-Forwarded-* headers set, as every proxy in the benchmark does.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/swarmgate/swarmgate/bench/internal/benchkit"
)

func main() { benchkit.ServerMain(run) }

// run proxies -listen to -backend until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := benchkit.FlagSet("stdproxy", stderr)
	backend := fs.String("backend", "127.0.0.1:9000", "backend host:port")
	ln, err := benchkit.ParseListen(fs, args, "127.0.0.1:9001")
	if err != nil {
		return err
	}
	return serve(ctx, ln, *backend, stderr)
}

// serve proxies ln to backend until ctx is done.
func serve(ctx context.Context, ln net.Listener, backend string, stderr io.Writer) error {
	target := &url.URL{Scheme: "http", Host: backend}
	tr := newTransport()
	defer tr.CloseIdleConnections()
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // keep the client's Host, as an ingress does
			r.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  log.New(stderr, "stdproxy: ", log.LstdFlags),
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          rp.ErrorLog,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("stdproxy: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("stdproxy: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("stdproxy: shutdown: %w", err)
	}
	return nil
}

// newTransport returns the upstream transport. The defaults keep only two
// idle connections per host, so under 64 concurrent clients most requests
// would dial a new connection; a proxy that serves one backend keeps as many
// as it has clients.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never an environment proxy: traffic stays on loopback
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
}
