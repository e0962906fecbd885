package l4

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/route"
	"github.com/swarmgate/swarmgate/router"
)

// Entry is one L4 route and what it claimed, for listings.
type Entry struct {
	Route *Route
	Port  int      // 0: no TCP port
	SNI   []string // lower-case passthrough names
}

// Build returns the L4 table of a Config: TCP ports and SNI passthrough
// names, with endpoints from pool so that their state survives rebuilds. Two
// routes that claim the same port or name conflict: the older one keeps it
// and the newer one is rejected, deterministically. It returns the claimed
// routes for listings and a reason for every rejection.
func Build(cfg route.Config, pool *balancer.Pool) (t *Table, entries []Entry, rejected []string) {
	t = &Table{TCP: map[int]*Route{}, SNI: map[string]*Route{}}
	var routes []*route.Route
	for i := range cfg.Routes {
		if r := &cfg.Routes[i]; r.TCPPort > 0 || len(r.SNI) > 0 {
			routes = append(routes, r)
		}
	}
	slices.SortStableFunc(routes, func(a, b *route.Route) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID(), b.ID()))
	})
	owner := map[string]string{}
	claim := func(r *route.Route, key string) bool {
		if o, taken := owner[key]; taken {
			rejected = append(rejected, fmt.Sprintf("route %s: %s is already routed to %s", r.ID(), key, o))
			return false
		}
		owner[key] = r.ID()
		return true
	}
	for _, r := range routes {
		policy, err := balancer.New(r.Balancer)
		if err != nil {
			rejected = append(rejected, fmt.Sprintf("route %s: %v", r.ID(), err))
			continue
		}
		lr := &Route{ID: r.ID(), Service: r.Service, Policy: policy, ProxyProtocol: r.ProxyProtocol}
		e := Entry{Route: lr}
		if r.TCPPort > 0 && claim(r, fmt.Sprintf("tcp port %d", r.TCPPort)) {
			t.TCP[r.TCPPort] = lr
			e.Port = r.TCPPort
		}
		for _, name := range r.SNI {
			name = sniName(name)
			if claim(r, "tls server name "+name) {
				t.SNI[name] = lr
				e.SNI = append(e.SNI, name)
			}
		}
		if e.Port > 0 || len(e.SNI) > 0 {
			// Only a route that claimed something takes endpoints from the
			// pool: the pool holds what the tables use.
			for _, addr := range r.Endpoints {
				lr.Endpoints = append(lr.Endpoints, pool.Endpoint(addr))
			}
			entries = append(entries, e)
		}
	}
	return t, entries, rejected
}

// sniName is the router's form of a passthrough name (router.ParseHost):
// lower case, without a trailing dot, so that two spellings of one name
// conflict here. A name the router refuses is only lower-cased; the engine's
// Update reports it.
func sniName(name string) string {
	if h, _, err := router.ParseHost(name); err == nil {
		return h
	}
	return strings.ToLower(name)
}
