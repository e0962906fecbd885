package discovery

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/swarmgate/swarmgate/route"
	"github.com/swarmgate/swarmgate/router"
)

// Route keys: what follows "swarmgate." or "swarmgate.routes.<name>.". Only
// the keys that other code names (cross-key checks, the Interlock mapping,
// errors that point at another label) have a constant; the table below is
// where every key is defined.
const (
	keyHosts          = "hosts"
	keyPort           = "port"
	keyPath           = "path"
	keyStrip          = "path.strip"
	keyBackend        = "backend"
	keyNetwork        = "network"
	keyBalancer       = "balancer"
	keySticky         = "sticky"
	keyTLS            = "tls"
	keyTLSRedirect    = "tls.redirect"
	keyHSTS           = "tls.hsts"
	keyBackendTLS     = "backend.tls"
	keyH2C            = "backend.h2c"
	keyRedirects      = "redirects"
	keyHealthPath     = "health.path"
	keyHealthInterval = "health.interval"
	keyCluster        = "cluster"
	keyTCPPort        = "tcp.port"
	keyTCPSNI         = "tcp.sni"
	keyProxyProtocol  = "tcp.proxy-protocol"
	keyDefault        = "default"
)

// kind says which routes a key applies to.
type kind uint8

const (
	kindHTTP kind = 1 << iota // routes with hosts or default=true
	kindL4                    // tcp.port and tcp.sni routes (and tls=passthrough)
	kindBoth = kindHTTP | kindL4
)

// keyDef is one route key. Everything the parser knows about a key that is
// not a relation between keys is here: adding a label is one row of
// routeKeys and its line in LABELS.md (which TestLabelsDocKeys checks).
type keyDef struct {
	name string // after "swarmgate." or "swarmgate.routes.<name>."
	// kind is the routes the key means something to. Setting a kindHTTP key
	// on an L4 route, or a kindL4 key on an HTTP route, is an error; keys
	// that publish decide the route's kind instead.
	kind kind
	// inherited keys describe the service (where its tasks listen and how
	// to reach them), not one route: a named route that does not set one
	// takes the service-level value.
	inherited bool
	// publishes makes the route exist when set (default only when true).
	publishes bool
	doc       string // one line: what the value is
	// apply parses a non-empty, trimmed value into r. It sets the field
	// even when it returns an error, as the later checks expect (a failed
	// tls is "", not "off", so it draws no second error).
	apply func(r *route.Route, v string) error
}

// set applies a value of the key to r; an empty value is an error.
func (k *keyDef) set(r *route.Route, v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	return k.apply(r, v)
}

// Bounds on label values. They are generous; they exist so that a typo (an
// extra zero) fails loudly instead of producing a route nobody meant.
const (
	maxWeight         = 10000
	maxPriority       = 1_000_000
	maxTimeout        = time.Hour
	minHealthInterval = time.Second
	maxHealthInterval = time.Hour
	maxNameLen        = 128 // route, network, cluster and certificate names
)

// routeKeys is the table of route keys, in the order of LABELS.md. When one
// route breaks the kind rule with several keys, the errors come in this
// order. It returns a new slice on each call: the parser keeps one per
// service, and nothing is shared between parses.
func routeKeys() []keyDef {
	return []keyDef{
		{name: keyHosts, kind: kindBoth, publishes: true,
			doc: "comma list of host names, *.example.org wildcards (SNI names with tls=passthrough)",
			apply: func(r *route.Route, v string) (err error) {
				r.Hosts, err = parseHosts(v)
				return err
			}},
		{name: keyPort, kind: kindBoth, inherited: true, doc: "container port to send traffic to",
			apply: func(r *route.Route, v string) (err error) {
				r.Port, err = parsePort(v)
				return err
			}},
		{name: keyPath, kind: kindHTTP, doc: "path prefix (context root)",
			apply: func(r *route.Route, v string) (err error) {
				r.Path, err = router.ParsePath(v)
				return err
			}},
		{name: keyStrip, kind: kindHTTP, doc: "strip the path prefix before forwarding",
			apply: func(r *route.Route, v string) (err error) {
				r.Strip, err = parseBool(v)
				return err
			}},
		{name: "priority", kind: kindBoth, doc: "breaks ties between routes that match equally",
			apply: func(r *route.Route, v string) (err error) {
				r.Priority, err = parseInt(v, -maxPriority, maxPriority)
				return err
			}},
		{name: "weight", kind: kindBoth, doc: "share among services on the same host+path; 0 drains",
			apply: func(r *route.Route, v string) (err error) {
				r.Weight, err = parseInt(v, 0, maxWeight)
				return err
			}},
		{name: keyBackend, kind: kindBoth, inherited: true, doc: "task (task addresses) or vip (the service's virtual IP)",
			apply: func(r *route.Route, v string) (err error) {
				r.Backend, err = keyword(v, route.BackendTask, route.BackendVIP)
				return err
			}},
		{name: keyNetwork, kind: kindBoth, inherited: true, doc: "overlay network whose addresses are used",
			apply: func(r *route.Route, v string) (err error) {
				r.Network, err = parseName(v, "network")
				return err
			}},
		{name: keyBalancer, kind: kindBoth, doc: "load-balancing policy",
			apply: func(r *route.Route, v string) (err error) {
				r.Balancer, err = keyword(v, route.Balancers()...)
				return err
			}},
		{name: keySticky, kind: kindHTTP, doc: "session-affinity cookie name",
			apply: func(r *route.Route, v string) (err error) {
				r.Sticky, err = parseCookieName(v)
				return err
			}},
		{name: keyTLS, kind: kindBoth, doc: "off, auto (ACME), passthrough, or a certificate name",
			apply: func(r *route.Route, v string) (err error) {
				r.TLS, err = parseTLS(v)
				return err
			}},
		{name: keyTLSRedirect, kind: kindHTTP, doc: "redirect plain HTTP to HTTPS",
			apply: func(r *route.Route, v string) (err error) {
				r.TLSRedirect, err = parseBool(v)
				return err
			}},
		{name: keyHSTS, kind: kindHTTP, doc: "Strict-Transport-Security max-age and directives",
			apply: func(r *route.Route, v string) (err error) {
				r.HSTS, err = parseHSTS(v)
				return err
			}},
		{name: keyBackendTLS, kind: kindHTTP, doc: "re-encrypt to the tasks: off, on or insecure",
			apply: func(r *route.Route, v string) (err error) {
				r.BackendTLS, err = parseBackendTLS(v)
				return err
			}},
		{name: keyH2C, kind: kindHTTP, doc: "cleartext HTTP/2 to the tasks (gRPC)",
			apply: func(r *route.Route, v string) (err error) {
				r.H2C, err = parseBool(v)
				return err
			}},
		{name: keyRedirects, kind: kindHTTP, doc: "FROM=>TO redirect rules, ;-separated",
			apply: func(r *route.Route, v string) (err error) {
				r.Redirects, err = parseRedirects(v)
				return err
			}},
		{name: keyHealthPath, kind: kindHTTP, doc: "path (and query) of an active health check",
			apply: func(r *route.Route, v string) (err error) {
				r.HealthPath, err = parseHealthPath(v)
				return err
			}},
		{name: keyHealthInterval, kind: kindHTTP, doc: "active health check period",
			apply: func(r *route.Route, v string) (err error) {
				r.HealthInterval, err = parseDuration(v, minHealthInterval, maxHealthInterval)
				return err
			}},
		{name: "timeout", kind: kindBoth, doc: "upstream response timeout",
			apply: func(r *route.Route, v string) (err error) {
				r.Timeout, err = parseDuration(v, time.Millisecond, maxTimeout)
				return err
			}},
		{name: keyCluster, kind: kindBoth, inherited: true, doc: "service cluster: only edges started with --cluster NAME serve it",
			apply: func(r *route.Route, v string) (err error) {
				r.Cluster, err = parseName(v, "cluster")
				return err
			}},
		{name: keyTCPPort, kind: kindL4, publishes: true, doc: "L4: the edge port that forwards raw TCP to port",
			apply: func(r *route.Route, v string) (err error) {
				r.TCPPort, err = parsePort(v)
				if err == nil && (r.TCPPort == 80 || r.TCPPort == 443) {
					err = fmt.Errorf("port %d belongs to the edge's HTTP/HTTPS listeners; use hosts for HTTP or tcp.sni for TLS on 443", r.TCPPort)
				}
				return err
			}},
		{name: keyTCPSNI, kind: kindL4, publishes: true, doc: "L4: TLS server names routed on :443 without termination",
			apply: func(r *route.Route, v string) (err error) {
				r.SNI, err = parseHosts(v)
				return err
			}},
		{name: keyProxyProtocol, kind: kindL4, doc: "L4: PROXY protocol header to the tasks: off, v1 or v2",
			apply: func(r *route.Route, v string) (err error) {
				r.ProxyProtocol, err = parseProxyProtocol(v)
				return err
			}},
		{name: keyDefault, kind: kindHTTP, publishes: true, doc: "serve requests for hosts that no route claims",
			apply: func(r *route.Route, v string) (err error) {
				r.Default, err = parseBool(v)
				return err
			}},
	}
}

// keyNames returns the names of keys, sorted, for suggestions (sorted, so
// that a tie between two candidates goes to the same one whatever the
// table's order).
func keyNames(keys []keyDef) []string {
	names := make([]string, len(keys))
	for i := range keys {
		names[i] = keys[i].name
	}
	slices.Sort(names)
	return names
}

// lookupKey returns the row of key name, or nil.
func lookupKey(keys []keyDef, name string) *keyDef {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

// suggest returns ` (did you mean PREFIXkey?)` for the closest candidate
// within edit distance 2, or "". Ties go to the first candidate.
func suggest(got string, candidates []string, prefix string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 { // labels this long are not typos of ours
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
