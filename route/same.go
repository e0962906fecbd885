package route

import (
	"reflect"
	"slices"
)

// Same reports whether a and b are equal in every field: an edge reuses
// what it built for a route that is the Same as before, and rebuilds only
// what differs. It is cheap for routes that share their slices, as the
// unchanged routes of two Configs from one source do.
func Same(a, b *Route) bool {
	if a == b {
		return true
	}
	return a.Service == b.Service && a.ServiceID == b.ServiceID && a.Name == b.Name &&
		a.CreatedAt.Equal(b.CreatedAt) && a.CreatedAt.Location() == b.CreatedAt.Location() &&
		slices.Equal(a.Hosts, b.Hosts) && a.Path == b.Path && a.Exact == b.Exact && a.Strip == b.Strip &&
		a.Priority == b.Priority && a.Weight == b.Weight && a.Default == b.Default &&
		a.Port == b.Port && a.Backend == b.Backend && a.Network == b.Network &&
		a.Balancer == b.Balancer && a.Sticky == b.Sticky &&
		a.TLS == b.TLS && a.TLSRedirect == b.TLSRedirect && a.HSTS == b.HSTS &&
		a.BackendTLS == b.BackendTLS && a.H2C == b.H2C &&
		a.HealthPath == b.HealthPath && a.HealthInterval == b.HealthInterval &&
		a.Timeout == b.Timeout && a.StreamBody == b.StreamBody &&
		slices.Equal(a.Redirects, b.Redirects) && a.Cluster == b.Cluster &&
		samePolicy(a.Policy, b.Policy) &&
		a.TCPPort == b.TCPPort && slices.Equal(a.SNI, b.SNI) && a.ProxyProtocol == b.ProxyProtocol &&
		slices.Equal(a.Endpoints, b.Endpoints)
}

// samePolicy compares policies; they are rare and small, so reflection is
// cheap enough.
func samePolicy(a, b *Policy) bool {
	return a == b || a != nil && b != nil && reflect.DeepEqual(a, b)
}
