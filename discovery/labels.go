// Package discovery produces the desired routing configuration (route.Config)
// from the services of a Swarm and from a routes file, through one label
// parser for swarmgate.* labels and the dialects it translates (Interlock's
// com.docker.lb.*, Traefik's traefik.*). It is plain data: nothing here
// serves traffic, and the edge builds its tables from it.
package discovery

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/swarmgate/swarmgate/route"
	"github.com/swarmgate/swarmgate/router"
)

// Label prefixes. Labels outside them are none of our business.
const (
	labelPrefix     = "swarmgate."
	namedPrefix     = "swarmgate.routes."
	interlockPrefix = "com.docker.lb."
	traefikPrefix   = "traefik."
)

// Dialects is a set of label dialects the parser reads (--labels). The zero
// value is DefaultDialects. It is a flag.Value, written as a comma list of
// swarmgate, interlock and traefik.
type Dialects uint8

// The label dialects.
const (
	DialectSwarmgate Dialects = 1 << iota // swarmgate.*
	DialectInterlock                      // com.docker.lb.* (interlock.go)
	DialectTraefik                        // traefik.* on traefik.enable=true services (traefik.go)

	DefaultDialects = DialectSwarmgate | DialectInterlock
)

type dialectName struct {
	d    Dialects
	name string
}

var dialectNames = []dialectName{{DialectSwarmgate, "swarmgate"}, {DialectInterlock, "interlock"}, {DialectTraefik, "traefik"}}

// ParseDialects parses a comma list of dialect names.
func ParseDialects(v string) (Dialects, error) {
	var d Dialects
	for _, item := range strings.Split(v, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		i := slices.IndexFunc(dialectNames, func(n dialectName) bool { return n.name == item })
		if i < 0 {
			return 0, fmt.Errorf("discovery: label dialect %q: want a comma list of swarmgate, interlock and traefik", item)
		}
		d |= dialectNames[i].d
	}
	return d, nil
}

func (d Dialects) or() Dialects {
	if d == 0 {
		return DefaultDialects
	}
	return d
}

// String is the comma list, in the order swarmgate, interlock, traefik.
func (d Dialects) String() string {
	var names []string
	for _, n := range dialectNames {
		if d.or()&n.d != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// Set parses v (flag.Value).
func (d *Dialects) Set(v string) error {
	x, err := ParseDialects(v)
	if err != nil {
		return err
	}
	*d = x
	return nil
}

// Type names the value in flag usage (pflag.Value).
func (d *Dialects) Type() string { return "list" }

// origin is where one route key's value came from.
type origin struct {
	label string // full label name, for errors
	value string // value in swarmgate syntax, trimmed
	orig  string // value as written, for errors
}

// spec is one route's raw keys before validation.
type spec struct {
	name string
	keys map[string]origin
	// interlock is true when the keys came from com.docker.lb.* labels only,
	// so that errors about missing keys name the labels the operator uses.
	interlock bool
	// alias names, by key, the label that an error about an unset key
	// names instead of the swarmgate one (a Traefik route's port is its
	// service's loadbalancer.server.port).
	alias map[string]string
}

func newSpec(name string) *spec { return &spec{name: name, keys: map[string]origin{}} }

// label names key of this route, whether or not it is set.
func (s *spec) label(key string) string {
	if o, ok := s.keys[key]; ok {
		return o.label
	}
	if s.interlock {
		if l := interlockLabelFor(key); l != "" {
			return l
		}
	}
	if l := s.alias[key]; l != "" {
		return l
	}
	if s.name == "" {
		return labelPrefix + key
	}
	return namedPrefix + s.name + "." + key
}

// parser collects the errors of one service.
type parser struct {
	service string
	keys    []keyDef // routeKeys()
	errs    []*route.LabelError
	// basePort is set once the service-level port label has been seen (valid
	// or not), so that named routes do not report it missing again.
	basePort bool
}

func (p *parser) fail(label, value, format string, args ...any) {
	p.errs = append(p.errs, &route.LabelError{Service: p.service, Label: label, Value: value, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) failKey(s *spec, key, format string, args ...any) {
	p.fail(s.label(key), s.keys[key].orig, format, args...)
}

// ParseLabels is ParseLabelsFor with DefaultDialects.
func ParseLabels(service string, labels map[string]string) (routes []route.Route, errs []*route.LabelError) {
	return ParseLabelsFor(service, labels, DefaultDialects)
}

// ParseLabelsFor turns one service's labels into its routes, reading the
// label dialects d. Labels of other dialects are ignored. It returns no routes for a
// service that publishes nothing (no relevant labels). Any error skips the
// whole service: routes is nil and errs lists every problem found (not only
// the first), each naming service, label, value and reason.
//
// The service-level keys (swarmgate.<key>, and the com.docker.lb.* labels
// where no swarmgate.<key> says otherwise) make the default route, which
// exists when it sets a publishing key (hosts, tcp.port, tcp.sni, default).
// A named route (swarmgate.routes.<name>.<key>) states its own keys; only the
// inherited ones (port, network, backend, cluster) default to the
// service-level values. Which key is which is the table of routeKeys. Routes
// come back sorted by name, the default route ("") first.
//
// Traefik's routers (traefik.go) become named routes, one per router and
// (hosts, path) of its rule; a swarmgate.routes.<router>.<key> label wins
// over what the router's labels give that key, and a service-level
// swarmgate.<key> of an inherited key wins in every one of them.
func ParseLabelsFor(service string, labels map[string]string, d Dialects) (routes []route.Route, errs []*route.LabelError) {
	d = d.or()
	p := &parser{service: service, keys: routeKeys()}
	names := slices.Sorted(maps.Keys(labels))

	def := newSpec("")
	named := map[string]*spec{}
	if d&DialectSwarmgate != 0 {
		for _, label := range names {
			if strings.HasPrefix(label, labelPrefix) {
				p.collect(label, labels[label], def, named)
			}
		}
	}
	if d&DialectInterlock != 0 {
		il := p.interlock(labels, names)
		if len(def.keys) == 0 && len(il) > 0 {
			def.interlock = true
		}
		for k, o := range il {
			if _, ok := def.keys[k]; !ok { // swarmgate.* wins where both are set
				def.keys[k] = o
			}
		}
	}
	if d&DialectTraefik != 0 {
		p.mergeTraefik(p.traefik(labels, names, def, named), def, named)
	}
	if len(def.keys) == 0 && len(named) == 0 {
		if len(p.errs) > 0 {
			return nil, p.errs
		}
		return nil, nil
	}

	publishes := p.publishes(def)
	base := p.build(def, nil, publishes)
	_, p.basePort = def.keys[keyPort]
	switch {
	case publishes:
		routes = append(routes, base)
	case len(named) == 0:
		p.fail(def.label(keyHosts), "", "the service publishes nothing: set %s (HTTP), %s or %s",
			def.label(keyHosts), def.label(keyTCPPort), def.label(keyTCPSNI))
	default:
		// Without a default route, service-level keys only serve as what
		// named routes inherit; anything else would silently do nothing.
		for _, k := range slices.Sorted(maps.Keys(def.keys)) {
			if !lookupKey(p.keys, k).inherited {
				p.failKey(def, k, "the default route publishes nothing (no hosts, tcp.port or tcp.sni), so this applies to no route; set it under swarmgate.routes.<name>. instead")
			}
		}
	}

	for _, n := range slices.Sorted(maps.Keys(named)) {
		s := named[n]
		publishes := p.publishes(s)
		r := p.build(s, def, publishes)
		if !publishes {
			p.fail(s.label(keyHosts), "", "route %q publishes nothing: set %s, %s or %s", n,
				s.label(keyHosts), s.label(keyTCPPort), s.label(keyTCPSNI))
			continue
		}
		routes = append(routes, r)
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return routes, nil
}

// secretLabel reports whether a label's value holds password hashes:
// swarmgate.auth.users, Traefik's basicauth.users, and their misspellings.
// Errors show such a value withheld.
func secretLabel(label string) bool {
	l := strings.ToLower(label)
	if strings.HasPrefix(l, traefikPrefix) {
		return strings.Contains(l, ".basicauth.user") && !strings.HasSuffix(l, ".usersfile")
	}
	return strings.Contains(l, "auth.user")
}

// publishes reports whether a route exists: it sets a publishing key (hosts,
// tcp.port, tcp.sni, default), whether or not its value is valid, except
// that swarmgate.default=false publishes nothing by itself.
func (p *parser) publishes(s *spec) bool {
	for k, o := range s.keys {
		if k == keyDefault {
			if b, err := parseBool(o.value); err != nil || !b {
				continue
			}
		}
		if lookupKey(p.keys, k).publishes {
			return true
		}
	}
	return false
}

// collect files one swarmgate.* label under its route and key.
func (p *parser) collect(label, value string, def *spec, named map[string]*spec) {
	o := origin{label: label, value: strings.TrimSpace(value), orig: value}
	if secretLabel(label) {
		o = withheld(o)
		value = o.orig
	}
	if rest, ok := strings.CutPrefix(label, namedPrefix); ok {
		name, key, ok := strings.Cut(rest, ".")
		if !ok || name == "" || key == "" {
			p.fail(label, value, "want swarmgate.routes.<name>.<key>")
			return
		}
		if !validRouteName(name) {
			p.fail(label, value, "route name %q: want letters, digits, '-' and '_' (at most %d)", name, maxNameLen)
			return
		}
		if lookupKey(p.keys, key) == nil {
			p.fail(label, value, "unknown key %q%s", key, suggest(key, keyNames(p.keys), namedPrefix+name+"."))
			return
		}
		s := named[name]
		if s == nil {
			s = newSpec(name)
			named[name] = s
		}
		s.keys[key] = o
		return
	}
	key := strings.TrimPrefix(label, labelPrefix)
	if key == "routes" {
		p.fail(label, value, "want swarmgate.routes.<name>.<key>")
		return
	}
	if lookupKey(p.keys, key) == nil {
		p.fail(label, value, "unknown label%s", suggest(key, keyNames(p.keys), labelPrefix))
		return
	}
	def.keys[key] = o
}

// build validates one route's keys. base is the service-level spec whose
// inherited keys a named route takes where it does not set them; it is nil
// for the default route. Without publish, only the values are checked: the
// route will not be served, so how its keys fit together does not matter.
func (p *parser) build(s *spec, base *spec, publish bool) route.Route {
	r := route.Route{
		Service:    p.service,
		Name:       s.name,
		Path:       "/",
		Weight:     route.DefaultWeight,
		Backend:    route.BackendTask,
		TLS:        route.TLSOff,
		Timeout:    route.DefaultTimeout,
		Cluster:    route.DefaultCluster,
		BackendTLS: route.BackendTLSOff,
	}
	has := func(k string) bool { _, ok := s.keys[k]; return ok }
	for _, k := range slices.Sorted(maps.Keys(s.keys)) {
		if err := lookupKey(p.keys, k).set(&r, k, s.keys[k].value); err != nil {
			p.failKey(s, k, "%v", err)
		}
	}
	if base != nil {
		for i := range p.keys {
			k := &p.keys[i]
			if o, ok := base.keys[k.name]; ok && k.inherited && !has(k.name) {
				_ = k.set(&r, k.name, o.value) // an error is the service-level label's, reported there
			}
		}
	}
	if !publish {
		return r
	}
	if r.Port == 0 && !has(keyPort) && !p.basePort {
		p.fail(s.label(keyPort), "", "required: the container port to send traffic to")
	}

	tcp, sni, passthrough := has(keyTCPPort), has(keyTCPSNI), r.TLS == route.TLSPassthrough
	http := has(keyHosts) && !passthrough || r.Default
	switch {
	case tcp && (has(keyHosts) || sni || r.Default):
		p.failKey(s, keyTCPPort, "a route is either TCP (tcp.port), TLS passthrough (tcp.sni) or HTTP (hosts, default); use a named route for each")
	case sni && http:
		p.failKey(s, keyTCPSNI, "a route is either TLS passthrough (tcp.sni) or HTTP (hosts, default); use a named route for each")
	case passthrough && r.Default:
		p.failKey(s, keyTLS, "passthrough routes by SNI; it cannot serve as the default backend")
	case passthrough && tcp:
		p.failKey(s, keyTLS, "passthrough is for TLS on :443; a tcp.port route forwards raw TCP already")
	}
	if sni && has(keyTLS) && r.TLS != route.TLSPassthrough {
		p.failKey(s, keyTLS, "tcp.sni routes are not terminated; leave tls unset or passthrough")
	}

	if passthrough || sni {
		// tls=passthrough with hosts means tcp.sni with those hosts: the
		// names go to SNI and Hosts stays empty, so the HTTP router never
		// sees the route and IsHTTP is false.
		r.SNI = mergeHosts(r.SNI, r.Hosts)
		r.Hosts = nil
		r.TLS = route.TLSPassthrough
	}
	p.checkKind(s, http)
	if !http {
		p.l4(s, &r)
		r.Path = ""
		r.TLSRedirect = false
		return r
	}

	switch {
	case has(keyHSTS) && r.TLS == route.TLSOff:
		p.failKey(s, keyHSTS, "HSTS needs %s (auto or a certificate name)", s.label(keyTLS))
	case has(keyTLSRedirect) && r.TLSRedirect && r.TLS == route.TLSOff:
		p.failKey(s, keyTLSRedirect, "redirecting to HTTPS needs %s (auto or a certificate name)", s.label(keyTLS))
	case !has(keyTLSRedirect):
		r.TLSRedirect = r.TLS != route.TLSOff
	}
	if r.H2C && r.BackendTLS != route.BackendTLSOff {
		p.failKey(s, keyH2C, "h2c is cleartext HTTP/2; it contradicts %s=%s", s.label(keyBackendTLS), r.BackendTLS)
	}
	if has(keyHealthInterval) && r.HealthPath == "" {
		p.failKey(s, keyHealthInterval, "needs %s", s.label(keyHealthPath))
	}
	if r.HealthPath != "" && r.HealthInterval == 0 {
		r.HealthInterval = route.DefaultHealthInterval
	}
	if r.Exact && has(keyPath) {
		// An exact path is matched as written, its trailing "/" kept
		// (keyPath's parser drops it); its errors are keyPath's, reported.
		if exact, err := router.ParseExactPath(s.keys[keyPath].value); err == nil {
			r.Path = exact
		}
	}
	if has(keyStrip) && r.Strip && r.Path == "/" {
		p.failKey(s, keyStrip, "there is no prefix to strip: %s is /", s.label(keyPath))
	}
	p.balance(s, &r)
	p.policy(s, &r)
	if r.Policy != nil && reflect.ValueOf(*r.Policy).IsZero() {
		r.Policy = nil // compress=false and the like: no policy at all
	}
	return r
}

// balance settles the balancer: sticky implies cookie, cookie needs sticky,
// and the VIP is balanced by Swarm, not by the edge.
func (p *parser) balance(s *spec, r *route.Route) {
	_, setBalancer := s.keys[keyBalancer]
	if r.Backend == route.BackendVIP {
		if r.Sticky != "" {
			p.failKey(s, keySticky, "session affinity needs %s=task: behind the VIP Swarm picks the task", s.label(keyBackend))
		}
		if setBalancer {
			p.failKey(s, keyBalancer, "the VIP is balanced by Swarm; a balancer needs %s=task", s.label(keyBackend))
		}
	}
	switch {
	case r.Balancer == "" && r.Sticky != "":
		r.Balancer = route.BalancerCookie
	case r.Balancer == "":
		r.Balancer = route.BalancerP2C
	case r.Balancer == route.BalancerCookie && r.Sticky == "":
		p.failKey(s, keyBalancer, "cookie balancing needs %s (the cookie name)", s.label(keySticky))
	}
}

// checkKind rejects the keys that mean nothing to this kind of route, in the
// order of the key table. Publishing keys are left out: they make the kind,
// and build reports a route that mixes kinds.
func (p *parser) checkKind(s *spec, http bool) {
	for i := range p.keys {
		k := &p.keys[i]
		if k.publishes {
			continue
		}
		for _, name := range s.namesOf(k) {
			switch {
			case http && k.kind == kindL4:
				p.failKey(s, name, "applies to L4 routes only (tcp.port or tcp.sni)")
			case !http && k.kind == kindHTTP:
				p.failKey(s, name, "applies to HTTP routes only (this route has no hosts)")
			}
		}
	}
}

// namesOf returns the keys of row k that s sets, sorted: the row's name, or
// for a suffix row every name that extends it.
func (s *spec) namesOf(k *keyDef) []string {
	if !k.suffix {
		if _, ok := s.keys[k.name]; ok {
			return []string{k.name}
		}
		return nil
	}
	var names []string
	for name := range s.keys {
		if len(name) > len(k.name) && strings.HasPrefix(name, k.name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// policy checks the policy keys that need another: a realm needs basic
// auth, auth fields forward auth, a burst a rate, the CORS keys their
// origins; a route has one kind of auth, and credentials are never granted
// to every origin.
func (p *parser) policy(s *spec, r *route.Route) {
	has := func(k string) bool { _, ok := s.keys[k]; return ok }
	needs := func(key, needed string) {
		if has(key) && !has(needed) {
			p.failKey(s, key, "needs %s", s.label(needed))
		}
	}
	if has(keyRealm) && !has(keyAuthBasic) && !has(keyAuthUsers) {
		p.failKey(s, keyRealm, "needs %s or %s", s.label(keyAuthUsers), s.label(keyAuthBasic))
	}
	needs(keyAuthHeaders, keyAuthForward)
	for _, basic := range []string{keyAuthBasic, keyAuthUsers} {
		if has(keyAuthForward) && has(basic) {
			p.failKey(s, keyAuthForward, "a route takes one kind of auth; it has %s too", s.label(basic))
		}
	}
	needs(keyBurst, keyRateLimit)
	for _, k := range []string{"cors.methods", "cors.headers", keyCORSCreds, "cors.max-age"} {
		needs(k, keyCORSOrigins)
	}
	if c := r.Policy; c != nil && c.CORS.Credentials && slices.Equal(c.CORS.Origins, []string{"*"}) {
		p.failKey(s, keyCORSCreds, "credentials for every origin (%s=*) would let any site read responses with the user's cookies; list the origins", s.label(keyCORSOrigins))
	}
}

// l4 settles an L4 route: tls is passthrough or nothing, and the balancer is
// one that needs no HTTP.
func (p *parser) l4(s *spec, r *route.Route) {
	if _, ok := s.keys[keyTLS]; ok && r.TLS != route.TLSPassthrough {
		p.failKey(s, keyTLS, "applies to HTTP routes only (this route has no hosts)")
	}
	if r.Balancer == route.BalancerCookie {
		p.failKey(s, keyBalancer, "cookie balancing applies to HTTP routes only")
	}
	if r.Balancer == "" {
		r.Balancer = route.BalancerP2C
	}
}
