package balancer

import "time"

// StickyValue is the cookie value that sends a client back to e: 16 hex
// digits of a hash of the address, stable across table rebuilds, restarts
// and edges (see PoolOptions.StickyKey). It is computed once per Endpoint,
// so setting the cookie allocates nothing here.
func StickyValue(e *Endpoint) string { return e.sticky }

// FindSticky returns the endpoint of eps whose StickyValue is v, or nil when
// none is, or when that endpoint is not available at now; the caller then
// picks anew and sets a fresh cookie.
func FindSticky(eps []*Endpoint, v string, now time.Time) *Endpoint {
	if v == "" {
		return nil
	}
	for _, e := range eps {
		if e.sticky == v {
			if e.Available(now) {
				return e
			}
			return nil
		}
	}
	return nil
}
