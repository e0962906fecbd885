package balancer

import "time"

// Health is a copy of an endpoint's health at one moment, for listings (the
// admin API, the status page, `swarmgate routes`). Reading it takes no lock
// and changes nothing.
type Health struct {
	// Down: the last active health check failed.
	Down bool
	// EjectedUntil is when a passive ejection ends; zero when the endpoint
	// is not ejected at the moment asked.
	EjectedUntil time.Time
	// Failures are the Failure outcomes in a row since the last Success
	// (MaxFailures of them eject the endpoint).
	Failures int
	// Ejections are the ejections in a row since the last Success: the
	// next one lasts BaseEjection doubled this many times.
	Ejections int
	// Probing: back from an ejection, the endpoint takes one request at a
	// time until one succeeds (half-open).
	Probing bool
}

// Health returns the endpoint's health as of now.
func (e *Endpoint) Health(now time.Time) Health {
	h := Health{Down: e.down.Load(), Failures: int(e.fails.Load()), Ejections: int(e.ejections.Load())}
	if until := e.ejectedUntil.Load(); now.UnixNano() < until {
		h.EjectedUntil = time.Unix(0, until)
	} else {
		h.Probing = e.probing.Load()
	}
	return h
}
