package tlsstore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/internal/metrics"
)

type storeMetrics struct {
	expiry       *prometheus.GaugeVec   // name
	reloadErrors *prometheus.CounterVec // name
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	m := &storeMetrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "swarmgate_tls_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of each loaded certificate of the certificate directory, by certificate name, in seconds since the epoch.",
		}, []string{"name"}),
		reloadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_tls_reload_errors_total",
			Help: "Certificate files that could not be loaded, by certificate name (\"\" when the directory itself could not be read); the previous certificate stays in use.",
		}, []string{"name"}),
	}
	metrics.Register(reg, m.expiry, m.reloadErrors)
	return m
}

type acmeMetrics struct {
	expiry  *prometheus.GaugeVec   // host
	errors  *prometheus.CounterVec // host
	refused prometheus.Counter
}

func newACMEMetrics(reg prometheus.Registerer) *acmeMetrics {
	m := &acmeMetrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "swarmgate_tls_acme_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of the ACME certificate of each host, in seconds since the epoch; set when a certificate is issued, renewed or read from the cache.",
		}, []string{"host"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmgate_tls_acme_errors_total",
			Help: "Handshakes for a tls=auto host that got no ACME certificate (issuance failed or is not ready), by host.",
		}, []string{"host"}),
		// No host label: the refused names come from clients and are
		// unbounded.
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "swarmgate_tls_acme_refused_total",
			Help: "Requests refused by the ACME host policy: ClientHellos given to ACME and HTTP-01 challenge requests for hosts that are not tls=auto. No order is made for them.",
		}),
	}
	metrics.Register(reg, m.expiry, m.errors, m.refused)
	return m
}
