package control

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/fleet"
	"github.com/swarmgate/swarmgate/internal/adminhttp"
	"github.com/swarmgate/swarmgate/route"
)

// Options configure Run. Source, Listen and Registry are required.
type Options struct {
	// Source is the one watcher of the cluster: discovery.Swarm in
	// production. Its Configs are what the edges get.
	Source route.Source
	// Listen is the stream's listen address (control --listen, ":7070").
	Listen string
	// Admin is the admin listen address (/metrics, /healthz, /readyz,
	// /api/status). If empty, there is none.
	Admin string
	// TLS, if set, serves the stream over TLS (see ServerTLSConfig; with
	// ClientCAs and ClientAuth set, mutual TLS). If nil, cleartext HTTP/2.
	TLS *tls.Config
	// Server configures the stream. Its Logger and Registerer, if nil,
	// are Logger and Registry.
	Server ServerOptions
	// State, if set, is the fleet's shared state (fleet.Docker in
	// production), served to edges under fleet.Path on the stream's
	// listener, with the stream's TLS, and where Run keeps the fleet's
	// session ticket keys (fleet.RotateTickets). If nil, there is none.
	State fleet.Store
	// Registry receives every metric and serves /metrics.
	Registry *prometheus.Registry
	// Logger receives the role's logs. If nil, nothing is logged.
	Logger *zap.Logger
	// DrainTimeout bounds the shutdown of the listeners. If zero, 10s.
	DrainTimeout time.Duration
	// Version is the program's version, logged at start.
	Version string
}

// Run is the control plane: it runs the source into a Server and serves the
// stream and the admin API until ctx is done, then ends the streams (edges
// reconnect to another replica) and returns nil. It returns an error if a
// listener cannot start or fails, or if the source fails for good.
func Run(ctx context.Context, o Options) error {
	if o.Source == nil {
		return errors.New("control: no route source")
	}
	if o.Registry == nil {
		return errors.New("control: no metrics registry")
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	so := o.Server
	if so.Logger == nil {
		so.Logger = log.Named("stream")
	}
	if so.Registerer == nil {
		so.Registerer = o.Registry
	}
	srv := NewServer(so)

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("control: --listen: %w", err)
	}
	var adminLn net.Listener
	if o.Admin != "" {
		if adminLn, err = net.Listen("tcp", o.Admin); err != nil {
			ln.Close()
			return fmt.Errorf("control: --admin: %w", err)
		}
	}
	stream := srv.HTTPServer(o.TLS)
	if o.State != nil {
		mux := http.NewServeMux()
		mux.Handle("/", stream.Handler)
		mux.Handle(fleet.Path, fleet.Handler(o.State, fleet.HandlerOptions{Logger: log.Named("state")}))
		stream.Handler = mux
	}
	if o.TLS != nil {
		ln = tls.NewListener(ln, stream.TLSConfig)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fatal := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var first sync.Once
		update := func(c route.Config) {
			srv.Update(c)
			first.Do(func() {
				log.Info("control plane ready: first configuration held", zap.Int("routes", len(c.Routes)), zap.Int("label_errors", len(c.Errors)))
			})
		}
		if err := o.Source.Run(runCtx, update); err != nil {
			fatal <- fmt.Errorf("control: source %s: %w", o.Source.Name(), err)
		}
	}()
	if o.State != nil {
		wg.Go(func() { fleet.RotateTickets(runCtx, o.State, fleet.TicketOptions{Logger: log.Named("tickets")}) })
	}
	go func() {
		if err := stream.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("control: stream listener: %w", err)
		}
	}()
	var admin *http.Server
	if adminLn != nil {
		admin = adminhttp.NewServer(adminHandler(srv, o.Registry))
		adminhttp.Serve(admin, adminLn, fatal, "control: admin listener")
	}
	log.Info("control plane started", zap.String("listen", ln.Addr().String()), zap.String("admin", o.Admin),
		zap.Bool("tls", o.TLS != nil), zap.Bool("mtls", o.TLS != nil && o.TLS.ClientAuth == tls.RequireAndVerifyClientCert),
		zap.String("source", o.Source.Name()), zap.String("version", o.Version))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-fatal:
		log.Error("control plane stopping", zap.Error(runErr))
	}
	srv.Close() // streams end at once: edges move to another replica
	cancel()
	drain, stop := context.WithTimeout(context.Background(), o.DrainTimeout)
	defer stop()
	if err := stream.Shutdown(drain); err != nil {
		stream.Close()
	}
	if admin != nil {
		if err := admin.Shutdown(drain); err != nil {
			admin.Close()
		}
	}
	wg.Wait()
	log.Info("control plane stopped")
	return runErr
}

// HTTPServer returns an http.Server for the stream with its limits set:
// HTTP/2 over TLS when tlsConf is set, else cleartext HTTP/2 (h2c, prior
// knowledge); HTTP/1.1 too, for curl. The caller serves it on its listener
// (wrapped with tls.NewListener when tlsConf is set).
func (s *Server) HTTPServer(tlsConf *tls.Config) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           s.Handler(),
		Protocols:         p,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 5 * time.Second,
		// The requests have no body; a stream's writes are bounded one
		// frame at a time (ServerOptions.WriteTimeout), so no WriteTimeout
		// here: it would end every stream.
		ReadTimeout:    10 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 8 << 10,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: 8, // an edge needs one
			SendPingTimeout:      30 * time.Second,
			PingTimeout:          15 * time.Second,
			WriteByteTimeout:     s.o.WriteTimeout,
		},
		ErrorLog: zap.NewStdLog(s.log.Named("http")),
	}
	if tlsConf != nil {
		srv.TLSConfig = tlsConf.Clone()
		if len(srv.TLSConfig.NextProtos) == 0 {
			srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		}
	}
	return srv
}

// adminHandler serves /metrics, /healthz, /readyz (ready once a Config is
// held) and /api/status.
func adminHandler(s *Server, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, "no configuration from the source yet", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.Status())
	})
	return mux
}
