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
	return &storeMetrics{
		expiry: metrics.NewGaugeVec(reg, "swarmgate_tls_certificate_expiry_timestamp_seconds",
			"NotAfter of each loaded certificate of the certificate directory, by certificate name, in seconds since the epoch.", "name"),
		reloadErrors: metrics.NewCounterVec(reg, "swarmgate_tls_reload_errors_total",
			"Certificate files that could not be loaded, by certificate name (\"\" when the directory itself could not be read); the previous certificate stays in use.", "name"),
	}
}

type acmeMetrics struct {
	expiry   *prometheus.GaugeVec   // host
	errors   *prometheus.CounterVec // host
	refused  prometheus.Counter
	obtained prometheus.Counter
}

func newACMEMetrics(reg prometheus.Registerer) *acmeMetrics {
	return &acmeMetrics{
		expiry: metrics.NewGaugeVec(reg, "swarmgate_tls_acme_certificate_expiry_timestamp_seconds",
			"NotAfter of the ACME certificate of each host, in seconds since the epoch; set when a certificate is issued, renewed or read from the cache.", "host"),
		errors: metrics.NewCounterVec(reg, "swarmgate_tls_acme_errors_total",
			"Handshakes for a tls=auto host that got no ACME certificate (issuance failed or is not ready), by host.", "host"),
		// No host label: the refused names come from clients and are
		// unbounded.
		refused: metrics.NewCounter(reg, "swarmgate_tls_acme_refused_total",
			"Requests refused by the ACME host policy: ClientHellos given to ACME and HTTP-01 challenge requests for hosts that are not tls=auto. No order is made for them."),
		obtained: metrics.NewCounter(reg, "swarmgate_tls_acme_certificates_obtained_total",
			"Certificates this edge obtained from the CA, first orders and renewals; with the fleet's shared state, summed over the edges it is one per host and renewal."),
	}
}
