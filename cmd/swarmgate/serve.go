package main

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

// What the commands that run a role (edge, control, socket-proxy) share.

// withLogger returns a command's RunE that builds the process logger from
// logs, calls run with the command's context and that logger, and flushes
// the logger when run returns.
func withLogger(logs *logOptions, run func(ctx context.Context, log *zap.Logger) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		log, err := newLogger(logs)
		if err != nil {
			return err
		}
		defer log.Sync()
		return run(cmd.Context(), log)
	}
}

// newRegistry returns the registry of a role's metrics, which also exports
// the Go runtime's and the process's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// roleMetrics is where a role's metrics go: Registry gathers them for
// /metrics, Registerer is what every package registers its collectors on.
type roleMetrics struct {
	Registry   *prometheus.Registry
	Registerer prometheus.Registerer
}

// metricsOf returns m, or, if m is nil (the binary), a new registry that is
// its own Registerer. A test passes a Registerer that also records every
// collector (docs/metrics.md is checked against them).
func metricsOf(m *roleMetrics) roleMetrics {
	if m != nil {
		return *m
	}
	reg := newRegistry()
	return roleMetrics{Registry: reg, Registerer: reg}
}

// checkServeTLS checks a role's --tls-cert, --tls-key and --tls-ca: the
// certificate and key go together, and a client CA needs them. role
// prefixes the error.
func checkServeTLS(role, cert, key, ca string) error {
	if (cert == "") != (key == "") {
		return errors.New(role + ": --tls-cert and --tls-key go together")
	}
	if ca != "" && cert == "" {
		return errors.New(role + ": --tls-ca needs --tls-cert and --tls-key")
	}
	return nil
}
