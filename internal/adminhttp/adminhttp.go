// Package adminhttp serves the admin listener of every swarmgate role
// (/metrics, health checks, status): one set of limits, and one way to run
// it beside the role's other listeners.
package adminhttp

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// NewServer returns an http.Server for h with the limits of an admin
// listener: its requests are small GETs and its answers are bounded (a
// metrics scrape, a route listing), so a client that is slow to send or
// read is cut off instead of holding a connection.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// Serve serves srv on ln in a new goroutine. If serving ends for any reason
// other than srv's Shutdown or Close, the error is sent on fatal, prefixed
// with what ("control: admin listener"); fatal must have room for it, as
// nobody may be receiving once the role is stopping.
func Serve(srv *http.Server, ln net.Listener, fatal chan<- error, what string) {
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("%s: %w", what, err)
		}
	}()
}
