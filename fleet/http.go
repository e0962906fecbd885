package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Path is where the control plane serves the state, on its stream listener:
//
//	GET|PUT|DELETE Path+"value/KEY"   a value (PUT body: at most MaxValueLen)
//	GET            Path+"stat/KEY"    KeyInfo as JSON
//	GET            Path+"list?prefix=P&recursive=1"  keys as a JSON array
//	POST           Path+"lock/NAME"   wait up to LockWait: 200 {"token","ttl"} or 409 while held
//	POST           Path+"refresh/NAME?token=T", Path+"unlock/NAME?token=T"   204, or 409 if lost
//
// A missing key is 404, a bad key 400, a value too large 413, a failing
// store 503.
const Path = "/v1/state/"

// Defaults of HandlerOptions.
const (
	DefaultLockTTL  = time.Minute
	DefaultLockWait = 5 * time.Second
	DefaultTimeout  = 15 * time.Second
)

// HandlerOptions configure Handler. Every zero value is a working default.
type HandlerOptions struct {
	// LockTTL is how long a lock lives unless its holder refreshes it (a
	// Client refreshes at a third of it). If zero, DefaultLockTTL.
	LockTTL time.Duration
	// LockWait is how long a lock request waits for a held lock before
	// answering 409 (the Client asks again). If zero, DefaultLockWait.
	LockWait time.Duration
	// Timeout bounds each request's work on the store. If zero,
	// DefaultTimeout.
	Timeout time.Duration
	// Logger receives store failures (keys, never values). If nil, nothing
	// is logged.
	Logger *zap.Logger
}

// Handler serves s under Path to edges.
func Handler(s Store, o HandlerOptions) http.Handler {
	if o.LockTTL <= 0 {
		o.LockTTL = DefaultLockTTL
	}
	if o.LockWait <= 0 {
		o.LockWait = DefaultLockWait
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	h := &handler{s: s, o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path+"value/{key...}", h.keyed("load", h.load))
	mux.HandleFunc("PUT "+Path+"value/{key...}", h.keyed("store", h.store))
	mux.HandleFunc("DELETE "+Path+"value/{key...}", h.keyed("delete", func(ctx context.Context, w http.ResponseWriter, _ *http.Request, k string) error {
		return noContent(w, h.s.Delete(ctx, k))
	}))
	mux.HandleFunc("GET "+Path+"stat/{key...}", h.keyed("stat", h.stat))
	mux.HandleFunc("GET "+Path+"list", h.list)
	mux.HandleFunc("POST "+Path+"lock/{key...}", h.keyed("lock", h.lock))
	mux.HandleFunc("POST "+Path+"refresh/{key...}", h.keyed("refresh", func(ctx context.Context, w http.ResponseWriter, r *http.Request, k string) error {
		return noContent(w, h.s.Refresh(ctx, k, r.URL.Query().Get("token"), h.o.LockTTL))
	}))
	mux.HandleFunc("POST "+Path+"unlock/{key...}", h.keyed("unlock", func(ctx context.Context, w http.ResponseWriter, r *http.Request, k string) error {
		return noContent(w, h.s.Unlock(ctx, k, r.URL.Query().Get("token")))
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(stateHeader, "1")
		mux.ServeHTTP(w, r)
	})
}

// stateHeader marks every answer of the Handler, so that a Client tells a
// missing key from a control plane that serves no state (a 404 too).
const stateHeader = "Swarmgate-State"

type handler struct {
	s Store
	o HandlerOptions
}

// keyed checks the request's key, bounds the work by Timeout and answers
// serve's error: 404 for a missing key, 409 for a lost lock, else 503.
func (h *handler) keyed(op string, serve func(context.Context, http.ResponseWriter, *http.Request, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k := r.PathValue("key")
		if err := CheckKey(k); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
		defer cancel()
		if err := serve(ctx, w, r, k); err != nil {
			h.fail(w, op, k, err)
		}
	}
}

// fail answers a store error.
func (h *handler) fail(w http.ResponseWriter, op, key string, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.Error(w, "not found", http.StatusNotFound)
	case errors.Is(err, ErrLockLost):
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		h.o.Logger.Warn("state store failed", zap.String("op", op), zap.String("key", trim(key)), zap.Error(err))
		http.Error(w, "state store unavailable", http.StatusServiceUnavailable)
	}
}

// noContent answers 204 when err is nil.
func noContent(w http.ResponseWriter, err error) error {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
	}
	return err
}

func (h *handler) load(ctx context.Context, w http.ResponseWriter, _ *http.Request, k string) error {
	v, err := h.s.Load(ctx, k)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(v)
	return nil
}

func (h *handler) store(ctx context.Context, w http.ResponseWriter, r *http.Request, k string) error {
	v, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxValueLen))
	if err != nil {
		http.Error(w, fmt.Sprintf("value over %d bytes or unreadable", MaxValueLen), http.StatusRequestEntityTooLarge)
		return nil
	}
	return noContent(w, h.s.Store(ctx, k, v))
}

func (h *handler) stat(ctx context.Context, w http.ResponseWriter, _ *http.Request, k string) error {
	ki, err := h.s.Stat(ctx, k)
	if err == nil {
		writeJSON(w, ki)
	}
	return err
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	if err := checkPrefix(prefix); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
	defer cancel()
	keys, err := h.s.List(ctx, prefix, r.URL.Query().Get("recursive") == "1")
	if err != nil {
		h.fail(w, "list", prefix, err)
		return
	}
	writeJSON(w, keys)
}

// lockGrant is the answer to a lock request.
type lockGrant struct {
	Token string        `json:"token"`
	TTL   time.Duration `json:"ttl"`
}

// lock tries the lock until it is taken or LockWait passes. Polling is the
// whole protocol: a lock is held while a certificate is ordered, rarely and
// briefly.
func (h *handler) lock(ctx context.Context, w http.ResponseWriter, _ *http.Request, k string) error {
	deadline := time.Now().Add(h.o.LockWait)
	for {
		tok, ok, err := h.s.TryLock(ctx, k, h.o.LockTTL)
		if err != nil {
			return err
		}
		if ok {
			writeJSON(w, lockGrant{Token: tok, TTL: h.o.LockTTL})
			return nil
		}
		if time.Now().After(deadline) {
			http.Error(w, "lock held", http.StatusConflict)
			return nil
		}
		select {
		case <-ctx.Done():
			http.Error(w, "lock held", http.StatusConflict)
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}
