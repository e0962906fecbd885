package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/policy"
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
	keyExact          = "path.exact"
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
	keyDefault        = "default"
	keyAuthBasic      = "auth.basic"
	keyAuthUsers      = "auth.users"
	keyRealm          = "auth.basic.realm"
	keyAuthForward    = "auth.forward"
	keyAuthHeaders    = "auth.forward.headers"
	keyRateLimit      = "ratelimit"
	keyBurst          = "ratelimit.burst"
	keyCORSOrigins    = "cors.origins"
	keyCORSCreds      = "cors.credentials"
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
	// suffix rows (a name ending in ".") are a family of keys: name plus
	// any suffix, which applyKey gets with the value (headers.request.X-A).
	suffix   bool
	applyKey func(r *route.Route, suffix, v string) error
	// empty admits an empty value (a header removed).
	empty bool
	// apply parses a non-empty, trimmed value into r, with a parser of
	// values.go; field builds it for the usual one parser, one field. It
	// sets the field even when it returns an error, as the later checks
	// expect (a failed tls is "", not "off", so it draws no second error).
	apply func(r *route.Route, v string) error
}

// field returns an apply func that parses a value with parse and stores the
// result in the field of r that at points to, also on error (see apply).
func field[T any](parse func(string) (T, error), at func(*route.Route) *T) func(*route.Route, string) error {
	return func(r *route.Route, v string) error {
		x, err := parse(v)
		*at(r) = x
		return err
	}
}

// set applies a value of key (a name of row k) to r; an empty value is an
// error unless the row takes one.
func (k *keyDef) set(r *route.Route, key, v string) error {
	if v == "" && !k.empty {
		return errors.New("empty value")
	}
	if k.suffix {
		return k.applyKey(r, strings.TrimPrefix(key, k.name), v)
	}
	return k.apply(r, v)
}

// pol returns r's policy, allocated on first use: a route without policy
// labels keeps a nil one.
func pol(r *route.Route) *route.Policy {
	if r.Policy == nil {
		r.Policy = &route.Policy{}
	}
	return r.Policy
}

// headerKey returns the applyKey of swarmgate.headers.<side>.<Name>, which
// appends to the list at points to.
func headerKey(side string, at func(*route.Policy) *[]route.Header) func(*route.Route, string, string) error {
	return func(r *route.Route, name, v string) error {
		h, err := policy.ParseHeader(side, name, v)
		if err != nil {
			return err
		}
		list := at(pol(r))
		for _, prev := range *list {
			if prev.Name == h.Name {
				return fmt.Errorf("field %s is set by another label too", h.Name)
			}
		}
		*list = append(*list, h)
		return nil
	}
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
			doc:   "comma list of host names, *.example.org wildcards (SNI names with tls=passthrough)",
			apply: field(parseHosts, func(r *route.Route) *[]string { return &r.Hosts })},
		{name: keyPort, kind: kindBoth, inherited: true, doc: "container port to send traffic to",
			apply: field(parsePort, func(r *route.Route) *int { return &r.Port })},
		{name: keyPath, kind: kindHTTP, doc: "path prefix (context root)",
			apply: field(router.ParsePath, func(r *route.Route) *string { return &r.Path })},
		{name: keyExact, kind: kindHTTP, doc: "match the path only, not the paths below it",
			apply: field(parseBool, func(r *route.Route) *bool { return &r.Exact })},
		{name: keyStrip, kind: kindHTTP, doc: "strip the path prefix before forwarding",
			apply: field(parseBool, func(r *route.Route) *bool { return &r.Strip })},
		{name: "priority", kind: kindBoth, doc: "breaks ties between routes that match equally",
			apply: field(intIn(-maxPriority, maxPriority), func(r *route.Route) *int { return &r.Priority })},
		{name: "weight", kind: kindBoth, doc: "share among services on the same host+path; 0 drains",
			apply: field(intIn(0, maxWeight), func(r *route.Route) *int { return &r.Weight })},
		{name: keyBackend, kind: kindBoth, inherited: true, doc: "task (task addresses) or vip (the service's virtual IP)",
			apply: field(oneOf(route.BackendTask, route.BackendVIP), func(r *route.Route) *string { return &r.Backend })},
		{name: keyNetwork, kind: kindBoth, inherited: true, doc: "overlay network whose addresses are used",
			apply: field(nameOf("network"), func(r *route.Route) *string { return &r.Network })},
		{name: keyBalancer, kind: kindBoth, doc: "load-balancing policy",
			apply: field(oneOf(route.Balancers()...), func(r *route.Route) *string { return &r.Balancer })},
		{name: keySticky, kind: kindHTTP, doc: "session-affinity cookie name",
			apply: field(parseCookieName, func(r *route.Route) *string { return &r.Sticky })},
		{name: keyTLS, kind: kindBoth, doc: "off, auto (ACME), passthrough, or a certificate name",
			apply: field(parseTLS, func(r *route.Route) *string { return &r.TLS })},
		{name: keyTLSRedirect, kind: kindHTTP, doc: "redirect plain HTTP to HTTPS",
			apply: field(parseBool, func(r *route.Route) *bool { return &r.TLSRedirect })},
		{name: keyHSTS, kind: kindHTTP, doc: "Strict-Transport-Security max-age and directives",
			apply: field(parseHSTS, func(r *route.Route) *string { return &r.HSTS })},
		{name: keyBackendTLS, kind: kindHTTP, doc: "re-encrypt to the tasks: off, on or insecure",
			apply: field(parseBackendTLS, func(r *route.Route) *string { return &r.BackendTLS })},
		{name: keyH2C, kind: kindHTTP, doc: "cleartext HTTP/2 to the tasks (gRPC)",
			apply: field(parseBool, func(r *route.Route) *bool { return &r.H2C })},
		{name: "request.buffering", kind: kindHTTP, doc: "false: stream request bodies to the tasks from the first byte",
			apply: func(r *route.Route, v string) error {
				buffer, err := parseBool(v)
				r.StreamBody = !buffer
				return err
			}},
		{name: keyRedirects, kind: kindHTTP, doc: "FROM=>TO redirect rules, ;-separated",
			apply: field(parseRedirects, func(r *route.Route) *[]route.Redirect { return &r.Redirects })},
		{name: keyHealthPath, kind: kindHTTP, doc: "path (and query) of an active health check",
			apply: field(parseHealthPath, func(r *route.Route) *string { return &r.HealthPath })},
		{name: keyHealthInterval, kind: kindHTTP, doc: "active health check period",
			apply: field(durationIn(minHealthInterval, maxHealthInterval), func(r *route.Route) *time.Duration { return &r.HealthInterval })},
		{name: "timeout", kind: kindBoth, doc: "upstream response timeout",
			apply: field(durationIn(time.Millisecond, maxTimeout), func(r *route.Route) *time.Duration { return &r.Timeout })},
		{name: keyCluster, kind: kindBoth, inherited: true, doc: "service cluster: only edges started with --cluster NAME serve it",
			apply: field(nameOf("cluster"), func(r *route.Route) *string { return &r.Cluster })},
		{name: keyTCPPort, kind: kindL4, publishes: true, doc: "L4: the edge port that forwards raw TCP to port",
			apply: field(parseTCPPort, func(r *route.Route) *int { return &r.TCPPort })},
		{name: keyTCPSNI, kind: kindL4, publishes: true, doc: "L4: TLS server names routed on :443 without termination",
			apply: field(parseHosts, func(r *route.Route) *[]string { return &r.SNI })},
		{name: "tcp.proxy-protocol", kind: kindL4, doc: "L4: PROXY protocol header to the tasks: off, v1 or v2",
			apply: field(parseProxyProtocol, func(r *route.Route) *int { return &r.ProxyProtocol })},
		{name: keyDefault, kind: kindHTTP, publishes: true, doc: "serve requests for hosts that no route claims",
			apply: field(parseBool, func(r *route.Route) *bool { return &r.Default })},
		{name: "allow", kind: kindHTTP, doc: "comma list of CIDRs: only these client addresses get in",
			apply: field(policy.ParsePrefixes, func(r *route.Route) *[]netip.Prefix { return &pol(r).Allow })},
		{name: "deny", kind: kindHTTP, doc: "comma list of CIDRs: these client addresses are refused",
			apply: field(policy.ParsePrefixes, func(r *route.Route) *[]netip.Prefix { return &pol(r).Deny })},
		{name: keyAuthBasic, kind: kindHTTP, doc: "htpasswd file in the secrets directory",
			apply: field(policy.ParseSecretName, func(r *route.Route) *string { return &pol(r).BasicAuth })},
		{name: keyAuthUsers, kind: kindHTTP, doc: "basic-auth users, user:hash,user:hash as htpasswd -nB prints them",
			apply: field(policy.ParseUsers, func(r *route.Route) *[]route.BasicUser { return &pol(r).BasicUsers })},
		{name: keyRealm, kind: kindHTTP, doc: "basic-auth realm",
			apply: field(policy.ParseRealm, func(r *route.Route) *string { return &pol(r).BasicRealm })},
		{name: keyAuthForward, kind: kindHTTP, doc: "URL of an auth service asked about every request",
			apply: field(policy.ParseAuthURL, func(r *route.Route) *string { return &pol(r).ForwardAuth })},
		{name: keyAuthHeaders, kind: kindHTTP, doc: "fields of the auth service's 2xx answer set on the request",
			apply: field(policy.ParseAuthHeaders, func(r *route.Route) *[]string { return &pol(r).ForwardAuthHeaders })},
		{name: keyRateLimit, kind: kindHTTP, doc: "N/s, N/m or N/h per client address",
			apply: field(policy.ParseRate, func(r *route.Route) *route.Rate { return &pol(r).RateLimit })},
		{name: keyBurst, kind: kindHTTP, doc: "requests a client may send at once",
			apply: field(policy.ParseBurst, func(r *route.Route) *int { return &pol(r).RateLimit.Burst })},
		{name: "body.max", kind: kindHTTP, doc: "request body limit: 512k, 10m, 1g",
			apply: field(policy.ParseSize, func(r *route.Route) *int64 { return &pol(r).BodyMax })},
		{name: "headers.request.", kind: kindHTTP, suffix: true, empty: true, doc: "set a request field; empty removes it",
			applyKey: headerKey(policy.Request, func(p *route.Policy) *[]route.Header { return &p.RequestHeaders })},
		{name: "headers.response.", kind: kindHTTP, suffix: true, empty: true, doc: "set a response field; empty removes it",
			applyKey: headerKey(policy.Response, func(p *route.Policy) *[]route.Header { return &p.ResponseHeaders })},
		{name: keyCORSOrigins, kind: kindHTTP, doc: "origins allowed to read responses, or *",
			apply: field(policy.ParseOrigins, func(r *route.Route) *[]string { return &pol(r).CORS.Origins })},
		{name: "cors.methods", kind: kindHTTP, doc: "methods allowed in preflights",
			apply: field(policy.ParseMethods, func(r *route.Route) *[]string { return &pol(r).CORS.Methods })},
		{name: "cors.headers", kind: kindHTTP, doc: "request fields allowed in preflights, or *",
			apply: field(policy.ParseHeaderNames, func(r *route.Route) *[]string { return &pol(r).CORS.Headers })},
		{name: keyCORSCreds, kind: kindHTTP, doc: "allow credentials (cookies) in CORS requests",
			apply: field(parseBool, func(r *route.Route) *bool { return &pol(r).CORS.Credentials })},
		{name: "cors.max-age", kind: kindHTTP, doc: "how long browsers may cache a preflight",
			apply: field(policy.ParseMaxAge, func(r *route.Route) *time.Duration { return &pol(r).CORS.MaxAge })},
		{name: "compress", kind: kindHTTP, doc: "true or a list of zstd, br, gzip",
			apply: field(policy.ParseCompress, func(r *route.Route) *[]string { return &pol(r).Compress })},
		{name: "match.header", kind: kindHTTP, doc: "Name=value: the requests with this field value, whatever the weights",
			apply: field(policy.ParseMatchHeader, func(r *route.Route) *route.Match { return &pol(r).MatchHeader })},
		{name: "match.cookie", kind: kindHTTP, doc: "name=value: the requests with this cookie value, whatever the weights",
			apply: field(policy.ParseMatchCookie, func(r *route.Route) *route.Match { return &pol(r).MatchCookie })},
		{name: "errors.page", kind: kindHTTP, doc: "HTML file in the secrets or configs directory for the edge's own 502, 503 and 504",
			apply: field(policy.ParseErrorPage, func(r *route.Route) *string { return &pol(r).ErrorPage })},
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

// lookupKey returns the row of key name, or nil. A suffix row takes the
// names that extend it.
func lookupKey(keys []keyDef, name string) *keyDef {
	for i := range keys {
		k := &keys[i]
		if k.name == name && !k.suffix || k.suffix && len(name) > len(k.name) && strings.HasPrefix(name, k.name) {
			return k
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
